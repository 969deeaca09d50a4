#!/usr/bin/env bash
# devcontainer.sh PROJECT_DIR [VARIANT] — opens a generated project's devcontainer for real with
# the Dev Containers CLI (the spec's reference implementation) on podman's Docker-compatible
# API, as a non-root host user, and checks what a new engineer relies on. Timed.
#
#   VARIANT: default (.devcontainer/devcontainer.json), gpu (.devcontainer/gpu/: on this CPU-only
#   host), or offline (.devcontainer/prebuilt/ on a dev image saved to a tar and loaded back,
#   with the podman service in a network namespace that has no network at all).
#
# What it checks, inside the container as the remote user `dev`:
#   - `devcontainer up` (build of the Dockerfile's dev stage, updateRemoteUserUID, postCreate
#     `make setup`) and then `make check` pass; both timed;
#   - `dev` has the host user's uid, and a file created in the workspace belongs to that user
#     on the host (updateRemoteUserUID; the host user is made up, uid DEVC_UID, so the uid
#     really changes);
#   - the interpreter, ruff and mypy that the editor settings name resolve;
#   - the sample question is answered on the tiny test models, with environments.md cited
#     (default and offline: in-process runner, models copied into the workspace's models/;
#     gpu: the llama.cpp servers the variant starts, models pulled from a local HF mirror);
#   - `make serve` serves the chat page on the forwarded port (8000; the CLI does not forward
#     ports: VS Code forwards by connecting inside the container, which is what is checked);
#   - gpu: the variant says its models run on the CPU.
# The host user is made up inside a private mount namespace (/etc/passwd and /etc/group bound
# over), so nothing on the machine changes. Features are not used (they come from a registry).
#
# Environment: PYVER, UV_VERSION (0.13.8), DEVC_UID (1717), KEEP_UP=1, TEST_PYTHON (with
# the template's test dependencies, for the test models), DEVC_COLD=1 (a cold open: the dev
# image built with --no-cache and empty apt/uv cache mounts, as on a machine that never built
# it; the base images stay, as if pulled).
set -o errexit -o nounset -o pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

source_project="$(realpath "${1:?usage: $0 PROJECT_DIR [default|gpu|offline]}")"
variant="${2:-default}"
case "$variant" in
    default) config=.devcontainer/devcontainer.json ;;
    gpu) config=.devcontainer/gpu/devcontainer.json ;;
    offline) config=.devcontainer/prebuilt/devcontainer.json ;;
    *) die "VARIANT must be default, gpu or offline" ;;
esac
[[ -f "$source_project/$config" ]] || die "$source_project has no $config"
pyver="${PYVER:-$(cat "$source_project/.python-version")}"
uv_version="${UV_VERSION:-0.13.8}"
export PYTHON_IMAGE="${PYTHON_IMAGE:-python:$pyver-slim-bookworm}"
export UV_IMAGE="${UV_IMAGE:-ghcr.io/astral-sh/uv:$uv_version}"
uid="${DEVC_UID:-1717}"
py="${TEST_PYTHON:-python3}"
need_root

declare -a timings=()
step() { # step LABEL CMD... — run a step, time it, and fail with its exit code
    local label="$1" t rc=0
    shift
    t="$(now)"
    log "== $label"
    "$@" || rc=$?
    timings+=("$(printf '%-44s %7ss' "$label" "$(elapsed "$t")")")
    return "$rc"
}

# ------------------------------------------------------------------ what the host user runs
# Everything the made-up host user runs or reads (the Dev Containers CLI, the compose binary,
# the workspace, the engine's socket) lives in one work folder that this script makes for it.
# The clone itself may sit where that user cannot enter (root's home is 0700, Ubuntu homes
# 0750): nothing is run from there, and nothing of the user's own is loosened.
work="$(mktemp -d "${WORKDIR:-/var/tmp}/devcontainer-test.XXXXXX")"
sock="$work/run/podman.sock"
ws="$work/ws/$(basename "$source_project")"
mirror_pid=""
standin_tags=()
project_name=""
cleanup() {
    local rc=$?
    if [[ "${KEEP_UP:-0}" == 1 ]]; then
        log "KEEP_UP=1: left running (workspace $ws, DOCKER_HOST=unix://$sock)"
    else
        if [[ -n "$project_name" ]]; then
            ((rc == 0)) || DOCKER_HOST="unix://$sock" docker-compose -p "$project_name" logs \
                --no-color --tail=40 >&2 || true
            DOCKER_HOST="unix://$sock" docker-compose -p "$project_name" down -v \
                --remove-orphans >/dev/null 2>&1 || true
        fi
        [[ ! -S "$sock" ]] || "$here/podman-service.sh" stop "$sock" >/dev/null 2>&1 || true
        [[ -z "$mirror_pid" ]] || kill "$mirror_pid" 2>/dev/null || true
        for tag in "${standin_tags[@]}"; do podman untag "$tag" 2>/dev/null || true; done
        # The uid-patched images the CLI made for this made-up user (vsc-*-uid).
        if command -v podman >/dev/null; then
            podman images --format '{{.Repository}}:{{.Tag}}' | grep -E '(^|/)vsc-[^:/]*-uid:' \
                | xargs -r podman rmi >/dev/null 2>&1 || true
        fi
        rm -rf "$work"
    fi
    if ((${#timings[@]})); then
        printf '\ntimings (%s):\n' "$variant" >&2
        printf '  %s\n' "${timings[@]}" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
chmod 711 "$work"
mkdir -p "$work"/{ws,home,bin,docker/cli-plugins,etc,run,test,cli}

as_host_user() { # as_host_user CMD... — CMD with the made-up host user's uid and gid only
    setpriv --reuid="$uid" --regid="$uid" --clear-groups "$@"
}
host_user_reaches() { # host_user_reaches PATH TESTS — die naming what uid $uid cannot use
    local path="$1" tests="$2" dir="" part t
    local -a parts
    IFS=/ read -r -a parts <<<"${path#/}"
    for part in "${parts[@]:0:${#parts[@]}-1}"; do
        dir="$dir/$part"
        as_host_user test -x "$dir" || die "the devcontainer's host user (uid $uid) cannot enter" \
            "$dir ($(stat -c '%A, owned by %U' "$dir")), on the way to $path: put it" \
            "elsewhere (WORKDIR names the work folder; default /var/tmp)"
    done
    for ((t = 0; t < ${#tests}; t++)); do
        as_host_user test "-${tests:t:1}" "$path" || die "the devcontainer's host user" \
            "(uid $uid) cannot $(case "${tests:t:1}" in r) echo read ;; w) echo write ;;
                x) echo run ;; esac) $path ($(stat -c '%A, owned by %U' "$path"))"
    done
}
host_user_reaches "$work" x

# The Dev Containers CLI, installed once in the clone (build/), copied into the work folder.
cli_install="$("$here/install-devcontainer-cli.sh" 2>"$work/cli-install.log")" \
    || { cat "$work/cli-install.log" >&2; die "could not install the Dev Containers CLI"; }
cp -a "${cli_install%/node_modules/*}/node_modules" "$work/cli/"
chmod -R a+rX "$work/cli"
cli="$work/cli/node_modules/${cli_install#*/node_modules/}"
node="$(command -v node)"
host_user_reaches "$(readlink -f "$node")" rx
host_user_reaches "$cli" r

# ------------------------------------------------------------------ machine and images
"$here/install-podman.sh" >/dev/null 2>&1 || "$here/install-podman.sh"
"$here/install-compose.sh" >/dev/null 2>&1 || "$here/install-compose.sh"
# shellcheck source=/dev/null
. "$PODMAN_SHIM_HOME/env.sh"
"$here/make-base-image.sh" debian:bookworm-slim >/dev/null 2>&1
"$here/make-python-image.sh" "$PYTHON_IMAGE" "$pyver" >/dev/null 2>&1
"$here/make-uv-image.sh" "$uv_version" "$UV_IMAGE" >/dev/null 2>&1

cp -a "$source_project" "$ws"
rm -rf "$ws/.venv"

# The tiny test models (tests/models.py) and the portable llama-cpp-python wheel the template
# builds (build/wheels): what a workshop bundle carries. The dev stage installs the wheel from
# build/wheels instead of compiling llama-cpp-python.
"$py" -c 'import shutil, sys
from pathlib import Path
sys.path[:0] = [sys.argv[2]]
from models import chat_gguf, embedding_gguf, model_env
ws = Path(sys.argv[1])
(ws / "models").mkdir(exist_ok=True)
for path in (chat_gguf(), embedding_gguf()):
    shutil.copyfile(path, ws / "models" / path.name)
settings = model_env()
settings["CHAT_MODEL_PATH"] = f"models/{chat_gguf().name}"
settings["EMBEDDING_MODEL_PATH"] = f"models/{embedding_gguf().name}"
with (ws / ".env").open("a", encoding="utf-8") as env:
    env.write("\n# The tiny test models (tests/containers/devcontainer.sh)\n")
    env.writelines(f"{key}={value}\n" for key, value in settings.items())
' "$ws" "$here/.."
wheels="$("$py" "$here/../wheelhouse.py" --folder)"
mkdir -p "$ws/build/wheels"
cp "$wheels"/llama_cpp_python-*.whl "$ws/build/wheels/"

# The GPU variant starts the llama.cpp servers: the stand-in under the pinned image's name, and
# the project's llm.yaml on the test models, pulled from a local mirror on the host.
if [[ "$variant" == gpu ]]; then
    "$here/make-runner-image.sh" >/dev/null 2>&1
    pinned="$(sed -n 's/^ *image: \(ghcr.io\/ggml-org\/llama.cpp:server-b[0-9]*\)$/\1/p' \
        "$ws/compose.llamacpp.yaml" | head -n 1)"
    [[ -n "$pinned" ]] || die "no pinned llama.cpp image in compose.llamacpp.yaml"
    if ! podman image exists "$pinned"; then
        podman tag localhost/llamacpp-standin-test:0.3.36 "$pinned"
        standin_tags+=("$pinned")
    fi
    "$py" "$here/hf_mirror.py" prepare "$ws" "$work/test" >"$work/test/models.env"
    cp "$work/test/llm.yaml" "$ws/llm.yaml"
    port=18600
    setsid "$py" "$here/hf_mirror.py" serve "$work/test" --port "$port" \
        </dev/null >"$work/mirror.log" 2>&1 &
    mirror_pid=$!
    {
        echo "HF_ENDPOINT=http://host.containers.internal:$port"
        cat "$work/test/models.env"
        echo "LLM_CONTEXT_TOKENS=2048"
    } >>"$ws/.env"
    # compose reads .env for interpolation too: the servers load the test files.
fi
# pgvector projects start the stack's Postgres with the dev container: the stand-in under the
# pinned image's name.
if [[ -f "$ws/compose.pgvector.yaml" ]]; then
    "$here/make-pgvector-image.sh" >/dev/null 2>&1 || "$here/make-pgvector-image.sh"
    pinned="$(sed -n 's/^ *image: \(pgvector\/pgvector:[^ ]*\)$/\1/p' "$ws/compose.pgvector.yaml" | head -n 1)"
    [[ -n "$pinned" ]] || die "no pinned pgvector image in compose.pgvector.yaml"
    if ! podman image exists "$pinned"; then
        podman tag localhost/pgvector-standin-test:0.6.0 "$pinned"
        standin_tags+=("$pinned")
    fi
fi
chown -R "$uid:$uid" "$work/ws" "$work/home" "$work/run"

# The made-up host user, and the tools it runs (root's own are under /root).
cp /etc/passwd /etc/group "$work/etc/"
echo "devhost:x:$uid:$uid:devcontainer test user:$work/home:/bin/bash" >>"$work/etc/passwd"
echo "devhost:x:$uid:" >>"$work/etc/group"
ln -f "$(readlink -f "$PODMAN_SHIM_HOME/bin/docker-compose")" "$work/bin/docker-compose" 2>/dev/null \
    || cp "$(readlink -f "$PODMAN_SHIM_HOME/bin/docker-compose")" "$work/bin/docker-compose"
ln -s "$work/bin/docker-compose" "$work/docker/cli-plugins/docker-compose"
echo '{}' >"$work/docker/config.json"
chmod -R a+rX "$work/bin" "$work/docker" "$work/etc"

# The podman API service, reachable by the host user only. The offline variant runs it in a
# network namespace of its own: only loopback, no route anywhere.
netns=()
if [[ "$variant" == offline ]]; then
    # The dev image as a workshop bundle carries it: saved to a tar, loaded back.
    dev_image="$(sed -n 's/^ *image: \${DEVCONTAINER_IMAGE:-\(.*\)}$/\1/p' \
        "$ws/.devcontainer/prebuilt/compose.prebuilt.yaml")"
    podman image exists "$dev_image" \
        || die "no $dev_image: open the default variant once first (it builds the dev stage)"
    # (Untagged rather than removed: its layers may still back the build cache.)
    step "dev image: save to a tar, untag, load" bash -c "podman save -o '$work/dev.tar' '$dev_image' \
        && podman untag '$dev_image' && ! podman image exists '$dev_image' \
        && podman load -i '$work/dev.tar' >/dev/null && podman image exists '$dev_image'"
    netns=(unshare --net)
fi
cold=()
if [[ "${DEVC_COLD:-0}" == 1 ]]; then
    # buildah keeps RUN --mount=type=cache directories under the service's TMPDIR.
    mkdir -p "$work/tmp"
    netns=(env TMPDIR="$work/tmp" "${netns[@]}")
    cold=(--build-no-cache)
fi
start_service() {
    "${netns[@]}" "$here/podman-service.sh" start "$sock" >/dev/null
    chown "$uid:$uid" "$sock"
}
step "podman API service$([[ "$variant" == offline ]] && echo " (no network)")" start_service

as_user() { # as_user CMD... — run as the made-up host user, with the tools on its PATH
    unshare --mount --propagation private -- bash -c '
        mount --bind "$1/etc/passwd" /etc/passwd && mount --bind "$1/etc/group" /etc/group
        uid="$2"
        shift 2
        exec setpriv --reuid="$uid" --regid="$uid" --clear-groups "$@"' \
        bash "$work" "$uid" env -i HOME="$work/home" USER=devhost LOGNAME=devhost \
        PATH="$work/bin:/usr/local/bin:/usr/bin:/bin" DOCKER_HOST="unix://$sock" \
        DOCKER_CONFIG="$work/docker" DOCKER_BUILDKIT=0 COMPOSE_BAKE=false \
        PYTHON_IMAGE="$PYTHON_IMAGE" UV_IMAGE="$UV_IMAGE" "$@"
}
# The CLI talks to the engine through a Docker client on podman's socket; where no Docker client
# is installed, podman itself (the CLI supports it as its docker path).
docker_cli="$(PATH="/usr/local/bin:/usr/bin:/bin" command -v docker || command -v podman)"
devcontainer() { # devcontainer SUBCOMMAND ARGS...
    local sub="$1"
    shift
    as_user "$node" "$cli" "$sub" --workspace-folder "$ws" --config "$ws/$config" \
        --docker-path "$docker_cli" --docker-compose-path "$work/bin/docker-compose" "$@"
}
inside() { devcontainer exec "$@"; }


# ------------------------------------------------------------------ up, then make check
# A run that was killed (or died before it knew its compose project) leaves its containers; the
# CLI would find them by their labels and exec into a stopped one. Remove them first.
podman ps -a --format '{{.Names}}' | grep -E "^$(basename "$ws")[-_]devcontainer[-_]" \
    | xargs -r podman rm -f >/dev/null 2>&1 || true
# ... and its volumes: a Postgres volume initialised with another run's password refuses this one.
podman volume ls --format '{{.Name}}' | grep -E "^$(basename "$ws")[-_]devcontainer[-_]" \
    | xargs -r podman volume rm -f >/dev/null 2>&1 || true
for path in "$work/bin/docker-compose" "$docker_cli"; do host_user_reaches "$path" x; done
host_user_reaches "$sock" rw
host_user_reaches "$ws" rwx
host_user_reaches "$ws/$config" r
up_field() { # up_field KEY — KEY of the CLI's result (its last JSON line), empty if none
    python3 - "$work/up.json" "$1" <<'PY'
import json, sys
lines = [line for line in open(sys.argv[1], encoding="utf-8", errors="replace") if line.startswith("{")]
try:
    print(json.loads(lines[-1]).get(sys.argv[2]) or "")
except (IndexError, ValueError):
    print("")
PY
}
t_up="$(now)"
step "devcontainer up ($variant${cold:+, cold})" devcontainer up --buildkit never --log-level info "${cold[@]}" \
    >"$work/up.json" 2>"$work/up.log" \
    || { tail -n 60 "$work/up.log" >&2; die "devcontainer up failed: $(up_field message)" \
        "$(up_field description | head -c 400)"; }
[[ "$(up_field outcome)" == success && "$(up_field remoteUser)" == dev ]] || {
    tail -n 60 "$work/up.log" >&2
    die "devcontainer up did not succeed as dev: outcome '$(up_field outcome)'," \
        "remote user '$(up_field remoteUser)' $(up_field message)"
}
container="$(up_field containerId)"
project_name="$(podman inspect --format \
    '{{ index .Config.Labels "com.docker.compose.project" }}' "$container")"
grep -q "Running the postCreateCommand" "$work/up.log" && grep -q "pre-commit installed" "$work/up.log" \
    || die "postCreateCommand (make setup) did not run"
log "ok: devcontainer up ($variant): container ${container:0:12}, project $project_name"
if [[ "$variant" == default ]]; then
    step "make check inside" inside make check >"$work/check.log" 2>&1 \
        || { tail -n 60 "$work/check.log" >&2; die "make check failed inside the devcontainer"; }
    up_to_green="$(elapsed "$t_up")s"
    log "ok: make check green inside; devcontainer up -> green make check: ${up_to_green}"
else
    # The other variants share the image and the postCreate `make setup`; `make check` is the
    # default variant's (its wall time is mostly mypy on a cold cache).
    up_to_green="(no make check in this variant)"
fi

# ------------------------------------------------------------------ the checks
[[ "$(inside id -u 2>/dev/null)" == "$uid" && "$(inside id -un 2>/dev/null)" == dev ]] \
    || die "the remote user is not dev with the host user's uid $uid"
inside touch "made-inside.txt" >/dev/null 2>&1
[[ "$(stat -c %u:%g "$ws/made-inside.txt")" == "$uid:$uid" ]] \
    || die "a file made inside belongs to $(stat -c %u:%g "$ws/made-inside.txt") on the host, not $uid:$uid"
[[ "$(stat -c %u "$ws/.venv" 2>/dev/null || echo none)" == none ]] \
    || die "make setup made a .venv in the workspace (UV_PROJECT_ENVIRONMENT is /opt/venv)"
log "ok: remote user dev has the host user's uid $uid; workspace files made inside are the host user's"

inside bash -c '/opt/venv/bin/python --version && /opt/venv/bin/ruff --version \
    && /opt/venv/bin/python -m mypy --version' >"$work/tools.txt" 2>&1 \
    || { cat "$work/tools.txt" >&2; die "the editor's interpreter, ruff or mypy is missing"; }
log "ok: editor tools resolve: $(tr '\n' ' ' <"$work/tools.txt")"

if [[ "$variant" == gpu ]]; then
    gpu="$(inside printenv DEVCONTAINER_GPU 2>/dev/null)"
    [[ "$gpu" == cpu ]] || die "the GPU variant says DEVCONTAINER_GPU=$gpu on a CPU-only host"
    grep -q "runs on the CPU" "$work/up.log" || die "initializeCommand did not say it runs on the CPU"
    grep -q "runner runs on: cpu" "$work/up.log" || die "postStartCommand did not say cpu"
    log "ok: GPU variant opened on a CPU-only host and says its models run on the CPU"
fi

cmd="$(sed -n '/^\[project.scripts\]/,/^\[/s/^\([A-Za-z0-9_.-]*\) *=.*/\1/p' "$ws/pyproject.toml" | head -n 1)"
step "ingest + ask inside ($variant)" inside bash -c "uv run --locked $cmd ingest --json >/tmp/ingest.json \
    && uv run --locked $cmd ask 'What port does the staging server use?' --json" \
    >"$work/answer.json" 2>"$work/ask.log" \
    || { tail -n 30 "$work/ask.log" >&2; die "ingest or ask failed inside"; }
python3 - "$work/answer.json" <<'PY' || die "the answer inside the devcontainer is not what it should be"
import json, sys
text = open(sys.argv[1], encoding="utf-8").read()
answer = json.loads(text[text.index("{"):])
cited = [s["path"] for s in answer["sources"] if s["cited"]]
print(f"  answer: {answer['answer']!r} cited {cited} via {answer['model']}", file=sys.stderr)
assert cited and set(cited) == {"data/docs/environments.md"}, answer["sources"]
assert answer["model"] and answer["usage"]["completion_tokens"] > 0, answer
PY
log "ok: the sample question answered inside on the tiny model, citing data/docs/environments.md"

if [[ "$variant" == default ]] && grep -q '"forwardPorts"' "$ws/$config"; then
    inside bash -c "(make serve >/tmp/serve.log 2>&1 &) ; for i in \$(seq 60); do \
        python3 -c \"import urllib.request as u; page = u.urlopen('http://127.0.0.1:8000/', timeout=2).read().decode(); \
assert '<html' in page.lower(), page[:200]; print('chat page', len(page), 'bytes')\" 2>/dev/null && exit 0; sleep 1; done; \
        cat /tmp/serve.log; exit 1" >"$work/serve.txt" 2>&1 \
        || { cat "$work/serve.txt" >&2; die "make serve did not serve the chat page on port 8000"; }
    log "ok: make serve serves the chat page on the forwarded port 8000 ($(tail -n 1 "$work/serve.txt"))"
fi

if [[ "$variant" == offline ]]; then
    inside python3 -c 'import socket; socket.create_connection(("pypi.org", 443), timeout=5)' \
        >/dev/null 2>&1 && die "the offline devcontainer can reach pypi.org"
    log "ok: no network inside (pypi.org unreachable), and it came up and passed anyway"
fi
log "devcontainer ($variant) ok; up -> green make check: ${up_to_green}"
