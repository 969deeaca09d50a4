#!/usr/bin/env bash
# make-secrets.sh [DIR] — the compose stack's secret files, created once and never overwritten.
#
# The files are the ones compose.yaml declares under `secrets:` (nothing to do when it declares
# none). The directory keeps other host users out (0700); the files are readable by the
# containers' non-root users (0644), because compose bind-mounts file secrets with their host
# owner and mode. An empty file means "not set". Put keys in the files, never in compose files
# or .env.
set -o errexit -o nounset -o pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${1:-$here/../secrets}"

mapfile -t names < <(sed -n 's|^ *file: \${SECRETS_HOST_DIR:-./secrets}/\([A-Za-z0-9_.-]*\)$|\1|p' \
    "$here/../compose.yaml")
((${#names[@]})) || exit 0

install -d -m 700 "$dir"
# Postgres (the pgvector service): one random password, written for the server and inside the
# app's connection string.
if [[ " ${names[*]} " == *" postgres_password "* && ! -s "$dir/postgres_password" ]]; then
    password="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
    umask 022
    printf '%s' "$password" >"$dir/postgres_password"
    printf 'postgresql://app:%s@pgvector:5432/app' "$password" >"$dir/pgvector_dsn" # pragma: allowlist secret
    chmod 644 "$dir/postgres_password" "$dir/pgvector_dsn"
    echo "created $dir/postgres_password and $dir/pgvector_dsn"
fi
for name in "${names[@]}"; do
    [[ -f "$dir/$name" ]] || install -m 644 /dev/null "$dir/$name"
done
