#!/usr/bin/env bash
# make-python-image.sh TAG PYVER — build a stand-in for the official
# python:X.Y-slim-bookworm image without a registry: a local Debian base image
# (make-base-image.sh) plus a CPython that pyenv built on this (Debian) host,
# relocated to /usr/local like the official image (python3, pip, headers).
#
#   ./make-python-image.sh python:3.12-slim-bookworm 3.12      # newest 3.12.x in pyenv
#   ./make-python-image.sh python:3.12-slim-bookworm 3.12.1
#   PYTHON_PREFIX=/opt/py312 ./make-python-image.sh python:3.12-slim-bookworm 3.12
#   ./make-python-image.sh python:3.11-slim-bookworm system    # fallback: Debian's python3
#
# Skips when TAG exists (FORCE=1 rebuilds).
#
# Environment:
#   BASE_IMAGE     Debian image to start from (default debian:bookworm-slim;
#                  made with make-base-image.sh when missing)
#   PYTHON_PREFIX  install prefix of the CPython to copy (default: found in pyenv)
#   PYENV_ROOT     where pyenv lives (default: `pyenv root`, else ~/.pyenv)
#   PIP_VERSION    if set, `pip install pip==$PIP_VERSION` in the image (needs PyPI)
#   FORCE=1        rebuild (build cache still used: the COPY layer notices a
#                  changed interpreter; NO_CACHE=1 also refreshes the apt layer)
#   WORKDIR        where the build context is staged (default /var/tmp)
set -o errexit -o nounset -o pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

[[ $# -eq 2 ]] || die "usage: $0 TAG PYVER   (PYVER: 3.12, 3.12.1 or 'system')"
tag="$1"
pyver="$2"
base="${BASE_IMAGE:-debian:bookworm-slim}"

need_root
need_cmd podman tar
need_conf

t0="$(now)"
# Bumped when the image this script makes changes: an older one is rebuilt.
standin_version=2
if [[ "${FORCE:-0}" != 1 ]] && image_ready "$tag" && [[ "$(podman image inspect --format \
    '{{ index .Config.Labels "org.copier-llmops.python-standin" }}' "$(primary_name "$tag")")" \
    == "$standin_version" ]]; then
    log "image $tag exists — skipped (FORCE=1 rebuilds)"
    exit 0
fi
image_ready "$base" || "$here/make-base-image.sh" "$base"

work="$(mktemp -d "${WORKDIR:-/var/tmp}/pyimage.XXXXXX")"
trap 'rm -rf --one-file-system "$work"' EXIT
ctx="$work/ctx"
mkdir -p "$ctx"

if [[ "$pyver" == system ]]; then
    # ------------------------------------------------ (b) Debian's python3
    cat >"$ctx/Containerfile" <<'EOF'
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ENV LANG=C.UTF-8
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends python3 python3-venv python3-pip python3-dev; \
    rm -rf /var/lib/apt/lists/*; \
    rm -f /usr/lib/python3*/EXTERNALLY-MANAGED; \
    for b in python3 python pip3 pip; do \
        ln -sf "/usr/bin/$( [ "${b#pip}" != "$b" ] && echo pip3 || echo python3 )" "/usr/local/bin/$b"; \
    done; \
    python3 --version
CMD ["python3"]
EOF
else
    # ------------------------------------------------ (a) relocated CPython
    prefix="${PYTHON_PREFIX:-}"
    if [[ -z "$prefix" ]]; then
        root="${PYENV_ROOT:-}"
        [[ -n "$root" ]] || root="$(pyenv root 2>/dev/null || true)"
        [[ -n "$root" ]] || root="$HOME/.pyenv"
        [[ -d "$root/versions" ]] || die "no pyenv versions in $root (set PYENV_ROOT or PYTHON_PREFIX)"
        if [[ -x "$root/versions/$pyver/bin/python3" ]]; then
            prefix="$root/versions/$pyver"
        else
            # newest plain X.Y.Z matching PYVER (not -dev, t/free-threaded, envs)
            v="$(find "$root/versions" -mindepth 1 -maxdepth 1 -printf '%f\n' \
                | grep -E "^${pyver//./\\.}\.[0-9]+$" | sort -V | tail -n1 || true)"
            [[ -n "$v" ]] || die "no pyenv version matching $pyver in $root/versions"
            prefix="$root/versions/$v"
        fi
    fi
    prefix="$(cd "$prefix" && pwd -P)"
    py="$prefix/bin/python3"
    [[ -x "$py" ]] || die "$py not found"
    read -r full xy shared < <("$py" -c 'import sys, sysconfig
print("%d.%d.%d" % sys.version_info[:3], "%d.%d" % sys.version_info[:2],
      sysconfig.get_config_var("Py_ENABLE_SHARED") or 0)')
    [[ "$full" == "$pyver" || "$full" == "$pyver".* ]] || die "$py is $full, not $pyver"
    # The configure prefix is what is baked into scripts and sysconfig data.
    old_prefix="$("$py" -c 'import sysconfig; print(sysconfig.get_config_var("prefix"))')"
    log "using CPython $full from $prefix (shared=$shared, configured prefix $old_prefix)"
    "$py" -c 'import ssl, sqlite3, ctypes, zlib, bz2, lzma, readline, uuid, venv' \
        || die "$py lacks a standard module (built without some -dev package?)"

    # Stage /usr/local: the installation minus site-packages (the host's
    # packages, and possibly machine-specific .pth hacks), tests, static lib
    # and bytecode compiled for the old paths.
    t1="$(now)"
    stage="$ctx/usr/local"
    mkdir -p "$stage"
    tar -C "$prefix" \
        --exclude="./lib/python$xy/site-packages/*" \
        --exclude="./lib/python$xy/test" \
        --exclude="./lib/python$xy/idlelib/idle_test" \
        --exclude="./lib/python$xy/config-$xy-*/libpython*.a" \
        --exclude='__pycache__' --exclude='*.pyc' \
        --exclude="./bin/pip*" --exclude='./bin/*-gdb.py' \
        -cf - . | tar -C "$stage" -xf -
    # Find -name test/tests dirs of the stdlib like the official image does.
    find "$stage/lib/python$xy" -depth -type d \( -name test -o -name tests -o -name idle_test \) \
        -exec rm -rf {} +
    # tkinter needs Tk/X11 libraries the slim image does not have (the
    # official slim image does not either): drop the extension module.
    rm -f "$stage/lib/python$xy/lib-dynload/_tkinter"*.so
    # Relocate: rewrite the old prefix in every text file (shebangs,
    # _sysconfigdata, Makefile, python-config, *.pc).
    grep -rlIZ --fixed-strings "$old_prefix" "$stage" | xargs -0 -r sed -i "s|$old_prefix|/usr/local|g"
    # The official image links with -Wl,--strip-all: pyenv's build keeps its symbols (libpython
    # alone is 30 MB). Strip them before patchelf edits the files (strip after patchelf corrupts
    # them), so the stand-in weighs what the real image does.
    while IFS= read -r -d '' f; do
        if head -c 4 "$f" | grep -q 'ELF'; then strip --strip-unneeded "$f"; fi
    done < <(find "$stage" -type f \( -name '*.so' -o -name '*.so.*' -o -path "$stage/bin/python$xy" \) -print0)
    # ELF RUNPATHs still point at the old prefix (pyenv links with
    # -Wl,-rpath,PREFIX/lib). Harmless (ld.so falls back to ld.so.cache, and
    # ldconfig runs in the image) but drop them when patchelf is available.
    if command -v patchelf >/dev/null; then
        while IFS= read -r -d '' f; do
            if patchelf --print-rpath "$f" 2>/dev/null | grep -qF "$old_prefix"; then
                patchelf --remove-rpath "$f"
            fi
        done < <(find "$stage" -type f \( -name '*.so' -o -name '*.so.*' -o -path "$stage/bin/python*" \) -print0)
    else
        log "patchelf not found: ELF RUNPATHs keep $old_prefix/lib (harmless)"
    fi
    log "staged $(du -sh "$stage" | cut -f1) in $(elapsed "$t1")s"

    # Debian packages that provide the shared libraries the build links to
    # (the way the official image derives its runtime deps: ldd + dpkg -S).
    libs=()
    if command -v dpkg >/dev/null && command -v ldd >/dev/null; then
        mapfile -t libs < <(
            find "$prefix" -type f \( -name '*.so' -o -name '*.so.*' -o -path '*/bin/python*' \) \
                -not -name '_tkinter*' -print0 \
                | xargs -0 ldd 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u \
                | while read -r l; do
                    case "$l" in "$prefix"/*) continue ;; esac
                    r="$(readlink -f "$l")"
                    # usr-merge: dpkg may know the file under /lib or /usr/lib
                    dpkg -S "$r" 2>/dev/null || dpkg -S "${r#/usr}" 2>/dev/null || dpkg -S "$l" 2>/dev/null || true
                done | cut -d: -f1 | sort -u)
    fi
    if ((${#libs[@]} == 0)); then
        log "dpkg could not map the libraries: using the bookworm list"
        libs=(libbz2-1.0 libcrypt1 libexpat1 libffi8 liblzma5 libncursesw6 libnsl2 libreadline8
              libsqlite3-0 libssl3 libtinfo6 libtirpc3 libuuid1 zlib1g)
    fi
    log "runtime libraries: ${libs[*]}"

    pip_upgrade=""
    [[ -n "${PIP_VERSION:-}" ]] && pip_upgrade="python3 -m pip install --no-cache-dir pip==$PIP_VERSION;"
    cat >"$ctx/Containerfile" <<EOF
ARG BASE_IMAGE
FROM \${BASE_IMAGE}
ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \\
    LANG=C.UTF-8 \\
    PYTHON_VERSION=$full
RUN set -eux; \\
    apt-get update; \\
    apt-get install -y --no-install-recommends ${libs[*]}; \\
    rm -rf /var/lib/apt/lists/*
COPY usr/local /usr/local
RUN set -eux; \\
    ldconfig; \\
    if find /usr/local -type f \\( -name '*.so' -o -name '*.so.*' -o -path '/usr/local/bin/python*' \\) \\
         -exec ldd {} + 2>/dev/null | grep 'not found'; then echo 'missing libraries' >&2; exit 1; fi; \\
    python3 -m ensurepip --default-pip; \\
    $pip_upgrade \\
    python3 -m compileall -q -j 0 /usr/local/lib/python$xy >/dev/null; \\
    find /usr/local/bin \\( -name 'python*' -o -name 'pip*' \\) | sort; \\
    python3 -c 'import ssl, sqlite3, ctypes, venv, zlib, bz2, lzma, readline, uuid, sys; print(sys.version, ssl.OPENSSL_VERSION)'; \\
    rm -rf /root/.cache
CMD ["python3"]
EOF
fi

echo "LABEL org.copier-llmops.python-standin=$standin_version" >>"$ctx/Containerfile"

t2="$(now)"
log "building $tag from $base"
nocache=()
[[ "${NO_CACHE:-0}" == 1 ]] && nocache=(--no-cache)
if ! podman build --isolation chroot --runtime runc "${nocache[@]}" \
    --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
    --build-arg BASE_IMAGE="$base" -t "$(primary_name "$tag")" -f "$ctx/Containerfile" "$ctx" \
    >"$work/build.log" 2>&1; then
    tail -n 40 "$work/build.log" >&2
    die "podman build failed"
fi
tag_aliases "$tag"
log "built $tag in $(elapsed "$t2")s; total $(elapsed "$t0")s"

# Smoke test with the flags any run here needs.
podman run --rm "${PODMAN_RUN_FLAGS[@]}" "$tag" python3 -c \
    'import ssl, sqlite3, ctypes, venv, sys; print(sys.executable, sys.version.split()[0], ssl.OPENSSL_VERSION, "sqlite", sqlite3.sqlite_version)' >&2
podman run --rm "${PODMAN_RUN_FLAGS[@]}" "$tag" pip --version >&2
