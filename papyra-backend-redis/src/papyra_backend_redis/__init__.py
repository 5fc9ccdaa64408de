"""papyra's redis backend."""
