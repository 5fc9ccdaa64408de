"""Plugin loading: one bad plugin never takes papyra down, names are never registered twice,
observers cannot break their callers, and misspelled hooks are caught."""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest
from papyra import hookimpl, plugin_manager
from papyra.backends.memory import MemoryStore
from papyra.errors import DuplicateRegistrationError, PluginError, UnknownBackendError
from papyra.plugin_manager import PluginManager


class Warnings:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, message: str) -> None:
        self.messages.append(message)


def backend_plugin(name: str, scheme: str | None = None) -> object:
    class Plugin:
        @hookimpl
        def papyra_register_backends(self, register: Any) -> None:
            register(name, schemes=[scheme or name], factory=lambda url, **o: MemoryStore(url.raw),
                     description=f"{name} for tests")

    return Plugin()


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path for fake plugin modules and dist-infos."""
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield tmp_path
    for mod in [m for m in sys.modules if m.startswith("fakeplug")]:
        del sys.modules[mod]


def fake_entry_points(monkeypatch: pytest.MonkeyPatch, **targets: str) -> None:
    eps = [importlib.metadata.EntryPoint(name=n, value=v, group="papyra")
           for n, v in targets.items()]
    monkeypatch.setattr(plugin_manager, "_entry_points", lambda: sorted(eps, key=lambda e: e.name))


def write_module(directory: Path, name: str, source: str) -> None:
    (directory / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")


GOOD_PLUGIN = """
    from papyra import hookimpl
    from papyra.backends.memory import MemoryStore

    @hookimpl
    def papyra_register_backends(register):
        register("good", schemes=["good"], factory=lambda url, **o: MemoryStore(url.raw, **o),
                 description="a plugin that loads")
"""


# --------------------------------------------------------------------------- loading


def test_a_fresh_manager_has_the_builtin_components(monkeypatch: pytest.MonkeyPatch) -> None:
    pm = PluginManager(entry_points=False)
    assert "memory" in pm.backends()
    assert set(pm.retention_rules()) == {"max_records", "max_age_seconds", "max_total_bytes"}
    assert set(pm.recovery_strategies()) == {"ignore", "repair", "quarantine"}
    info = pm.infos["builtin"]
    assert info.distribution == "papyra-core"
    pm.load_all()
    assert "backend:memory" in info.components
    assert "recovery_strategy:repair" in info.components


def test_nothing_global_is_created_at_import() -> None:
    plugin_manager.set_plugin_manager(None)
    importlib.reload(importlib.import_module("papyra"))
    assert plugin_manager._default is None


def test_a_broken_plugin_is_recorded_and_warned_once_and_the_others_still_load(
    plugin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module(plugin_dir, "fakeplug_good", GOOD_PLUGIN)
    write_module(plugin_dir, "fakeplug_bad", "raise RuntimeError('boom at import')\n")
    fake_entry_points(monkeypatch, bad="fakeplug_bad", good="fakeplug_good",
                      missing="fakeplug_not_installed")
    warn = Warnings()
    pm = PluginManager(strict=False, disabled=(), warn=warn)
    assert "good" in pm.backends()
    assert pm.infos["good"].status == "loaded"
    assert pm.infos["bad"].status == "failed"
    assert pm.infos["bad"].error == "RuntimeError: boom at import"
    assert pm.infos["missing"].status == "failed"
    assert "ModuleNotFoundError" in (pm.infos["missing"].error or "")
    assert len(warn.messages) == 2
    assert sum("'bad'" in m for m in warn.messages) == 1
    assert "PAPYRA_STRICT_PLUGINS=1" in warn.messages[0]
    pm.load_all()
    assert len(warn.messages) == 2


def test_the_default_warning_goes_to_stderr(
    plugin_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_module(plugin_dir, "fakeplug_bad2", "import nonexistent_dependency_of_fakeplug\n")
    fake_entry_points(monkeypatch, bad2="fakeplug_bad2")
    PluginManager(strict=False, disabled=())
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("papyra: warning: plugin 'bad2'") == 1


def test_unknown_scheme_error_names_the_plugins_that_failed_to_load(
    plugin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module(plugin_dir, "fakeplug_bad3", "raise ImportError('no redis module')\n")
    fake_entry_points(monkeypatch, redis="fakeplug_bad3")
    pm = PluginManager(strict=False, disabled=(), warn=Warnings())
    with pytest.raises(UnknownBackendError, match="failed to load: redis"):
        pm.open_store("redis://localhost:6379/0")


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_strict_plugins_make_a_load_failure_fatal(
    plugin_dir: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    write_module(plugin_dir, "fakeplug_bad4", "raise RuntimeError('boom')\n")
    fake_entry_points(monkeypatch, bad4="fakeplug_bad4")
    if how == "environment":
        monkeypatch.setenv("PAPYRA_STRICT_PLUGINS", "1")
    strict = True if how == "argument" else None
    with pytest.raises(PluginError, match="'bad4'") as info:
        PluginManager(strict=strict, disabled=(), warn=Warnings())
    assert info.value.exit_code == 2


def test_disabled_plugins_are_not_imported(
    plugin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module(plugin_dir, "fakeplug_good5", GOOD_PLUGIN)
    write_module(plugin_dir, "fakeplug_bad5", "raise RuntimeError('must not be imported')\n")
    fake_entry_points(monkeypatch, good="fakeplug_good5", bad="fakeplug_bad5")
    monkeypatch.setenv("PAPYRA_DISABLE_PLUGINS", " bad , good")
    warn = Warnings()
    pm = PluginManager(warn=warn)
    assert warn.messages == []
    assert pm.infos["bad"].status == pm.infos["good"].status == "disabled"
    assert "good" not in pm.backends()
    assert "fakeplug_bad5" not in sys.modules


def test_a_disabled_plugin_registered_directly_is_skipped() -> None:
    pm = PluginManager(entry_points=False, disabled=["mine"])
    pm.register(backend_plugin("mine"), "mine")
    assert "mine" not in pm.backends()
    assert pm.infos["mine"].to_dict()["status"] == "disabled"


def test_a_plugin_from_a_real_installed_distribution_is_discovered(
    plugin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module(plugin_dir, "fakeplug_dist", GOOD_PLUGIN.replace('"good"', '"fakedist"'))
    dist = plugin_dir / "fakeplug_dist-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fakeplug-dist\nVersion: 1.2.3\n", encoding="utf-8"
    )
    (dist / "entry_points.txt").write_text("[papyra]\nfakedist = fakeplug_dist\n",
                                           encoding="utf-8")
    importlib.invalidate_caches()
    pm = PluginManager(strict=False, disabled=(), warn=Warnings())
    info = pm.infos["fakedist"]
    assert (info.distribution, info.version, info.status) == ("fakeplug-dist", "1.2.3", "loaded")
    assert info.hooks == ["papyra_register_backends"]
    spec = pm.backend_for_scheme("FAKEDIST")
    assert spec.plugin == "fakedist"
    assert isinstance(pm.open_store("fakedist://x"), MemoryStore)
    assert pm.infos["fakedist"].to_dict()["components"] == ["backend:fakedist"]


# --------------------------------------------------------------------------- registration


def test_a_backend_name_registered_twice_is_an_error_naming_both_plugins() -> None:
    pm = PluginManager(entry_points=False)
    pm.register(backend_plugin("dup", "dupa"), "first")
    pm.register(backend_plugin("dup", "dupb"), "second")
    with pytest.raises(DuplicateRegistrationError) as info:
        pm.backends()
    assert "'first'" in str(info.value)
    assert "'second'" in str(info.value)
    assert "backend 'dup'" in str(info.value)


def test_a_url_scheme_claimed_twice_is_an_error_naming_both_plugins() -> None:
    pm = PluginManager(entry_points=False)
    pm.register(backend_plugin("one", "shared"), "plug-one")
    pm.register(backend_plugin("two", "SHARED"), "plug-two")
    with pytest.raises(DuplicateRegistrationError, match="'plug-one' and plugin 'plug-two'"):
        pm.backends()


def test_a_builtin_name_taken_by_a_plugin_is_refused() -> None:
    class Strategy:
        name = "repair"
        description = "an impostor"

        def plan(self, report: Any, *, quarantine_dir: str | None = None) -> list[Any]:
            return []

    class Plugin:
        @hookimpl
        def papyra_register_recovery_strategies(self, register: Any) -> None:
            register(Strategy())

    pm = PluginManager(entry_points=False)
    pm.register(Plugin(), "impostor")
    with pytest.raises(DuplicateRegistrationError,
                       match="recovery strategy 'repair' is registered by both plugin 'builtin' "
                             "and plugin 'impostor'"):
        pm.recovery_strategies()


def test_duplicate_exporter_and_retention_rule_names_are_errors() -> None:
    class Rule:
        name = "max_records"
        description = "again"

    class Plugin:
        @hookimpl
        def papyra_register_retention_rules(self, register: Any) -> None:
            register(Rule())

        @hookimpl
        def papyra_register_metric_exporters(self, register: Any) -> None:
            register("twice", factory=dict)
            register("twice", factory=dict)

    pm = PluginManager(entry_points=False)
    pm.register(Plugin(), "greedy")
    with pytest.raises(DuplicateRegistrationError, match="retention rule 'max_records'"):
        pm.retention_rules()
    with pytest.raises(DuplicateRegistrationError, match="'greedy' and plugin 'greedy'"):
        pm.metric_exporters()


def test_a_plugin_failing_inside_a_registration_hook_is_recorded_not_fatal() -> None:
    class Plugin:
        @hookimpl
        def papyra_register_backends(self, register: Any) -> None:
            raise RuntimeError("half-installed")

    warn = Warnings()
    pm = PluginManager(entry_points=False, strict=False, warn=warn)
    pm.register(Plugin(), "flaky")
    assert "memory" in pm.backends()
    assert pm.infos["flaky"].status == "failed"
    assert warn.messages == ["plugin 'flaky' failed in papyra_register_backends: half-installed"]


def test_a_plugin_failing_inside_a_registration_hook_is_fatal_when_strict() -> None:
    class Plugin:
        @hookimpl
        def papyra_register_backends(self, register: Any) -> None:
            raise RuntimeError("half-installed")

    pm = PluginManager(entry_points=False, strict=True)
    pm.register(Plugin(), "flaky")
    with pytest.raises(PluginError, match="flaky"):
        pm.backends()


def test_plugins_add_commands_and_a_failing_one_is_recorded() -> None:
    seen: list[str] = []

    class Adds:
        @hookimpl
        def papyra_register_commands(self, cli: Any) -> None:
            seen.append(cli)

    class Fails:
        @hookimpl
        def papyra_register_commands(self, cli: Any) -> None:
            raise RuntimeError("no click here")

    warn = Warnings()
    pm = PluginManager(entry_points=False, strict=False, warn=warn)
    pm.register(Adds(), "adds")
    pm.register(Fails(), "fails")
    pm.register_commands("the-cli")
    assert seen == ["the-cli"]
    assert pm.infos["adds"].components == ["commands"]
    assert pm.infos["fails"].status == "failed"
    assert len(warn.messages) == 1


# --------------------------------------------------------------------------- hooks


def test_a_misspelled_hook_is_caught_when_the_plugin_is_registered() -> None:
    class Typo:
        @hookimpl
        def papyra_on_scann(self, report: Any) -> None:
            """One n too many."""

    pm = PluginManager(entry_points=False)
    with pytest.raises(pluggy.PluginValidationError, match="papyra_on_scann"):
        pm.register(Typo(), "typo")
    assert not pm.pm.has_plugin("typo")
    pm.pm.check_pending()


def test_a_misspelled_hook_in_an_installed_plugin_fails_that_plugin_only(
    plugin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module(plugin_dir, "fakeplug_typo", """
        from papyra import hookimpl

        @hookimpl
        def papyra_register_backend(register):
            register("typo", schemes=["typo"], factory=dict)
    """)
    write_module(plugin_dir, "fakeplug_good6", GOOD_PLUGIN)
    fake_entry_points(monkeypatch, typo="fakeplug_typo", good="fakeplug_good6")
    warn = Warnings()
    pm = PluginManager(strict=False, disabled=(), warn=warn)
    assert pm.infos["typo"].status == "failed"
    assert "papyra_register_backend'" in (pm.infos["typo"].error or "")
    assert "good" in pm.backends()


def test_a_hook_with_wrong_arguments_is_refused() -> None:
    class Wrong:
        @hookimpl
        def papyra_on_scan(self, report: Any, extra: Any) -> None:
            """Asks for an argument the hook does not have."""

    pm = PluginManager(entry_points=False)
    with pytest.raises(pluggy.PluginValidationError):
        pm.register(Wrong(), "wrong")


async def test_observer_hook_failures_never_reach_the_caller(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    class Broken:
        @hookimpl
        def papyra_on_scan(self, report: Any) -> None:
            raise RuntimeError("observer bug")

        @hookimpl
        def papyra_on_compaction(self, report: Any) -> None:
            raise RuntimeError("observer bug")

    class Watcher:
        @hookimpl
        def papyra_on_scan(self, report: Any) -> None:
            seen.append(f"scan {report.records}")

        @hookimpl
        def papyra_on_recovery(self, report: Any) -> None:
            seen.append(f"recovery {report.mode}")

        @hookimpl
        def papyra_on_compaction(self, report: Any) -> None:
            seen.append(f"compaction {report.removed_records}")

    pm = PluginManager(entry_points=False)
    pm.register(Broken(), "broken")
    pm.register(Watcher(), "watcher")
    store = MemoryStore(plugins=pm)
    await store.record_event(actor_address="a:1", event_type="X")
    with caplog.at_level(logging.ERROR, logger="papyra.plugins"):
        report = await store.scan()
        await store.recover("repair")
        await store.compact()
    assert report.clean
    assert seen == ["scan 1", "scan 1", "recovery repair", "compaction 0"]
    assert "observer papyra_on_scan of plugin 'broken' failed" in caplog.text


def test_get_plugin_manager_builds_one_manager_lazily() -> None:
    plugin_manager.set_plugin_manager(None)
    try:
        first = plugin_manager.get_plugin_manager()
        assert plugin_manager.get_plugin_manager() is first
    finally:
        plugin_manager.set_plugin_manager(None)
