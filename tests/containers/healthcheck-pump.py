#!/usr/bin/env python3
"""Run container healthchecks for a podman API service on a host without systemd.

Podman schedules healthchecks with systemd timers (`systemd-run`). Where PID 1
is not systemd (containers, CI sandboxes, WSL without systemd...) no check ever
runs: health stays "starting" forever, so `depends_on: condition:
service_healthy` and `docker compose up --wait` hang. This pump asks the podman
service to run each container's healthcheck on schedule:

* during a container's start_period: every --start-interval seconds (default
  1; Docker's `start_interval`, whose default there is 5 s), until healthy;
* otherwise: every Healthcheck.Interval of the container (Docker default 30 s),
  the first check one interval after the start, as Docker does.

Podman itself applies retries, timeout and start_period and records the result
(`docker inspect`, `docker ps` and compose see it). Standard library only.

    healthcheck-pump.py /path/to/podman.sock [--start-interval 1] [--tick 0.5]

Stops on SIGTERM/SIGINT. Exits when the socket is gone for --grace seconds.
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import socket
import sys
import time
import urllib.parse
from typing import Any

API = "/v4.0.0/libpod"
DEFAULT_INTERVAL = 30.0  # Docker's default when a healthcheck sets none


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


def call(sock: str, path: str, timeout: float = 30.0) -> tuple[int, Any]:
    conn = UnixHTTPConnection(sock, timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = body.decode(errors="replace")
    return resp.status, data


def log(msg: str) -> None:
    sys.stderr.write(f"[healthcheck-pump] {time.strftime('%H:%M:%S')} {msg}\n")
    sys.stderr.flush()


def main() -> int:  # noqa: C901, PLR0912, PLR0915 - one polling loop, kept whole
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("sock")
    ap.add_argument("--start-interval", type=float, default=1.0)
    ap.add_argument("--tick", type=float, default=0.5)
    ap.add_argument("--grace", type=float, default=30.0)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    interval: dict[str, float] = {}  # container id -> interval (s), 0 = no healthcheck
    start_end: dict[str, float] = {}  # container id -> end of start_period (epoch s)
    next_run: dict[str, float] = {}
    healthy_seen: dict[str, str] = {}
    last_ok = time.monotonic()

    def cadence(cid: str, healthy: bool) -> float:
        if not healthy and time.time() < start_end.get(cid, 0):
            return float(min(args.start_interval, interval[cid]))
        return float(interval[cid])

    filters = urllib.parse.quote(json.dumps({"status": ["running"]}))

    while not stop:
        now = time.monotonic()
        try:
            _, listing = call(args.sock, f"{API}/containers/json?filters={filters}", timeout=10)
            last_ok = now
        except OSError as e:
            if now - last_ok > args.grace:
                log(f"socket unreachable for {args.grace:.0f}s ({e}); exiting")
                return 1
            time.sleep(1)
            continue
        if not isinstance(listing, list):
            log(f"unexpected answer listing containers: {str(listing)[:200]}")
            time.sleep(1)
            continue
        started = {c["Id"]: float(c.get("StartedAt") or 0) for c in listing}
        running = set(started)
        for gone in set(interval) - running:
            interval.pop(gone, None)
            start_end.pop(gone, None)
            next_run.pop(gone, None)
            healthy_seen.pop(gone, None)
        for cid in running:
            if cid not in interval:
                try:
                    _, info = call(args.sock, f"{API}/containers/{cid}/json", timeout=10)
                except OSError:
                    continue
                hc = ((info or {}).get("Config") or {}).get("Healthcheck") or {}
                test = hc.get("Test") or []
                if not test or test[0] == "NONE":
                    interval[cid] = 0
                    continue
                interval[cid] = (hc.get("Interval") or 0) / 1e9 or DEFAULT_INTERVAL
                start_end[cid] = started[cid] + (hc.get("StartPeriod") or 0) / 1e9
                next_run[cid] = now + cadence(cid, healthy=False)
                if args.verbose:
                    log(f"tracking {cid[:12]} every {interval[cid]:g}s: {test}")
            if not interval[cid] or now < next_run[cid]:
                continue
            try:
                _, res = call(args.sock, f"{API}/containers/{cid}/healthcheck", timeout=120)
            except OSError as e:
                log(f"{cid[:12]}: healthcheck call failed: {e}")
                next_run[cid] = time.monotonic() + args.start_interval
                continue
            status = res.get("Status", "?") if isinstance(res, dict) else str(res)
            if healthy_seen.get(cid) != status:
                log(f"{cid[:12]}: {status}")
                healthy_seen[cid] = status
            next_run[cid] = time.monotonic() + cadence(cid, healthy=status == "healthy")
        time.sleep(args.tick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
