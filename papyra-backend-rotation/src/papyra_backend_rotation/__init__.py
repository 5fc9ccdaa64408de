"""papyra's rotation backend: a directory of NDJSON segments with bounded disk use.

The names below are imported on first use, so loading the plugin stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from papyra.lazy import lazy_exports

if TYPE_CHECKING:
    from papyra_backend_rotation.policy import RotationPolicy
    from papyra_backend_rotation.store import RotationStore

_LAZY = {
    "RotationPolicy": "papyra_backend_rotation.policy",
    "RotationStore": "papyra_backend_rotation.store",
}


__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = ["RotationPolicy", "RotationStore"]
