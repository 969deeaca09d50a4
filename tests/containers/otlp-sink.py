"""Test stand-in for the trace UI (Jaeger) on the local python image (compose.traces.test.yaml).

It listens where Jaeger does: OTLP/HTTP on 4318 (``POST /v1/traces``; every body is appended,
length-prefixed, to /tmp/otlp/spans.bin) and the UI port 16686 (``GET /`` answers 200, for the
healthcheck). ``python3 otlp-sink.py --dump`` prints what arrived, for the e2e checks: the number
of export requests and whether the protobuf bodies hold the GenAI attribute names (attribute keys
are plain strings inside OTLP protobuf, so no decoder is needed to find them).
"""

from __future__ import annotations

import json
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

STORE = Path("/tmp/otlp/spans.bin")  # noqa: S108 - inside the stand-in container only
KEYS = (
    b"gen_ai.operation.name",
    b"gen_ai.request.model",
    b"gen_ai.usage.input_tokens",
    b"gen_ai.usage.output_tokens",
)
_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._reply(200, b"otlp sink\n")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/v1/traces":
            self._reply(404, b"")
            return
        with _lock, STORE.open("ab") as out:
            out.write(struct.pack(">I", len(body)) + body)
        self._reply(200, b"")

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Quiet: the e2e log has enough."""


def dump() -> None:
    data = STORE.read_bytes() if STORE.exists() else b""
    requests, offset, bodies = 0, 0, []
    while offset < len(data):
        (size,) = struct.unpack(">I", data[offset : offset + 4])
        bodies.append(data[offset + 4 : offset + 4 + size])
        offset += 4 + size
        requests += 1
    joined = b"".join(bodies)
    sys.stdout.write(
        json.dumps(
            {
                "requests": requests,
                "bytes": len(joined),
                "keys": {k.decode(): k in joined for k in KEYS},
            }
        )
        + "\n"
    )


def main() -> None:
    if sys.argv[1:] == ["--dump"]:
        dump()
        return
    STORE.parent.mkdir(parents=True, exist_ok=True)
    servers = [ThreadingHTTPServer(("0.0.0.0", port), Handler) for port in (4318, 16686)]  # noqa: S104
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
