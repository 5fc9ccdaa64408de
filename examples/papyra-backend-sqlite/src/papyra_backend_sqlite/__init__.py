"""An example papyra backend that keeps records in one SQLite database (``sqlite://``)."""

from __future__ import annotations

from typing import Any

__all__ = ["SqliteStore"]


def __getattr__(name: str) -> Any:
    # Lazy, so that loading the plugin (``papyra_backend_sqlite.plugin``) stays cheap.
    if name == "SqliteStore":
        from papyra_backend_sqlite.store import SqliteStore

        return SqliteStore
    raise AttributeError(name)
