"""CliRunner fixtures: a plugin manager without entry points, plus a test plugin serving
``shared://`` (one in-memory store that outlives each command, so tests can seed it and look at
it afterwards) with switches to simulate damage, a missing log and failing backends."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

sys.path.insert(0, str(Path(__file__).parent))

from cli_helpers import Invoke, SharedPlugin, SharedStore
from papyra.plugin_manager import PluginManager
from papyra_cli.main import build_cli


@pytest.fixture
def plugin() -> SharedPlugin:
    return SharedPlugin()


@pytest.fixture
def shared(plugin: SharedPlugin) -> SharedStore:
    return plugin.store


@pytest.fixture
def plugins(plugin: SharedPlugin) -> PluginManager:
    pm = PluginManager(entry_points=False, strict=False, disabled=())
    pm.register(plugin, "shared", distribution="papyra-cli-tests", version="1.0")
    return pm


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for var in ("PAPYRA_STORE", "PAPYRA_CONFIG", "PAPYRA_DEBUG", "PAPYRA_STRICT_PLUGINS",
                "PAPYRA_DISABLE_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def papyra(plugins: PluginManager) -> Invoke:
    """``papyra(*args, env=...)`` runs the CLI in-process and returns click's Result."""

    def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None
               ) -> Result:
        cli = build_cli(plugins)
        return CliRunner().invoke(cli, list(args), env=env, input=input, prog_name="papyra",
                                  catch_exceptions=False)

    return invoke
