# shellcheck shell=bash
# Common settings for the podman-as-docker-engine scripts. Sourced, not run.
#
# Everything the scripts write lives under PODMAN_SHIM_HOME (default:
# ${XDG_STATE_HOME:-$HOME/.local/state}/podman-shim):
#   containers.conf   the private containers.conf (exported as CONTAINERS_CONF)
#   env.sh            `source` it to get CONTAINERS_CONF & co. in a shell
#   run/              pid files of podman services
#   logs/             service logs
#   storage.conf      only if install-podman.sh ran with PODMAN_SHIM_STORAGE_ROOT:
#                     a private image store (exported as CONTAINERS_STORAGE_CONF)
# Otherwise image storage is podman's default (/var/lib/containers/storage).

set -o errexit -o nounset -o pipefail

PODMAN_SHIM_HOME="${PODMAN_SHIM_HOME:-${XDG_STATE_HOME:-$HOME/.local/state}/podman-shim}"
export PODMAN_SHIM_HOME
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PODMAN_SHIM_HOME/containers.conf}"
if [[ -z "${CONTAINERS_STORAGE_CONF:-}" && -f "$PODMAN_SHIM_HOME/storage.conf" ]]; then
    export CONTAINERS_STORAGE_CONF="$PODMAN_SHIM_HOME/storage.conf"
fi
# `podman build` (and the API service's docker-compatible /build endpoint,
# which inherits the service's environment) must not use the OCI isolation.
export BUILDAH_ISOLATION="${BUILDAH_ISOLATION:-chroot}"
# `podman build` writes OCI images by default, which drop HEALTHCHECK (and
# SHELL, ONBUILD) with a warning; the compat API already uses docker format.
export BUILDAH_FORMAT="${BUILDAH_FORMAT:-docker}"

# Flags that every `podman run` needs here (also set as defaults in
# containers.conf; repeated for callers that bypass it).
# shellcheck disable=SC2034  # used by the scripts that source this file
PODMAN_RUN_FLAGS=(--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

log() { printf '[%s] %s\n' "${0##*/}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_root() {
    [[ "$(id -u)" -eq 0 ]] || die "must run as root (rootless podman is not set up by these scripts)"
}

need_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || die "'$c' not found; run install-podman.sh first"
    done
}

need_conf() {
    [[ -f "$CONTAINERS_CONF" ]] || die "$CONTAINERS_CONF missing; run install-podman.sh first"
}

# Seconds since the epoch with sub-second precision, and a duration printer.
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# Names under which an image must be stored so that every client finds it.
# podman stores an unqualified name as localhost/NAME, and resolves a short
# name in a Dockerfile's FROM to localhost/... first; the docker client and
# compose normalise `python:3.12` to docker.io/library/python:3.12, which is
# what podman's compat API then looks up. An unqualified NAME therefore gets
# both; a NAME with a registry part is used as is. First line = primary.
image_names() {
    local name="$1" first="${1%%/*}"
    if [[ "$name" == */* && ( "$first" == *.* || "$first" == *:* || "$first" == localhost ) ]]; then
        echo "$name"
    elif [[ "$name" == */* ]]; then
        printf '%s\n' "localhost/$name" "docker.io/$name"
    else
        printf '%s\n' "localhost/$name" "docker.io/library/$name"
    fi
}

# True when the image exists under all its names (re-tags a missing alias).
image_ready() {
    local names n primary
    mapfile -t names < <(image_names "$1")
    primary="${names[0]}"
    podman image exists "$primary" || return 1
    for n in "${names[@]:1}"; do
        podman image exists "$n" || podman tag "$primary" "$n"
    done
}

# Point every alias of NAME at the image stored as its primary name.
tag_aliases() {
    local names n
    mapfile -t names < <(image_names "$1")
    for n in "${names[@]:1}"; do podman tag "${names[0]}" "$n"; done
}

primary_name() { local a; mapfile -t a < <(image_names "$1"); echo "${a[0]}"; }
