#!/usr/bin/env bash
# detect-gpu.sh — which GPU overlay of the compose stack this machine can run.
#
#   scripts/detect-gpu.sh                 prints cpu | nvidia | amd
#   scripts/detect-gpu.sh --env           prints GPU=... (and AMD_RENDER_GID=... for amd)
#   scripts/detect-gpu.sh --overlay       prints the overlay file (compose.gpu-<gpu>.yaml), or
#                                         nothing for cpu
#   scripts/detect-gpu.sh --write-overlay FILE
#                                         writes FILE: a copy of that overlay, or an empty
#                                         overlay for cpu (used by the GPU devcontainer)
#
# nvidia: the driver answers (`nvidia-smi -L` lists a GPU) AND the NVIDIA Container Toolkit is
#         there (nvidia-ctk / nvidia-container-cli / nvidia-container-runtime(-hook), or the
#         engine reports an nvidia runtime). A driver alone is not enough: the engine would
#         refuse the GPU reservation, and the stack would not start.
# amd:    /dev/kfd and /dev/dri are character devices / a directory (ROCm).
# cpu:    everything else, including macOS (containers get no GPU there: run Ollama natively
#         and `make up RUNNER=ollama-host`).
# Why a GPU was not used goes to stderr; stdout has only the answer.
#
# GPU=cpu|nvidia|amd in the environment skips detection (it is still validated).
# For tests: DETECT_GPU_DEV (default /dev) is where kfd and dri are looked for.
set -o errexit -o nounset -o pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
dev="${DETECT_GPU_DEV:-/dev}"

note() { printf 'detect-gpu: %s\n' "$*" >&2; }

has() { command -v "$1" >/dev/null 2>&1; }

nvidia_driver() {
    has nvidia-smi && nvidia-smi -L 2>/dev/null | grep -q '^GPU '
}

nvidia_toolkit() {
    local tool
    for tool in nvidia-ctk nvidia-container-cli nvidia-container-runtime \
        nvidia-container-runtime-hook; do
        has "$tool" && return 0
    done
    # Docker Desktop (WSL 2) and some distributions register the runtime without putting the
    # tools on this PATH; ask the engine (a few seconds at most).
    if has docker && timeout 10 docker info --format '{{json .Runtimes}}' 2>/dev/null \
        | grep -q '"nvidia"'; then
        return 0
    fi
    return 1
}

amd_devices() {
    [[ -c "$dev/kfd" && -d "$dev/dri" ]]
}

detect() {
    if [[ "$(uname -s)" == Darwin ]]; then
        note "macOS: containers get no GPU; for Metal, run Ollama natively and use RUNNER=ollama-host"
        echo cpu
        return
    fi
    if nvidia_driver; then
        if nvidia_toolkit; then
            echo nvidia
            return
        fi
        note "NVIDIA GPU found, but no NVIDIA Container Toolkit: using the CPU." \
            "Install it (https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/)" \
            "to run the models on the GPU."
    fi
    if amd_devices; then
        echo amd
        return
    fi
    echo cpu
}

gpu="${GPU:-}"
if [[ -z "$gpu" ]]; then
    gpu="$(detect)"
fi
case "$gpu" in
    cpu | nvidia | amd) ;;
    *)
        note "GPU must be cpu, nvidia or amd (got '$gpu')"
        exit 2
        ;;
esac

overlay_of() {
    [[ "$1" == cpu ]] || echo "compose.gpu-$1.yaml"
}

case "${1:-}" in
    "")
        echo "$gpu"
        ;;
    --env)
        echo "GPU=$gpu"
        if [[ "$gpu" == amd ]]; then
            # The group owning the render nodes differs between hosts; compose adds it by id.
            render="$(find "$dev/dri" -maxdepth 1 -name 'renderD*' -print -quit 2>/dev/null)"
            if [[ -n "$render" ]]; then
                echo "AMD_RENDER_GID=$(stat -c %g "$render")"
            fi
        fi
        ;;
    --overlay)
        overlay_of "$gpu"
        ;;
    --write-overlay)
        target="${2:?usage: $0 --write-overlay FILE}"
        overlay="$(overlay_of "$gpu")"
        mkdir -p "$(dirname "$target")"
        if [[ -n "$overlay" ]]; then
            cp "$root/$overlay" "$target"
        else
            printf '# Written by scripts/detect-gpu.sh: no GPU here, nothing to add.\nservices: {}\n' \
                >"$target"
        fi
        note "$gpu: wrote $target"
        ;;
    *)
        note "usage: $0 [--env | --overlay | --write-overlay FILE]"
        exit 2
        ;;
esac
