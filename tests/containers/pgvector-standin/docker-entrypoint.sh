#!/bin/bash
# The official image's first start, reduced to what the stack uses: a cluster owned by
# POSTGRES_USER with its password (POSTGRES_PASSWORD or _FILE), POSTGRES_DB created, password
# (scram) logins over TCP, then the server in the foreground.
set -o errexit -o nounset -o pipefail
if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
    user="${POSTGRES_USER:-postgres}"
    password="${POSTGRES_PASSWORD:-}"
    [[ -n "${POSTGRES_PASSWORD_FILE:-}" ]] && password="$(cat "$POSTGRES_PASSWORD_FILE")"
    [[ -n "$password" ]] || { echo "POSTGRES_PASSWORD(_FILE) is required" >&2; exit 1; }
    initdb -D "$PGDATA" -U "$user" -E UTF8 --auth-local=trust --auth-host=scram-sha-256 \
        --pwfile=<(printf '%s\n' "$password") >/dev/null
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=$PGHOST" -w start \
        >/dev/null
    if [[ "${POSTGRES_DB:-$user}" != postgres ]]; then
        createdb -U "$user" "${POSTGRES_DB:-$user}"
    fi
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "initialized $PGDATA (user $user, database ${POSTGRES_DB:-$user})"
fi
if [[ "${1:-}" == postgres ]]; then
    shift
    exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories="$PGHOST" "$@"
fi
exec "$@"
