#!/usr/bin/env bash
# bench.sh PROJECT_DIR — figures for the container layer: app image size (and what fills it),
# build times (fully cold, cold layers with a warm uv cache, warm, after a code change) and the
# time from `up` to healthy (empty volumes, then with the model and index already there).
#
#   tests/containers/bench.sh build/demo   # prints a table at the end; needs what e2e.sh needs
#   make bench-containers                  # renders the default project and runs this
#
# Works on a copy of the project (a code change is simulated there); the same images, stand-in
# runner and model mirror as e2e.sh. Environment: APP_PORT (default 18001), SOCK, PYVER,
# UV_VERSION, BENCH_FULLY_COLD=0 to skip the build with an empty uv cache (the slowest),
# BENCH_LOG=FILE to keep the commands' output.
set -o errexit -o nounset -o pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

source_project="$(realpath "${1:?usage: $0 PROJECT_DIR}")"
pyver="${PYVER:-$(cat "$source_project/.python-version")}"
uv_version="${UV_VERSION:-0.13.8}"
export PYTHON_IMAGE="${PYTHON_IMAGE:-python:$pyver-slim-bookworm}"
export UV_IMAGE="${UV_IMAGE:-ghcr.io/astral-sh/uv:$uv_version}"
export APP_PORT="${APP_PORT:-18001}"
sock="${SOCK:-$PODMAN_SHIM_HOME/run/container-tests-bench.sock}"
name=container-tests-bench

"$here/install-podman.sh" >/dev/null 2>&1
"$here/install-compose.sh" >/dev/null 2>&1
# shellcheck source=/dev/null
. "$PODMAN_SHIM_HOME/env.sh"
"$here/make-base-image.sh" debian:bookworm-slim >/dev/null 2>&1
"$here/make-python-image.sh" "$PYTHON_IMAGE" "$pyver" >/dev/null 2>&1
"$here/make-uv-image.sh" "$uv_version" "$UV_IMAGE" >/dev/null 2>&1
"$here/make-runner-image.sh" >/dev/null 2>&1
"$here/podman-service.sh" start "$sock" >/dev/null 2>&1

work="$(mktemp -d "${WORKDIR:-/var/tmp}/bench.XXXXXX")"
project="$work/project"
mkdir -p "$project"
tar -C "$source_project" --exclude=./.git --exclude=./.venv -cf - . | tar -C "$project" -xf -
"$project/scripts/make-secrets.sh" "$work/secrets" >/dev/null
# The test models and their mirror, as e2e.sh does (compose.test.yaml).
export TEST_DIR="$work/test" HF_MIRROR_SCRIPT="$here/hf_mirror.py"
set -o allexport
# shellcheck source=/dev/null
. <("${TEST_PYTHON:-python3}" "$here/hf_mirror.py" prepare "$project" "$TEST_DIR")
set +o allexport
export LLM_CONTEXT_TOKENS=2048 EMBEDDING_CONTEXT_TOKENS=512

export DOCKER_HOST="unix://$sock" DOCKER_BUILDKIT=0 COMPOSE_BAKE=false
export RUNNER=llamacpp SECRETS_HOST_DIR="$work/secrets"
APP_VERSION="bench-$$"
export APP_VERSION
compose=(docker-compose -p "$name" --project-directory "$project"
    -f "$project/compose.yaml" -f "$here/compose.test.yaml" --profile llamacpp)
# awk reads to the end: an early exit (grep -m1) would SIGPIPE compose under pipefail.
image="$("${compose[@]}" config --images | awk -v tag=":$APP_VERSION" \
    'substr($0, length($0) - length(tag) + 1) == tag && !seen { print; seen = 1 }')"
cleanup() {
    [[ -n "${BENCH_LOG:-}" && -f "$work/bench.log" ]] && cp "$work/bench.log" "$BENCH_LOG"
    "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
    podman rmi -f "$image" "localhost/$image" "docker.io/library/$image" >/dev/null 2>&1 || true
    "$here/podman-service.sh" stop "$sock" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

declare -a rows=()
measure() { # measure LABEL CMD...: time it, output to a log
    local label="$1" t
    shift
    log "== $label"
    t="$(now)"
    "$@" >>"$work/bench.log" 2>&1 || { tail -n 30 "$work/bench.log" >&2; die "$label failed"; }
    rows+=("$(printf '%-52s %8ss' "$label" "$(elapsed "$t")")")
}

if [[ "${BENCH_FULLY_COLD:-1}" == 1 ]]; then
    # buildah keeps RUN --mount=type=cache directories under $TMPDIR: a fresh TMPDIR is an
    # empty uv cache, i.e. every wheel downloaded again (what a new machine or CI runner sees).
    mkdir -p "$work/tmp"
    measure "build, fully cold (no layers, empty uv cache)" \
        env TMPDIR="$work/tmp" podman build --no-cache --isolation chroot --format docker \
        --build-arg PYTHON_IMAGE="$PYTHON_IMAGE" --build-arg UV_IMAGE="$UV_IMAGE" \
        -t "localhost/$image" "$project"
fi
measure "build, cold layers, warm uv cache (compose)" "${compose[@]}" build --no-cache app
measure "build, warm, nothing changed (compose)" "${compose[@]}" build app
init="$(find "$project/src" -mindepth 2 -maxdepth 2 -name '__init__.py' | head -n 1)"
printf '\n# benchmark: a code change\n' >>"$init"
measure "build, warm, one source file changed (compose)" "${compose[@]}" build app

size="$(podman image inspect --format '{{.Size}}' "$image")"
venv_top="$(podman run --rm --entrypoint sh "$image" -c \
    'cd /opt/venv/lib/python3*/site-packages && du -sm -- * | sort -rn | head -n 8' \
    | awk '{ printf "%s %s MB, ", $2, $1 }')"
base_size="$(podman image inspect --format '{{.Size}}' "$PYTHON_IMAGE")"

measure "up -d --wait, empty volumes (model pull + ingest)" \
    "${compose[@]}" up -d --wait --wait-timeout 900
# The app listens beyond loopback in its container: it needs an API key.
cli="$(sed -n '/^\[project.scripts\]/,/^\[/s/^\([A-Za-z0-9_.-]*\) *=.*/\1/p' "$project/pyproject.toml" \
    | head -n 1)"
key="$("${compose[@]}" exec -T app "$cli" keys create "bench-$(date +%s)" 2>/dev/null | tail -n 1)"
ask_ms() {
    curl -fsS -o /dev/null -w '%{time_total}' -H 'Content-Type: application/json' \
        -H "Authorization: Bearer $key" \
        -d '{"question": "What port does the staging server use?"}' \
        "http://127.0.0.1:$APP_PORT/v1/ask"
}
first_ask="$(ask_ms)"
second_ask="$(ask_ms)"
measure "down (volumes kept)" "${compose[@]}" down
measure "up -d --wait, warm (model and index present)" \
    "${compose[@]}" up -d --wait --wait-timeout 900
measure "down -v" "${compose[@]}" down -v

{
    printf '\nbenchmark (%s, %s cores, %s):\n' "$(date -u +%Y-%m-%dT%H:%MZ)" "$(nproc)" \
        "$(podman --version)"
    printf '  %-52s %8s\n' "app image $image" "$((size / 1000000)) MB"
    printf '  %-52s %8s\n' "  of which the base image $PYTHON_IMAGE" "$((base_size / 1000000)) MB"
    printf '  largest in /opt/venv: %s\n' "${venv_top%, }"
    printf '  %s\n' "${rows[@]}"
    printf '  %-52s %8ss\n' "POST /v1/ask (first, second)" "$first_ask, $second_ask"
} >&2
