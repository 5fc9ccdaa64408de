"""start() runs the shared startup check before any actor can run; from_config reads the
same papyra.toml as the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from actor_helpers import DamagedStore, Echo, memory_store
from papyra import (
    ActorStoppedError,
    ActorSystem,
    AnomaliesFoundError,
    ConfigError,
    RecoveryIncompleteError,
    StartupConfig,
    StartupMode,
)


async def test_fail_on_anomaly_refuses_to_start_and_changes_nothing() -> None:
    store = DamagedStore()
    system = ActorSystem(system_id="test", persistence=store,
                         startup=StartupConfig(mode="fail_on_anomaly"))
    with pytest.raises(AnomaliesFoundError, match="invalid_json") as info:
        await system.start()
    assert info.value.exit_code == 1
    assert store.damaged
    assert store.executed == []
    assert await store.read_all() == []
    with pytest.raises(ActorStoppedError):
        system.spawn(Echo)
    assert system.startup_result is not None
    assert system.startup_result.ok is False


async def test_fail_on_anomaly_is_the_default() -> None:
    with pytest.raises(AnomaliesFoundError):
        await ActorSystem(system_id="test", persistence=DamagedStore()).start()


async def test_recover_repairs_rescans_and_only_then_starts() -> None:
    store = DamagedStore()
    async with ActorSystem(system_id="test", persistence=store,
                           startup={"mode": "recover", "recovery_mode": "repair"}) as system:
        assert not store.damaged
        assert [a.action for a in store.executed] == ["drop"]
        assert system.startup_result is not None
        assert system.startup_result.recovery is not None
        assert await system.spawn(Echo).ask("up") == "up"


async def test_recover_that_leaves_anomalies_refuses_to_start() -> None:
    store = DamagedStore(repairable=False)
    system = ActorSystem(system_id="test", persistence=store, startup="recover")
    with pytest.raises(RecoveryIncompleteError) as info:
        await system.start()
    assert info.value.exit_code == 3


async def test_scan_only_and_ignore_start_on_a_damaged_store() -> None:
    for mode in ("scan_only", "IGNORE"):
        store = DamagedStore()
        async with ActorSystem(system_id="test", persistence=store, startup=mode) as system:
            assert system.running
        assert store.damaged


async def test_an_unknown_startup_mode_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="unknown startup mode"):
        ActorSystem(persistence=memory_store(), startup="sometimes")
    with pytest.raises(ConfigError, match="unknown startup option"):
        ActorSystem(persistence=memory_store(), startup={"mood": "recover"})


async def test_an_unknown_backend_scheme_fails_start_with_a_configuration_error() -> None:
    from papyra.plugin_manager import PluginManager

    system = ActorSystem(persistence="nosuch:///x", plugins=PluginManager(entry_points=False))
    with pytest.raises(ConfigError, match="nosuch"):
        await system.start()


async def test_a_store_url_naming_another_system_is_refused() -> None:
    system = ActorSystem(system_id="orders", persistence="memory://?system_id=billing")
    with pytest.raises(ConfigError, match="billing"):
        await system.start()


async def test_from_config_reads_the_papyra_toml_the_cli_reads(tmp_path: Path) -> None:
    config = tmp_path / "papyra.toml"
    config.write_text(
        '[store]\nurl = "memory://"\n'
        "[retention]\nmax_records = 10\n"
        '[startup]\nmode = "recover"\n'
        '[recovery]\nmode = "quarantine"\nquarantine_dir = "/tmp/q"\n'
        '[system]\nsystem_id = "orders"\nqueue_capacity = 50\noverflow = "drop"\n'
    )
    system = ActorSystem.from_config(config, env={})
    assert system.system_id == "orders"
    assert system.startup_config == StartupConfig(mode=StartupMode.RECOVER,
                                                  recovery_mode="quarantine",
                                                  quarantine_dir="/tmp/q")
    assert system.retention is not None
    assert system.retention.max_records == 10
    async with system:
        assert system.store.retention.max_records == 10
        assert await system.spawn(Echo).ask(1) == 1


async def test_from_config_uses_papyra_store_from_the_environment_and_overrides(
    tmp_path: Path,
) -> None:
    config = tmp_path / "papyra.toml"
    config.write_text('[store]\nurl = "json:///nowhere.ndjson"\n')
    system = ActorSystem.from_config(config, env={"PAPYRA_STORE": "memory://"},
                                     system_id="x")
    async with system:
        assert system.store.url == "memory://"
        assert system.system_id == "x"


async def test_from_config_rejects_unknown_system_options(tmp_path: Path) -> None:
    config = tmp_path / "papyra.toml"
    config.write_text("[system]\nthreads = 4\n")
    with pytest.raises(ConfigError, match="threads"):
        ActorSystem.from_config(config, env={})


async def test_hooks_see_the_startup_check_even_when_it_fails() -> None:
    from papyra import StartupResult, SystemHooks

    seen: list[StartupResult] = []

    class Watch(SystemHooks):
        def on_startup(self, result: StartupResult) -> None:
            seen.append(result)

    with pytest.raises(AnomaliesFoundError):
        await ActorSystem(system_id="test", persistence=DamagedStore(), hooks=Watch()).start()
    async with ActorSystem(system_id="test", persistence=memory_store(), hooks=Watch()):
        pass
    assert [r.ok for r in seen] == [False, True]
