"""papyra's ``json`` backend: one NDJSON file (``json:///var/lib/app/papyra.ndjson``)."""

from papyra_backend_json.store import DEFAULT_MAX_RECORD_BYTES, JsonStore, create

__all__ = ["DEFAULT_MAX_RECORD_BYTES", "JsonStore", "create"]
