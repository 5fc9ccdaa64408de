"""papyra's json backend."""
