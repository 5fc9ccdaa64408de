"""Entry point of the ``rotation`` backend (``[project.entry-points.papyra] rotation``)."""

from __future__ import annotations

from papyra.hookspecs import RegisterBackend, hookimpl


@hookimpl
def papyra_register_backends(register: RegisterBackend) -> None:
    from papyra_backend_rotation.store import create

    register("rotation", schemes=["rotation"], factory=create,
             description="a directory of NDJSON segments, rotated by size or age, with a "
                         "disk bound (max_segments / max_total_bytes)")
