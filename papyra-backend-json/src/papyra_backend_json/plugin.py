"""Registers the ``json`` backend with papyra (entry point ``papyra.json``)."""

from __future__ import annotations

from papyra import hookimpl
from papyra.hookspecs import RegisterBackend


@hookimpl
def papyra_register_backends(register: RegisterBackend) -> None:
    from papyra_backend_json.store import create

    register("json", schemes=["json"], factory=create,
             description="a single NDJSON file: group commit, checksums, multi-process writers, "
                         "scan/repair/quarantine, compaction")
