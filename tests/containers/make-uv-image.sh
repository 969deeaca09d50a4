#!/usr/bin/env bash
# make-uv-image.sh VERSION [TAG] — make a stand-in for the official uv image
# (ghcr.io/astral-sh/uv:VERSION: FROM scratch with /uv and /uvx) from the uv
# wheel on PyPI, so a Dockerfile's `COPY --from=${UV_IMAGE} /uv /uvx ...` or
# `FROM ${UV_IMAGE} AS uv` works with no container registry.
#
#   ./make-uv-image.sh 0.13.9                      # tags ghcr.io/astral-sh/uv:0.13.9
#   ./make-uv-image.sh 0.13.9 localhost/uv:0.13.9
#
# Skips when TAG exists (FORCE=1 rebuilds). Needs a python3 with pip that
# reaches PyPI (or PIP_INDEX_URL / PIP_FIND_LINKS for a mirror or wheelhouse).
set -o errexit -o nounset -o pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

[[ $# -ge 1 ]] || die "usage: $0 VERSION [TAG]"
version="$1"
tag="${2:-ghcr.io/astral-sh/uv:$version}"
python="${PYTHON:-python3}"

need_cmd podman "$python"
need_conf
if [[ "${FORCE:-0}" != 1 ]] && image_ready "$tag"; then
    log "image $tag exists — skipped (FORCE=1 rebuilds)"
    exit 0
fi

t0="$(now)"
work="$(mktemp -d "${WORKDIR:-/var/tmp}/uvimage.XXXXXX")"
trap 'rm -rf "$work"' EXIT
case "$(uname -m)" in
    x86_64) plat=manylinux_2_17_x86_64 ;;
    aarch64) plat=manylinux_2_17_aarch64 ;;
    *) die "unsupported architecture $(uname -m)" ;;
esac
"$python" -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: --platform "$plat" --python-version 3.12 \
    -d "$work/dl" "uv==$version"
whl="$(find "$work/dl" -name 'uv-*.whl' | head -n1)"
[[ -n "$whl" ]] || die "no uv wheel downloaded"
mkdir -p "$work/ctx"
"$python" - "$whl" "$work/ctx" <<'PY'
import os, sys, zipfile
whl, out = sys.argv[1:]
with zipfile.ZipFile(whl) as z:
    for n in z.namelist():
        base = os.path.basename(n)
        if "/scripts/" in n and base in ("uv", "uvx"):
            p = os.path.join(out, base)
            with open(p, "wb") as f:
                f.write(z.read(n))
            os.chmod(p, 0o755)
PY
[[ -x "$work/ctx/uv" && -x "$work/ctx/uvx" ]] || die "uv/uvx not found in $whl"
"$work/ctx/uv" --version >&2
printf 'FROM scratch\nCOPY uv uvx /\nENTRYPOINT ["/uv"]\n' >"$work/ctx/Containerfile"
podman build --quiet --isolation chroot -t "$(primary_name "$tag")" \
    -f "$work/ctx/Containerfile" "$work/ctx" >/dev/null
tag_aliases "$tag"
log "built $tag in $(elapsed "$t0")s"
