"""Index stores behind one Protocol; ``VECTOR_STORE`` picks the backend.

Adding a backend is adding a module with a ``from_settings`` constructor and one line in
``BACKENDS``. Backends are imported only when chosen, so a missing driver for one never
breaks the others.

Modules here import their parent package's modules relatively (``from ..settings``) because
the package is renamed when the project is generated; those lines carry ``noqa: TID252``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, cast

from .base import Hit, Store, StoredChunk, StoreError, UpsertResult

if TYPE_CHECKING:
    from ..settings import Settings  # noqa: TID252

__all__ = ["BACKENDS", "Hit", "Store", "StoreError", "StoredChunk", "UpsertResult", "open_store"]

# backend name -> (module in this package, class with a ``from_settings`` constructor)
BACKENDS: dict[str, tuple[str, str]] = {
    "sqlite": (".sqlite", "SQLiteStore"),
    "pgvector": (".pgvector", "PgVectorStore"),
}


def open_store(settings: Settings) -> Store:
    """Open the store that the settings choose."""
    try:
        module_name, class_name = BACKENDS[settings.vector_store]
    except KeyError:
        raise StoreError(
            f"unknown VECTOR_STORE {settings.vector_store!r}; use one of {', '.join(BACKENDS)}"
        ) from None
    module = import_module(module_name, __name__)
    return cast("Store", getattr(module, class_name).from_settings(settings))
