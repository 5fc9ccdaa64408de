"""papyra.lazy: names imported on first use."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest
from papyra.lazy import lazy_exports


def test_a_lazy_name_is_imported_on_first_use_and_then_cached() -> None:
    pkg = types.ModuleType("lazy_probe_pkg")
    sys.modules[pkg.__name__] = pkg
    try:
        getter = lazy_exports(pkg.__name__, {"dumps": "json"})
        import json

        assert getter("dumps") is json.dumps
        assert pkg.dumps is json.dumps  # cached: the module __getattr__ is not asked again
        with pytest.raises(AttributeError, match="no attribute 'loads'"):
            getter("loads")
    finally:
        del sys.modules[pkg.__name__]


def test_importing_papyra_does_not_import_the_actor_runtime() -> None:
    code = ("import sys, papyra; assert 'papyra.actors' not in sys.modules; "
            "papyra.ActorSystem; assert 'papyra.actors' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
