#!/usr/bin/env bash
# make-base-image.sh NAME [SUITE] — build a minimal Debian image with
# debootstrap and import it into podman as NAME (no registry needed).
#
#   ./make-base-image.sh debian:bookworm-slim
#   FORCE=1 ./make-base-image.sh localhost/debian:bookworm-slim bookworm
#
# Skips everything when NAME already exists (FORCE=1 rebuilds). The finished
# rootfs is also kept as a tarball under $PODMAN_SHIM_HOME/cache, so a lost
# image (podman system reset) is re-imported in seconds.
#
# The CA certificates found in EXTRA_CA_DIR (default: the host's
# /usr/local/share/ca-certificates, i.e. the company/intercepting-proxy CAs)
# are added to the image's trust store, and the image's environment points
# OpenSSL, pip, requests, uv and node at the resulting bundle, so HTTPS works
# from inside containers and builds behind a TLS-intercepting proxy.
#
# Environment:
#   DEBIAN_MIRROR           default http://deb.debian.org/debian
#   DEBIAN_SECURITY_MIRROR  default: DEBIAN_MIRROR with /debian -> /debian-security
#   EXTRA_CA_DIR            default /usr/local/share/ca-certificates ('' = none)
#   BASE_INCLUDE            extra packages, comma separated (ca-certificates always)
#   BASE_UPGRADE=0          skip `apt-get upgrade` (updates + security) in the rootfs
#   FORCE=1                 rebuild even if the image / cached tarball exist
#   WORKDIR                 where the rootfs is made (default /var/tmp)
set -o errexit -o nounset -o pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

[[ $# -ge 1 ]] || die "usage: $0 NAME [SUITE]"
name="$1"
suite="${2:-bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
sec_mirror="${DEBIAN_SECURITY_MIRROR:-${mirror%/debian}/debian-security}"
ca_dir="${EXTRA_CA_DIR-/usr/local/share/ca-certificates}"
include="ca-certificates${BASE_INCLUDE:+,$BASE_INCLUDE}"
force="${FORCE:-0}"

need_root
need_cmd podman debootstrap tar sha256sum
need_conf

t0="$(now)"
if [[ "$force" != 1 ]] && image_ready "$name"; then
    log "image $name exists — skipped (FORCE=1 rebuilds)"
    exit 0
fi

# Cache key: everything that changes the rootfs.
ca_files=()
if [[ -n "$ca_dir" && -d "$ca_dir" ]]; then
    while IFS= read -r -d '' f; do ca_files+=("$f"); done \
        < <(find "$ca_dir" -type f -name '*.crt' -print0 | sort -z)
fi
arch="$(dpkg --print-architecture)"
key="$( { echo "$suite $mirror $sec_mirror $include $arch ${BASE_UPGRADE:-1} v1"
          ((${#ca_files[@]})) && cat "${ca_files[@]}"; } | sha256sum | cut -c1-16)"
cache_dir="$PODMAN_SHIM_HOME/cache"
cache_tar="$cache_dir/debian-$suite-$arch-$key.tar"
mkdir -p "$cache_dir"

if [[ "$force" == 1 || ! -s "$cache_tar" ]]; then
    work="$(mktemp -d "${WORKDIR:-/var/tmp}/debootstrap.XXXXXX")"
    rootfs="$work/rootfs"
    cleanup() {
        # debootstrap may leave /proc, /sys, /dev/pts mounted on failure:
        # unmount before deleting, and never cross into another filesystem.
        local m
        while read -r m; do umount -l "$m" 2>/dev/null || true; done \
            < <(awk -v r="$rootfs" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r)
        rm -rf --one-file-system "$work"
    }
    trap cleanup EXIT

    log "debootstrap --variant=minbase $suite from $mirror (include: $include)"
    t1="$(now)"
    if ! debootstrap --variant=minbase --include="$include" "$suite" "$rootfs" "$mirror" \
        >"$work/debootstrap.log" 2>&1; then
        tail -n 30 "$work/debootstrap.log" >&2
        die "debootstrap failed"
    fi
    log "debootstrap took $(elapsed "$t1")s"

    # --- trust the extra CAs (what a company does for its own proxy CA)
    if ((${#ca_files[@]})); then
        install -d "$rootfs/usr/local/share/ca-certificates"
        for f in "${ca_files[@]}"; do
            install -m 0644 "$f" "$rootfs/usr/local/share/ca-certificates/$(basename "$f")"
        done
        chroot "$rootfs" update-ca-certificates >"$work/update-ca.log" 2>&1 \
            || { cat "$work/update-ca.log" >&2; die "update-ca-certificates failed"; }
        log "added ${#ca_files[@]} CA file(s) to the image trust store"
    fi

    # --- apt sources like the official image (deb822), incl. updates+security
    rm -f "$rootfs/etc/apt/sources.list"
    cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $sec_mirror
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

    # --- point-release and security updates (debootstrap only sees $suite)
    if [[ "${BASE_UPGRADE:-1}" == 1 ]]; then
        t1="$(now)"
        if chroot "$rootfs" sh -c 'export DEBIAN_FRONTEND=noninteractive;
                apt-get update -qq && apt-get upgrade -y -qq -o Dpkg::Options::=--force-confold' \
                >"$work/upgrade.log" 2>&1; then
            log "apt-get upgrade in the rootfs took $(elapsed "$t1")s"
        else
            tail -n 20 "$work/upgrade.log" >&2
            die "apt-get upgrade in the rootfs failed (BASE_UPGRADE=0 skips it)"
        fi
    fi

    # --- "slim" settings of the official debian images
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    cat >"$rootfs/etc/apt/apt.conf.d/docker-no-languages" <<'EOF'
Acquire::Languages "none";
EOF
    cat >"$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests" <<'EOF'
Apt::AutoRemove::SuggestsImportant "false";
EOF
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
    find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
    rm -rf "$rootfs"/usr/share/{man,info,groff,lintian,linda,locale}/*

    # --- runtime-managed files and caches
    chroot "$rootfs" apt-get clean
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
        "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/log/*.log \
        "$rootfs"/var/log/apt/* "$rootfs"/tmp/* "$rootfs"/var/tmp/*
    : >"$rootfs/etc/resolv.conf"
    : >"$rootfs/etc/hostname"
    : >"$rootfs/etc/machine-id"

    tar --numeric-owner --xattrs -C "$rootfs" -cf "$cache_tar.tmp" .
    mv "$cache_tar.tmp" "$cache_tar"
    cleanup
    trap - EXIT
    log "rootfs tarball: $cache_tar ($(du -h "$cache_tar" | cut -f1))"
else
    log "using cached rootfs $cache_tar"
fi

changes=(
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    --change 'CMD ["bash"]'
)
if ((${#ca_files[@]})); then
    # Tools that ship their own CA list ignore the system store unless told.
    bundle=/etc/ssl/certs/ca-certificates.crt
    changes+=(
        --change "ENV SSL_CERT_FILE=$bundle"
        --change "ENV REQUESTS_CA_BUNDLE=$bundle"
        --change "ENV PIP_CERT=$bundle"
        --change "ENV NODE_EXTRA_CA_CERTS=$bundle"
    )
fi

t2="$(now)"
podman import --quiet "${changes[@]}" --message "debootstrap $suite minbase" \
    "$cache_tar" "$(primary_name "$name")" >/dev/null
tag_aliases "$name"
log "imported $name in $(elapsed "$t2")s; total $(elapsed "$t0")s"
podman image ls --format '{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}' | grep -F -- "${name##*/}" >&2 || true
