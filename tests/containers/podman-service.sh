#!/usr/bin/env bash
# podman-service.sh start|stop|status SOCK — run podman's Docker-compatible
# API on a unix socket so the docker client and Compose v2 can use it.
#
#   eval "$(./podman-service.sh start /tmp/podman.sock)"   # prints export DOCKER_HOST=...
#   docker version; docker-compose up -d --build --wait
#   ./podman-service.sh stop /tmp/podman.sock
#
# start: idempotent (returns at once if a service already answers on SOCK);
#        waits until the API answers (`docker version`, or curl on /_ping when
#        there is no docker client), at most SERVICE_TIMEOUT seconds (default 60).
#        Writes SOCK.pid and logs to SOCK.log.
# stop:  TERM (then KILL after 10 s) the service, removes SOCK and SOCK.pid.
#        Containers it started keep running (conmon owns them): `docker-compose
#        down` first.
#
# Healthchecks: podman runs them from systemd timers. Where systemd is not
# PID 1, `start` also runs healthcheck-pump.py (SOCK.pump.pid), which asks the
# service to run every container's healthcheck on schedule; without it health
# stays "starting" forever and `depends_on: service_healthy` / `--wait` hang.
# HEALTHCHECK_PUMP=auto (default: only without systemd) | 1 | 0.
# PUMP_START_INTERVAL (default 1): seconds between checks during start_period.
#
# The service runs with CONTAINERS_CONF (runtime=runc, low default ulimits)
# and BUILDAH_ISOLATION=chroot, which the /build endpoint honours: that is
# what makes `docker build` / `docker-compose build` (DOCKER_BUILDKIT=0) work.
set -o errexit -o nounset -o pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

[[ $# -eq 2 ]] || die "usage: $0 start|stop|status SOCK"
action="$1"
sock="$2"
sock="$(realpath -m "${sock#unix://}")"
pidfile="$sock.pid"
logfile="$sock.log"
pump_pidfile="$sock.pump.pid"
pump_logfile="$sock.pump.log"
timeout="${SERVICE_TIMEOUT:-60}"

answers() {
    if command -v docker >/dev/null; then
        DOCKER_HOST="unix://$sock" timeout 10 docker version >/dev/null 2>&1
    else
        timeout 10 curl -fsS --unix-socket "$sock" http://d/_ping >/dev/null 2>&1
    fi
}

# running_pid PIDFILE PATTERN — pid from PIDFILE if alive and still that program
running_pid() {
    local pid
    [[ -s "$1" ]] || return 1
    pid="$(cat "$1")"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    # make sure the pid was not recycled by another program
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$2" || return 1
    echo "$pid"
}

want_pump() {
    case "${HEALTHCHECK_PUMP:-auto}" in
        0 | no | false) return 1 ;;
        1 | yes | true) return 0 ;;
        *) [[ ! -d /run/systemd/system ]] ;;   # sd_booted(3)
    esac
}

start_pump() {
    want_pump || return 0
    running_pid "$pump_pidfile" healthcheck-pump >/dev/null && return 0
    command -v python3 >/dev/null || { log "WARNING: no python3: healthchecks will not run"; return 0; }
    setsid python3 "$here/healthcheck-pump.py" "$sock" \
        --start-interval "${PUMP_START_INTERVAL:-1}" </dev/null >>"$pump_logfile" 2>&1 &
    echo $! >"$pump_pidfile"
    log "healthcheck pump pid $! (log: $pump_logfile)"
}

# forget_gone_networks — drop aardvark-dns records of networks podman no longer has. A run killed
# mid-teardown can leave them; a new network that gets the same subnet then shares the DNS
# server's address, and its containers resolve service names to the dead ones' addresses
# ("No route to host" between healthy containers).
forget_gone_networks() {
    local dir="${NETAVARK_RUN_DIR:-/run/containers/networks}/aardvark-dns" known file
    [[ "$(id -u)" -eq 0 && -d "$dir" ]] || return 0
    known="$(podman network ls --format '{{.Name}}')" || return 0
    for file in "$dir"/*; do
        [[ -f "$file" && "${file##*/}" != aardvark.pid ]] || continue
        grep -qxF -- "${file##*/}" <<<"$known" && continue
        log "forgetting the DNS records of network ${file##*/} (gone)"
        rm -f -- "$file"
    done
}

# stop_pid PIDFILE PATTERN NAME
stop_pid() {
    local pid
    if pid="$(running_pid "$1" "$2")"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        if kill -0 "$pid" 2>/dev/null; then
            log "$3 pid $pid ignored TERM: KILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        log "stopped $3 pid $pid"
    else
        log "$3 not running"
    fi
    rm -f "$1"
}

case "$action" in
start)
    need_cmd podman
    need_conf
    forget_gone_networks
    if pid="$(running_pid "$pidfile" "system service")" && answers; then
        log "already running (pid $pid) on $sock"
        start_pump
        echo "export DOCKER_HOST=unix://$sock"
        exit 0
    fi
    [[ -S "$sock" ]] && answers && die "something else already serves $sock"
    rm -f "$sock" "$pidfile"
    mkdir -p "$(dirname "$sock")"
    t0="$(now)"
    # setsid: own session, so the service outlives the calling shell/test and
    # a Ctrl-C in the terminal does not reach it. stdin from /dev/null.
    setsid podman system service --time=0 "unix://$sock" \
        </dev/null >>"$logfile" 2>&1 &
    pid=$!
    echo "$pid" >"$pidfile"
    deadline=$((SECONDS + timeout))
    until answers; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$logfile" >&2
            rm -f "$pidfile"
            die "podman system service exited (log: $logfile)"
        fi
        if ((SECONDS >= deadline)); then
            kill "$pid" 2>/dev/null || true
            rm -f "$pidfile"
            die "no answer on $sock after ${timeout}s (log: $logfile)"
        fi
        sleep 0.2
    done
    log "started pid $pid on $sock in $(elapsed "$t0")s (log: $logfile)"
    start_pump
    echo "export DOCKER_HOST=unix://$sock"
    ;;
stop)
    stop_pid "$pump_pidfile" healthcheck-pump "healthcheck pump"
    stop_pid "$pidfile" "system service" "podman service"
    rm -f "$sock"
    ;;
status)
    if pid="$(running_pid "$pidfile" "system service")" && answers; then
        log "running (pid $pid) on $sock"
        if pump="$(running_pid "$pump_pidfile" healthcheck-pump)"; then
            log "healthcheck pump running (pid $pump)"
        elif want_pump; then
            log "WARNING: healthcheck pump not running"
        fi
    else
        log "not running on $sock"
        exit 1
    fi
    ;;
*)
    die "usage: $0 start|stop|status SOCK"
    ;;
esac
