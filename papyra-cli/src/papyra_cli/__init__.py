"""The papyra command-line interface."""
