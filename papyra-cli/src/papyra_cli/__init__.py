"""The papyra command-line interface (``papyra``).

Plugin authors add commands with the ``papyra_register_commands(cli)`` hook and reuse the shared
options of :mod:`papyra_cli.context` (``store_options``, ``json_option``, ``debug_option``),
the output helpers of :mod:`papyra_cli.output` and the error translation of
:mod:`papyra_cli.errors`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("papyra-cli")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
