#!/usr/bin/env bash
# install-podman.sh — make podman usable as a docker engine on a Debian
# (bookworm) machine that has no Docker daemon, as root.
#
#   ./install-podman.sh            install what is missing, write the config
#   ./install-podman.sh --check    only report; exit 1 if something is missing
#
# Idempotent: apt-get runs only when a package is missing (and `apt-get update`
# only then, once). The containers.conf is rewritten only when its content
# changed. Nothing global is configured: the config goes to
# $PODMAN_SHIM_HOME/containers.conf (see lib.sh) and is used through the
# CONTAINERS_CONF environment variable; `source "$PODMAN_SHIM_HOME/env.sh"`.
#
# Environment:
#   PODMAN_SHIM_HOME        where config/state goes (default ~/.local/state/podman-shim)
#   PODMAN_SHIM_NETWORK     netavark (default) | cni  — network backend to install/use
#   PODMAN_SHIM_EXTRA_PKGS  more Debian packages to install (space separated)
#   PODMAN_SHIM_STORAGE_ROOT  if set: a private image store there (storage.conf
#                           beside containers.conf; removing the dir = reset)
set -o errexit -o nounset -o pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

check_only=0
[[ "${1:-}" == "--check" ]] && check_only=1

need_root
command -v dpkg-query >/dev/null || die "this script supports Debian/Ubuntu (dpkg/apt) only"

network="${PODMAN_SHIM_NETWORK:-netavark}"
pkgs=(
    podman buildah runc conmon catatonit   # engine, builder, OCI runtime, monitor, init
    debootstrap ca-certificates            # base images made locally
    uidmap fuse-overlayfs slirp4netns      # rootless helpers / overlay fallback
    iptables                               # NAT for bridge networks
    curl                                   # health probes from the host
    patchelf                               # make-python-image.sh: drop pyenv RUNPATHs
)
case "$network" in
    netavark) pkgs+=(netavark aardvark-dns) ;;   # aardvark = DNS between compose services
    cni) pkgs+=(containernetworking-plugins) ;;
    *) die "PODMAN_SHIM_NETWORK must be netavark or cni" ;;
esac
# shellcheck disable=SC2206  # word splitting wanted
pkgs+=(${PODMAN_SHIM_EXTRA_PKGS:-})

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed; then
        missing+=("$p")
    fi
done

if ((${#missing[@]})); then
    if ((check_only)); then
        log "missing packages: ${missing[*]}"
        exit 1
    fi
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # `apt-get install` fails on a fresh machine whose lists are empty.
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    log "all packages present"
fi

# ---------------------------------------------------------------- config
mkdir -p "$PODMAN_SHIM_HOME"/{run,logs}
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
cat >"$tmp" <<EOF
# Written by install-podman.sh — do not edit, rerun the script instead.
# Used through CONTAINERS_CONF=$CONTAINERS_CONF
[containers]
# runc cannot raise RLIMIT_NOFILE/NPROC to podman's defaults (1048576) here:
# containers fail to start unless the limits are lowered.
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
# No systemd/journald inside this kind of machine.
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
# Never reach for a registry behind the user's back.
image_default_transport = "docker://"

[network]
network_backend = "$network"
EOF
if ((check_only)); then
    cmp -s "$tmp" "$CONTAINERS_CONF" || { log "$CONTAINERS_CONF missing or out of date"; exit 1; }
elif ! cmp -s "$tmp" "$CONTAINERS_CONF" 2>/dev/null; then
    cp "$tmp" "$CONTAINERS_CONF"
    log "wrote $CONTAINERS_CONF"
fi

if ((!check_only)) && [[ -n "${PODMAN_SHIM_STORAGE_ROOT:-}" ]]; then
    root="$(realpath -m "$PODMAN_SHIM_STORAGE_ROOT")"
    mkdir -p "$root"
    cat >"$tmp" <<EOF
# Written by install-podman.sh: private image store
[storage]
driver = "overlay"
graphroot = "$root/storage"
runroot = "$root/run"
EOF
    if ! cmp -s "$tmp" "$PODMAN_SHIM_HOME/storage.conf" 2>/dev/null; then
        cp "$tmp" "$PODMAN_SHIM_HOME/storage.conf"
        log "wrote $PODMAN_SHIM_HOME/storage.conf (graphroot $root/storage)"
    fi
    export CONTAINERS_STORAGE_CONF="$PODMAN_SHIM_HOME/storage.conf"
fi

if ((!check_only)); then
    {
        echo "# source me: settings for podman/buildah used as a docker engine"
        echo "export CONTAINERS_CONF=\"$CONTAINERS_CONF\""
        echo "export BUILDAH_ISOLATION=chroot"
        echo "export BUILDAH_FORMAT=docker"
        if [[ -f "$PODMAN_SHIM_HOME/storage.conf" ]]; then
            echo "export CONTAINERS_STORAGE_CONF=\"$PODMAN_SHIM_HOME/storage.conf\""
        fi
        # set up by install-compose.sh: docker-compose, `docker compose` plugin
        cat <<EOF
if [ -d "$PODMAN_SHIM_HOME/bin" ]; then
    case ":\$PATH:" in *":$PODMAN_SHIM_HOME/bin:"*) ;; *) export PATH="$PODMAN_SHIM_HOME/bin:\$PATH" ;; esac
fi
if [ -d "$PODMAN_SHIM_HOME/docker/cli-plugins" ]; then
    export DOCKER_CONFIG="$PODMAN_SHIM_HOME/docker"
fi
EOF
    } >"$PODMAN_SHIM_HOME/env.sh"
fi

# ---------------------------------------------------------------- report
{
    podman --version
    buildah --version | cut -d' ' -f1-3
    runc --version | head -1
    printf 'debootstrap %s\n' "$(dpkg-query -W -f='${Version}' debootstrap)"
    printf 'network backend: %s\n' "$(podman info --format '{{.Host.NetworkBackend}}' 2>/dev/null)"
    printf 'graph driver: %s, root %s\n' "$(podman info --format '{{.Store.GraphDriverName}}' 2>/dev/null)" \
        "$(podman info --format '{{.Store.GraphRoot}}' 2>/dev/null)"
} >&2
log "ok — CONTAINERS_CONF=$CONTAINERS_CONF"
