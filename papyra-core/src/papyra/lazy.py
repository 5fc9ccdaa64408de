"""Names a package exports but imports only on first use (PEP 562 module ``__getattr__``).

A plugin package is imported whenever papyra loads plugins (every ``papyra`` command); its
public names should not pull in the store and its dependencies until someone uses them::

    __getattr__ = lazy_exports(__name__, {"RedisStore": "papyra_backend_redis.store"})
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``names[name]`` (a module) on first access to
    ``name`` and caches the value in ``package``'s namespace."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__


__all__ = ["lazy_exports"]
