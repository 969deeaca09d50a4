#!/usr/bin/env bash
# make-runner-image.sh [TAG] — the test stand-in for the llama.cpp server image: llama-cpp-python's
# server (llamacpp-standin/llama-server.py) on the local python image, same configuration
# (LLAMA_ARG_*), same probe (GET /health) and same curl-based healthcheck as the real image.
#
#   ./make-runner-image.sh                   # localhost/llamacpp-standin-test:<version>
#
# llama-cpp-python[server]==LLAMA_CPP_PYTHON_VERSION (default 0.3.36) is installed on the host
# with `uv pip install --target` for the CPython the python image was made from, from the wheel
# in build/wheels/<version>-<flags> (WHEELS_DIR; `make wheels` builds it once) and its extra's dependencies from
# PyPI, then copied into the image: no compiler in the image, nothing compiled here, no download
# in the build but Debian's apt. The installed tree is cached in CT_CACHE (default
# ${XDG_CACHE_HOME:-~/.cache}/copier-llmops-containers).
# Skips when TAG exists (FORCE=1 rebuilds).
#
# Environment: PYTHON_IMAGE (default python:3.12-slim-bookworm), PYVER (3.12: the pyenv CPython
# the python image holds), LLAMA_CPP_PYTHON_VERSION.
set -o errexit -o nounset -o pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

version="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
tag="${1:-localhost/llamacpp-standin-test:$version}"
python_image="${PYTHON_IMAGE:-python:3.12-slim-bookworm}"
pyver="${PYVER:-3.12}"

need_cmd podman uv
need_conf
# The stand-in's own files, hashed: an image made from older ones is rebuilt.
digest="$(cat "$here/llamacpp-standin/llama-server.py" "$here/llamacpp-standin/Containerfile" \
    | sha256sum | cut -c1-16)"
if [[ "${FORCE:-0}" != 1 ]] && image_ready "$tag" && [[ "$(podman image inspect --format \
    '{{ index .Config.Labels "org.copier-llmops.standin-digest" }}' "$(primary_name "$tag")")" \
    == "$digest" ]]; then
    log "image $tag exists — skipped (FORCE=1 rebuilds)"
    exit 0
fi
image_ready "$python_image" || die "$python_image missing: run make-python-image.sh first"

# The interpreter the python image was made from (make-python-image.sh copies a pyenv CPython).
python="${PYTHON_FOR_IMAGE:-}"
if [[ -z "$python" ]]; then
    python="$(podman run --rm "${PODMAN_RUN_FLAGS[@]}" "$python_image" python3 -c \
        'import platform; print(platform.python_version())')"
    prefix="$(compgen -G "${PYENV_ROOT:-$HOME/.pyenv}/versions/$python" | head -n 1)" \
        || die "no pyenv CPython $python on the host: set PYTHON_FOR_IMAGE"
    python="$prefix/bin/python3"
fi
[[ -x "$python" ]] || die "$python is not executable (set PYTHON_FOR_IMAGE)"
log "python for the image's site-packages: $python (image $python_image, PYVER $pyver)"

t0="$(now)"
# The llama-cpp-python wheel built once by the template repo's `make wheels` (never compiled
# here), plus its [server] extra's dependencies from PyPI.
wheels="${WHEELS_DIR:-$(python3 "$here/../wheelhouse.py" --folder)}"
compgen -G "$wheels/llama_cpp_python-$version-*.whl" >/dev/null \
    || die "no llama_cpp_python-$version wheel in $wheels: run \`make wheels\` in the template repo"
cache="${CT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/copier-llmops-containers}/standin-$(basename "$wheels")-py$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
ctx="$(mktemp -d "${WORKDIR:-/var/tmp}/standin.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT
if [[ ! -f "$cache/.complete" ]]; then
    log "installing llama-cpp-python[server]==$version from $wheels into $cache"
    rm -rf "$cache"
    uv pip install --quiet --python "$python" --target "$cache" --find-links "$wheels" \
        --only-binary llama-cpp-python "llama-cpp-python[server]==$version"
    touch "$cache/.complete"
fi
cp -a "$cache" "$ctx/site-packages"
rm -f "$ctx/site-packages/.complete"
cp "$here/llamacpp-standin/llama-server.py" "$here/llamacpp-standin/Containerfile" "$ctx/"
podman build --quiet --isolation chroot --format docker \
    --build-arg PYTHON_IMAGE="$python_image" --label "org.copier-llmops.standin-digest=$digest" \
    -t "$(primary_name "$tag")" -f "$ctx/Containerfile" "$ctx" >/dev/null
tag_aliases "$tag"
log "built $tag in $(elapsed "$t0")s"
