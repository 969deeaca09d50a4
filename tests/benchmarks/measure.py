"""Small helpers shared by the measurements that run inside a generated project."""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

STARTUP_SECONDS = 180


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The sample at `fraction` of the sorted list (nearest rank)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def summary(samples: Sequence[float]) -> dict[str, float]:
    """Median, p95 and the number of samples."""
    return {
        "p50": statistics.median(samples),
        "p95": percentile(samples, 0.95),
        "n": len(samples),
    }


def timed(function: Callable[[], Any]) -> float:
    """Milliseconds one call takes."""
    started = time.perf_counter()
    function()
    return (time.perf_counter() - started) * 1000


def peak_rss_mb(pid: int | None = None) -> float:
    """Peak resident memory (VmHWM) of a process, in MB."""
    status = Path(f"/proc/{pid or 'self'}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_mb(pid: int | None = None) -> float:
    """Resident memory (VmRSS) now, in MB."""
    status = Path(f"/proc/{pid or 'self'}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until `url` answers 200, or fail with the end of the log."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback
                return
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise RuntimeError(f"{url} did not answer in {STARTUP_SECONDS} s:\n{log.read_text()[-3000:]}")


def start(
    command: Sequence[str], log: Path, env: dict[str, str], ready_url: str
) -> subprocess.Popen[bytes]:
    """A server process, started and answering on `ready_url`."""
    process = subprocess.Popen(
        list(command), stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env
    )
    wait_for(ready_url, process, log)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cpu_library() -> str | None:
    """The CPU library the project's in-process runner picks (for llama_cpp.server)."""
    import ctypes  # noqa: PLC0415

    import llama_cpp  # noqa: PLC0415

    scores = {}
    for path in (Path(llama_cpp.__file__).parent / "lib").glob("libggml-cpu-*.so"):
        score = getattr(ctypes.CDLL(str(path)), "ggml_backend_score", None)
        if score is not None and "sapphirerapids" not in path.name:
            score.restype = ctypes.c_int
            scores[str(path)] = int(score())
    return max(scores, key=scores.__getitem__) if scores else None


def in_turn(turn: int, *steps: Callable[[], object]) -> None:
    """Run the steps, in reverse order on odd turns: neither side always goes first."""
    for step in steps if turn % 2 == 0 else steps[::-1]:
        step()


def emit(result: object) -> None:
    """The measurement's result: one JSON document on the last line of stdout."""
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    sys.stdout.flush()


def environment(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}
