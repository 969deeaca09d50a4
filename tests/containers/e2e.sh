#!/usr/bin/env bash
# e2e.sh PROJECT_DIR — the real container test, timed: the default CPU stack (llama.cpp runner)
# built and brought up with Docker Compose v2 through podman's Docker API, a question asked over
# HTTP, a cited answer from the right sample document checked, everything torn down.
#
#   tests/containers/e2e.sh build/demo             # a rendered project
#   KEEP_UP=1 tests/containers/e2e.sh build/demo   # leave the stack (and the podman service) running
#
# Nothing is pulled from a registry, GitHub or a model hub: the base images are made locally
# (debootstrap, pyenv's CPython, uv's wheel), the llama.cpp server image is replaced by a local
# stand-in (make-runner-image.sh: llama-cpp-python's server from build/wheels, via
# compose.test.yaml), and the model comes from a PyPI package served by a local mirror
# (hf_mirror.py). Needs root, apt (for podman, once) and PyPI.
#
# Environment: APP_PORT (default 18000), PROJECT_NAME (default container-tests-e2e),
# PYVER (the project's .python-version), UV_VERSION (0.13.8), SOCK (podman API socket), E2E_TIMEOUT (up --wait, 900 s).
set -o errexit -o nounset -o pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

project="$(realpath "${1:?usage: $0 PROJECT_DIR}")"
pyver="${PYVER:-$(cat "$project/.python-version")}"
uv_version="${UV_VERSION:-0.13.8}"
export PYTHON_IMAGE="${PYTHON_IMAGE:-python:$pyver-slim-bookworm}"
export UV_IMAGE="${UV_IMAGE:-ghcr.io/astral-sh/uv:$uv_version}"
export APP_PORT="${APP_PORT:-18000}"
sock="${SOCK:-$PODMAN_SHIM_HOME/run/container-tests.sock}"
name="${PROJECT_NAME:-container-tests-e2e}"
base_url="http://127.0.0.1:$APP_PORT"

declare -a timings=()
step() { # step LABEL CMD... — run and time one step
    local label="$1" t
    shift
    t="$(now)"
    log "== $label"
    "$@"
    timings+=("$(printf '%-34s %7ss' "$label" "$(elapsed "$t")")")
}
report() {
    printf '\ntimings:\n' >&2
    printf '  %s\n' "${timings[@]}" >&2
}

# ------------------------------------------------------------------ machine and images
step "podman (install-podman.sh)" "$here/install-podman.sh"
step "compose (install-compose.sh)" "$here/install-compose.sh"
# shellcheck source=/dev/null
. "$PODMAN_SHIM_HOME/env.sh"
step "base image" "$here/make-base-image.sh" debian:bookworm-slim
step "python image" "$here/make-python-image.sh" "$PYTHON_IMAGE" "$pyver"
step "uv image" "$here/make-uv-image.sh" "$uv_version" "$UV_IMAGE"
step "llama.cpp stand-in image" "$here/make-runner-image.sh"
TEST_HF_MIRROR="$("${TEST_PYTHON:-python3}" "$here/hf_mirror.py" "$project/models.yaml")"
export TEST_HF_MIRROR
step "podman API service" "$here/podman-service.sh" start "$sock" >/dev/null

# ------------------------------------------------------------------ the stack
export DOCKER_HOST="unix://$sock" DOCKER_BUILDKIT=0 COMPOSE_BAKE=false
# What `make up` passes (containers.mk), with the secret files in a private temporary folder.
secrets="$(mktemp -d)"
"$project/scripts/make-secrets.sh" "$secrets/secrets"
export RUNNER=llamacpp PROMPT_STYLE=completion SECRETS_HOST_DIR="$secrets/secrets"
APP_VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$project/pyproject.toml" | head -n 1)"
export APP_VERSION
test_files=("$here/compose.test.yaml")
# trace_ui=jaeger: an OTLP sink stands in for the Jaeger image (compose.traces.test.yaml).
jaeger=0
if grep -qs '^  jaeger:' "$project/compose.traces.yaml"; then
    jaeger=1
    test_files+=("$here/compose.traces.test.yaml")
    export OTLP_SINK="$here/otlp-sink.py"
fi
compose=(docker-compose -p "$name" --project-directory "$project" -f "$project/compose.yaml")
for f in "${test_files[@]}"; do compose+=(-f "$f"); done
compose+=(--profile llamacpp)
[[ -f "$project/.env" ]] && log "NOTE: $project/.env exists and is used by the stack (env_file)"

cleanup() {
    local rc=$?
    if [[ "${KEEP_UP:-0}" == 1 ]]; then
        log "KEEP_UP=1: stack left running (${compose[*]} down -v)"
    else
        if ((rc != 0)); then
            "${compose[@]}" ps -a >&2 || true
            "${compose[@]}" logs --no-color --tail=60 >&2 || true
        fi
        "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
        "$here/podman-service.sh" stop "$sock" >/dev/null 2>&1 || true
    fi
    rm -rf "$secrets"
    report
    exit "$rc"
}
trap cleanup EXIT

# `make up` as users run it (containers.mk), on this project name, with the test override.
make=(make --no-print-directory -C "$project" GPU=cpu RUNNER=llamacpp
    COMPOSE="docker-compose -p $name" COMPOSE_EXTRA_FILES="${test_files[*]}"
    SECRETS_HOST_DIR="$SECRETS_HOST_DIR" UP_TIMEOUT="${E2E_TIMEOUT:-900}")

step "compose config -q" "${compose[@]}" config -q
step "compose build (app image)" "${compose[@]}" build --quiet app
step "make up (up -d --build --wait)" "${make[@]}" up
"${make[@]}" ps >&2

# ------------------------------------------------------------------ checks
check() { # check LABEL PYTHON-ASSERTIONS < JSON
    python3 -c "import json, sys; d = json.load(sys.stdin); $2" \
        || die "check failed: $1"
    log "ok: $1"
}

exit_code() { podman inspect --format '{{.State.ExitCode}}' "$name-$1-1"; }
[[ "$(exit_code llamacpp-models)" == 0 ]] || die "llamacpp-models did not exit 0"
[[ "$(exit_code ingest)" == 0 ]] || die "ingest did not exit 0"
log "ok: one-shot jobs llamacpp-models and ingest exited 0"

curl -fsS "$base_url/readyz" | check "readyz: ready, index not empty, model reachable, probes pass" \
    "assert d['status'] == 'ready', d; assert ' 0 chunks' not in d['checks']['store']['detail'], d
assert 'answered as expected' in d['checks']['probes']['detail'], d"

uid="$("${compose[@]}" exec -T app id -u)"
[[ "$uid" == 10001 ]] || die "app runs as uid $uid, not 10001"
log "ok: app runs as uid 10001"

# The runtime image holds the app's main dependencies only: no llama-cpp-python (the model runs
# in the runner service), no dev or docs groups.
"${compose[@]}" exec -T app python3 -c 'import importlib.util as u, sys
extra = [m for m in ("llama_cpp", "pytest", "mkdocs", "ruff") if u.find_spec(m)]
sys.exit(f"not for the runtime image: {extra}" if extra else 0)' \
    || die "the app image has packages it should not"
log "ok: app image has no llama_cpp, pytest, mkdocs or ruff"

# The model file is pulled once: a second pull verifies it and downloads nothing.
"${compose[@]}" run --rm --no-deps -T llamacpp-models >"$secrets/pull.txt" 2>&1 \
    || { cat "$secrets/pull.txt" >&2; die "second models pull failed"; }
grep -q "present.*sha256 verified" "$secrets/pull.txt" \
    || { cat "$secrets/pull.txt" >&2; die "second models pull was not a verified no-op"; }
log "ok: models pull is idempotent (present, sha256 verified)"

# `<cli> ingest` inside the app container: the index is complete, nothing changes.
cli="$(sed -n '/^\[project.scripts\]/,/^\[/s/^\([A-Za-z0-9_.-]*\) *=.*/\1/p' "$project/pyproject.toml" \
    | head -n 1)"
step "$cli ingest in the app container" "${compose[@]}" exec -T app "$cli" ingest --json \
    >"$secrets/ingest.json"
check "re-ingest changes nothing" \
    "assert d['chunks_added'] == 0 and d['files_indexed'] == 0 and d['total_chunks'] > 0, d" \
    <"$secrets/ingest.json"

ask() { # ask QUESTION EXPECTED_DOCUMENT EXPECTED_FACT
    local t body
    t="$(now)"
    body="$(python3 -c 'import json, sys; print(json.dumps({"question": sys.argv[1]}))' "$1")"
    curl -fsS -H 'Content-Type: application/json' -d "$body" "$base_url/v1/ask" \
        >"$secrets/answer.json"
    timings+=("$(printf '%-34s %7ss' "ask: ${1:0:28}" "$(elapsed "$t")")")
    python3 - "$secrets/answer.json" "$2" "$3" <<'PY'
import json, sys
answer = json.load(open(sys.argv[1]))
document, fact = sys.argv[2:]
cited = [s["path"] for s in answer["sources"] if s["cited"]]
print(f"  Q -> {answer['answer']!r}\n  cited {cited} via {answer['model']}", file=sys.stderr)
assert cited and all(path == f"data/docs/{document}" for path in cited), answer["sources"]
assert fact in answer["answer"], answer["answer"]
assert answer["model"] and answer["usage"]["completion_tokens"] > 0, answer
PY
    log "ok: cited answer from data/docs/$2"
}
ask "What port does the staging server use?" environments.md 8443
ask "When does the daily standup start?" meetings.md 09:30
ask "How do I roll back a release?" deployments.md "heronctl rollback"

# Traces: the JSONL file in the index volume, shown by `<cli> traces`, with real token counts.
"${compose[@]}" exec -T app "$cli" traces --json >"$secrets/traces.json"
check "traces: ask spans with GenAI attributes and token counts in /app/var/traces.jsonl" "
spans = [s for t in d for s in t['spans']]
ops = ('chat', 'text_completion')
calls = [s for s in spans if s['attributes'].get('gen_ai.operation.name') in ops]
assert calls and all(s['attributes']['gen_ai.usage.output_tokens'] > 0 for s in calls), spans[:3]
assert 'rag.ask' in {s['name'] for s in spans}, sorted({s['name'] for s in spans})
" <"$secrets/traces.json"
if ((jaeger)); then
    # ...and the same spans over OTLP to the trace UI's collector port (batched: a few seconds).
    for _ in $(seq 30); do
        "${compose[@]}" exec -T jaeger python3 /opt/otlp-sink.py --dump >"$secrets/otlp.json"
        python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if all(d["keys"].values()) else 1)' \
            "$secrets/otlp.json" && break
        sleep 1
    done
    check "OTLP export to the trace UI (http://jaeger:4318) carries the GenAI attributes" \
        "assert d['requests'] > 0 and all(d['keys'].values()), d" <"$secrets/otlp.json"
fi

step "make down ARGS=-v" "${make[@]}" down ARGS=-v
[[ -z "$(podman ps -aq --filter "label=com.docker.compose.project=$name")" ]] \
    || die "containers left after make down"
log "e2e ok"
