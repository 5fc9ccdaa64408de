"""Backends built into papyra-core (registered as built-in plugins)."""
