"""The module named by this distribution's ``papyra`` entry point.

papyra imports it when it loads plugins and calls the hooks it implements. Importing it must be
cheap and side-effect free: the store module is only imported when a store is opened.
"""

from __future__ import annotations

from typing import Any

from papyra import StoreURL, hookimpl


def create(url: StoreURL, **options: Any) -> Any:
    """Factory papyra calls for ``sqlite://`` URLs (options come from ``open_store``)."""
    from papyra_backend_sqlite.store import SqliteStore

    options.setdefault("system_id", url.query.get("system_id", "local"))
    if "fsync" in url.query:
        options.setdefault("fsync", url.query["fsync"])
    return SqliteStore(url.raw, path=url.file_path(), **options)


@hookimpl
def papyra_register_backends(register: Any) -> None:
    register(
        "sqlite",
        schemes=["sqlite"],
        factory=create,
        description="one SQLite database (example third-party plugin)",
    )
