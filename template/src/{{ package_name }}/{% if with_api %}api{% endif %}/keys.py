"""API keys: bearer tokens for the HTTP API, created and revoked with the `keys` command.

A key is a random token shown once, when it is created; the file keeps only its SHA-256 (a
token has 256 bits of entropy, so a fast hash is enough) with its name, and is written 0600.
The server rereads the file when it changes: a key created or revoked takes effect at once.
Keys are needed whenever the API listens beyond loopback, unless `API_REQUIRE_KEY=false` says
that something in front of it (a proxy, a VPN) checks who calls.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from datetime import UTC, datetime
from ipaddress import ip_address
from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict

from ..config import Group, load, load_settings
from ..errors import DiskError, InputError, StoreError

PREFIX = "rk_"
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"
_LOOPBACK_NAMES = frozenset({"localhost"})


class KeySettings(Group):
    """Where keys are kept, and whether the API asks for one."""

    model_config = SettingsConfigDict(env_prefix="API_")

    keys_path: Path = Path("data/api-keys.json")
    require_key: bool | None = Field(
        default=None, description="Default: only when the API listens beyond loopback."
    )


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.1, ::1, localhost)."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def required(settings: KeySettings, host: str) -> bool:
    """Whether callers need a key: as `API_REQUIRE_KEY` says, else when `host` is not loopback."""
    return settings.require_key if settings.require_key is not None else not is_loopback(host)


class Key(BaseModel):
    """A key as stored: its name and the SHA-256 of its token, never the token."""

    name: str = Field(pattern=_NAME)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created_at: str


class KeyFile(BaseModel):
    keys: list[Key] = Field(default_factory=list)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


class KeyStore:
    """The keys in one JSON file, reread when it changes on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._keys: list[Key] = []

    def keys(self) -> list[Key]:
        """Every key, as the file holds them now."""
        with self._lock:
            try:
                stat = self.path.stat()
            except FileNotFoundError:
                self._seen, self._keys = None, []
                return []
            except OSError as exc:
                raise StoreError(f"cannot read the API keys at {self.path}: {exc.strerror}") from None
            seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            if self._seen != seen:
                try:
                    text = self.path.read_text(encoding="utf-8")
                    self._keys = KeyFile.model_validate_json(text).keys
                except OSError as exc:
                    raise StoreError(
                        f"cannot read the API keys at {self.path}: {exc.strerror}"
                    ) from None
                except ValueError:
                    raise StoreError(
                        f"{self.path} is not an API key file: restore it, or remove it and "
                        "create the keys again"
                    ) from None
                self._seen = seen
            return list(self._keys)

    def check(self, token: str) -> str | None:
        """The name of the key `token` is, or None; compares every key in constant time."""
        wanted = digest(token)
        found = None
        for key in self.keys():
            if hmac.compare_digest(key.sha256, wanted):
                found = key.name
        return found

    def create(self, name: str) -> str:
        """A new key called `name`; returns its token, which is not kept anywhere."""
        keys = self.keys()
        if any(key.name == name for key in keys):
            raise InputError(f"a key called {name} exists: revoke it first, or pick another name")
        token = PREFIX + secrets.token_urlsafe(32)
        try:
            key = Key(name=name, sha256=digest(token), created_at=_now())
        except ValueError:
            raise InputError(
                f"{name!r} is not a key name: use letters, digits and . _ @ - (64 at most)"
            ) from None
        self._write([*keys, key])
        return token

    def revoke(self, name: str) -> None:
        keys = self.keys()
        if not any(key.name == name for key in keys):
            raise InputError(f"no key called {name}: `keys list` shows them")
        self._write([key for key in keys if key.name != name])

    def _write(self, keys: list[Key]) -> None:
        """The whole file, replaced in one step, readable by its owner only."""
        text = KeyFile(keys=keys).model_dump_json(indent=2)
        staging = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
            os.chmod(staging, 0o600)  # noqa: PTH101 - the file a umask may have widened
            staging.replace(self.path)
        except OSError as exc:
            staging.unlink(missing_ok=True)
            raise DiskError.of(exc, "write") from None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def open_store() -> KeyStore:
    """The key file the settings name."""
    settings = load_settings()
    return KeyStore(load(KeySettings, settings.secrets_dir).keys_path)
