"""papyra's rotation backend."""
