"""papyra's rotation backend: a directory of NDJSON segments with bounded disk use."""

from __future__ import annotations

from papyra_backend_rotation.policy import RotationPolicy
from papyra_backend_rotation.store import RotationStore

__all__ = ["RotationPolicy", "RotationStore"]
