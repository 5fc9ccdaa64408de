"""papyra's ``json`` backend: one NDJSON file (``json:///var/lib/app/papyra.ndjson``).

The names below are imported on first use, so loading the plugin stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from papyra.lazy import lazy_exports

if TYPE_CHECKING:
    from papyra_backend_json.store import DEFAULT_MAX_RECORD_BYTES, JsonStore, create

_LAZY = {
    "DEFAULT_MAX_RECORD_BYTES": "papyra_backend_json.store",
    "JsonStore": "papyra_backend_json.store",
    "create": "papyra_backend_json.store",
}


__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = ["DEFAULT_MAX_RECORD_BYTES", "JsonStore", "create"]
