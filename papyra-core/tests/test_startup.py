"""Startup checks: the four modes, first boot, case-insensitive mode names, typed failures."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from papyra.backends.memory import MemoryStore
from papyra.errors import (
    AnomaliesFoundError,
    ConfigError,
    RecoveryIncompleteError,
    StoreNotFoundError,
)
from papyra.plugin_manager import PluginManager
from papyra.reports import Anomaly, RecoveryReport, ScanReport
from papyra.startup import StartupConfig, StartupMode, check_store, require_ok

BAD = Anomaly(kind="checksum_mismatch", file="log.ndjson", offset=10, length=20, line=2,
              detail="crc deadbeef does not match")
STRANGER = Anomaly(kind="foreign_file", severity="warning", file="notes.txt")


class ScriptedStore(MemoryStore):
    """A store whose scan findings are set by the test; repair fixes them unless told not to."""

    def __init__(self, *, anomalies: tuple[Anomaly, ...] = (), missing: bool = False,
                 fixable: bool = True) -> None:
        super().__init__("json:///srv/log.ndjson", plugins=PluginManager(entry_points=False))
        self.anomalies = anomalies
        self.missing = missing
        self.fixable = fixable
        self.recoveries: list[tuple[str, str | None]] = []

    async def _scan(self) -> ScanReport:
        if self.missing:
            raise StoreNotFoundError("no log at /srv/log.ndjson")
        return ScanReport(store=self.url, backend="scripted", records=3,
                          anomalies=self.anomalies)

    async def _recover(self, strategy: Any, *, quarantine_dir: str | None,
                       dry_run: bool) -> RecoveryReport:
        self.recoveries.append((strategy.name, quarantine_dir))
        before = await self.scan()
        if strategy.writes and self.fixable:
            self.anomalies = tuple(a for a in self.anomalies if a.severity != "error")
        after = await self.scan()
        return RecoveryReport(store=self.url, mode=strategy.name, dry_run=dry_run, actions=[],
                              before=before, after=after)


async def test_ignore_does_not_even_scan() -> None:
    store = ScriptedStore(anomalies=(BAD,))
    result = await check_store(store, StartupConfig(mode="ignore"))
    assert result.ok
    assert result.scan is None
    assert store.metrics.scans == 0
    assert result.exit_code == 0


async def test_scan_only_reports_anomalies_but_starts_and_writes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = ScriptedStore(anomalies=(BAD,))
    with caplog.at_level(logging.WARNING, logger="papyra.startup"):
        result = await check_store(store, StartupConfig(mode="scan_only"))
    assert result.ok
    assert result.scan is not None
    assert not result.scan.clean
    assert store.recoveries == []
    assert "1 anomalies" in caplog.text


async def test_fail_on_anomaly_refuses_to_start_and_writes_nothing() -> None:
    store = ScriptedStore(anomalies=(BAD,))
    result = await check_store(store, StartupConfig(mode="fail_on_anomaly"))
    assert not result.ok
    assert result.exit_code == 1
    assert store.recoveries == []
    with pytest.raises(AnomaliesFoundError, match=r"checksum_mismatch log\.ndjson line 2") as info:
        require_ok(result)
    assert info.value.exit_code == 1
    assert info.value.report is result


async def test_recover_repairs_by_default_then_starts_when_clean() -> None:
    store = ScriptedStore(anomalies=(BAD,))
    result = await check_store(store, StartupConfig(mode="recover"))
    assert result.ok
    assert result.recovery_mode == "repair"
    assert store.recoveries == [("repair", None)]
    assert result.recovery is not None
    assert result.recovery.clean
    assert require_ok(result) is result


async def test_recover_uses_the_configured_mode_and_quarantine_dir() -> None:
    store = ScriptedStore(anomalies=(BAD,))
    config = StartupConfig(mode="recover", recovery_mode="Quarantine", quarantine_dir="/q")
    result = await check_store(store, config)
    assert result.ok
    assert store.recoveries == [("quarantine", "/q")]


async def test_recover_that_leaves_anomalies_refuses_to_start_with_exit_3() -> None:
    store = ScriptedStore(anomalies=(BAD,), fixable=False)
    result = await check_store(store, StartupConfig(mode="recover"))
    assert not result.ok
    assert result.exit_code == 3
    assert "left 1 anomaly" in result.message
    with pytest.raises(RecoveryIncompleteError) as info:
        require_ok(result)
    assert info.value.exit_code == 3


async def test_recover_with_the_ignore_strategy_cannot_make_a_store_clean() -> None:
    store = ScriptedStore(anomalies=(BAD,))
    result = await check_store(store, StartupConfig(mode="recover", recovery_mode="ignore"))
    assert not result.ok
    assert result.exit_code == 3


@pytest.mark.parametrize("mode", ["scan_only", "fail_on_anomaly", "recover"])
async def test_a_missing_log_is_a_clean_first_boot(mode: str) -> None:
    store = ScriptedStore(missing=True)
    result = await check_store(store, StartupConfig(mode=mode))
    assert result.ok
    assert result.first_boot
    assert result.scan is None
    assert store.recoveries == []


@pytest.mark.parametrize("mode", list(StartupMode))
async def test_a_clean_store_starts_in_every_mode_without_recovery(mode: StartupMode) -> None:
    store = ScriptedStore(anomalies=(STRANGER,))
    result = await check_store(store, StartupConfig(mode=mode))
    assert result.ok
    assert result.recovery is None
    assert store.recoveries == []


@pytest.mark.parametrize(("given", "expected"), [
    ("FAIL_ON_ANOMALY", StartupMode.FAIL_ON_ANOMALY),
    ("Scan-Only", StartupMode.SCAN_ONLY),
    (" recover ", StartupMode.RECOVER),
    ("Ignore", StartupMode.IGNORE),
    (StartupMode.RECOVER, StartupMode.RECOVER),
])
def test_startup_modes_accept_their_names_in_any_case(given: Any, expected: StartupMode) -> None:
    assert StartupConfig(mode=given).mode is expected


def test_the_default_startup_mode_is_fail_on_anomaly() -> None:
    config = StartupConfig()
    assert config.mode is StartupMode.FAIL_ON_ANOMALY
    assert config.effective_recovery_mode == "repair"
    assert StartupConfig(recovery_mode="QUARANTINE").recovery_mode == "quarantine"


def test_an_unknown_startup_mode_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="unknown startup mode 'sometimes'") as info:
        StartupConfig(mode="sometimes")
    assert info.value.exit_code == 2


async def test_the_result_serialises_to_the_documented_json_shape() -> None:
    store = ScriptedStore(anomalies=(BAD,))
    result = await check_store(store, StartupConfig(mode="recover"))
    shape = result.to_dict()
    assert {"store", "mode", "recovery_mode", "scan", "recovery", "ok"} <= set(shape)
    assert shape["mode"] == "recover"
    assert shape["ok"] is True
    assert shape["scan"]["clean"] is False
    assert shape["recovery"]["after"]["clean"] is True
