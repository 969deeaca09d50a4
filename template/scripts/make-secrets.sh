#!/usr/bin/env bash
# make-secrets.sh [DIR] — the compose stack's secret files, created once and never overwritten.
#
# The directory keeps other host users out (0700); the files are readable by the containers'
# non-root users (0644), because compose bind-mounts file secrets with their host owner and
# mode. An empty file means "not set". Put keys in the files, never in compose files or .env.
set -o errexit -o nounset -o pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${1:-$here/../secrets}"

install -d -m 700 "$dir"
[[ -f "$dir/hosted_api_key" ]] || install -m 644 /dev/null "$dir/hosted_api_key"

# Postgres (only when the stack has the pgvector service): one random password, written for the
# server and inside the app's connection string.
if [[ -f "$here/../compose.pgvector.yaml" && ! -s "$dir/postgres_password" ]]; then
    password="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
    umask 022
    printf '%s' "$password" >"$dir/postgres_password"
    printf 'postgresql://app:%s@pgvector:5432/app' "$password" >"$dir/pgvector_dsn" # pragma: allowlist secret
    chmod 644 "$dir/postgres_password" "$dir/pgvector_dsn"
    echo "created $dir/postgres_password and $dir/pgvector_dsn"
fi
