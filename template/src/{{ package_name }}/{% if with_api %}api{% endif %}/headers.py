"""What every response of the API gets, whatever the route: security headers, a check of the
`Host` header, validation errors that never echo what they rejected, and API docs served by the
app itself (Swagger UI from a pinned package: no CDN, works offline, no inline script).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.middleware.trustedhost import TrustedHostMiddleware

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC = Path(__file__).parent / "static"
# Swagger UI's files, shipped inside the `fastapi-offline` wheel (pinned in uv.lock).
DOCS_ASSETS = Path(str(files("fastapi_offline"))) / "static"
# The chat page and the docs run scripts and styles from this server only (no inline script,
# nothing from elsewhere), talk to this server only, and cannot be framed.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
_INPUT_CHARS = 80
_MAX_ERRORS = 20


class SecurityHeaders:
    """Adds the headers above to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)


def brief(value: Any) -> Any:  # noqa: ANN401 - whatever was sent
    """A rejected value as a 422 may show it: short, valid UTF-8, never a whole document."""
    if isinstance(value, str):
        text = value.encode("utf-8", "replace").decode("utf-8")
        if len(text) > _INPUT_CHARS:
            return f"{text[:_INPUT_CHARS]}... ({len(value)} characters)"
        return text
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, list | tuple | dict):
        return f"({type(value).__name__} of {len(value)} items)"
    return f"({type(value).__name__})"


async def invalid_request(_: Request, exc: Exception) -> JSONResponse:
    """422 naming each problem, with what was sent cut short (a huge or odd body stays home)."""
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
    errors = exc.errors()
    detail: list[dict[str, Any]] = [
        {
            "type": error.get("type", ""),
            "loc": [brief(part) for part in error.get("loc", ())],
            "msg": brief(error.get("msg", "")),
            **({"input": brief(error["input"])} if "input" in error else {}),
        }
        for error in errors[:_MAX_ERRORS]
    ]
    if len(errors) > _MAX_ERRORS:
        detail.append({"type": "more", "loc": [], "msg": f"{len(errors) - _MAX_ERRORS} more"})
    return JSONResponse({"detail": detail}, status_code=422)


def install(app: FastAPI, trusted_hosts: list[str]) -> None:
    """Headers, the `Host` check, brief validation errors and the docs page, on `app`."""
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=trusted_hosts)
    app.add_middleware(SecurityHeaders)  # outermost: even a refused Host gets the headers
    app.mount("/docs-assets", StaticFiles(directory=DOCS_ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        return FileResponse(STATIC / "docs.html")
