from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import Invoke, SharedStore, json_out, mixed_log, one_error_line

STARTUP_KEYS = {"store", "mode", "recovery_mode", "scan", "recovery", "ok"}


@pytest.mark.parametrize("command", [("persistence", "startup-check"), ("doctor", "run")])
def test_a_missing_store_is_a_clean_first_boot(papyra: Invoke, shared: SharedStore,
                                               command: tuple[str, str]) -> None:
    shared.missing = True
    result = papyra(*command, "--store", "shared://", "--json")
    assert result.exit_code == 0, result.stderr
    data = json_out(result)
    assert set(data) >= STARTUP_KEYS
    assert data["ok"] is True
    assert data["first_boot"] is True


@pytest.mark.parametrize("command", [("persistence", "startup-check"), ("doctor", "run")])
@pytest.mark.parametrize("mode", ["fail_on_anomaly", "FAIL_ON_ANOMALY", "Fail-On-Anomaly"])
def test_fail_on_anomaly_exits_1_and_changes_nothing(
        papyra: Invoke, shared: SharedStore, command: tuple[str, str], mode: str) -> None:
    mixed_log(shared)
    shared.damaged = True
    result = papyra(*command, "--mode", mode, "--store", "shared://", "--json")
    assert result.exit_code == 1
    data = json_out(result)
    assert data["ok"] is False
    assert data["mode"] == "fail_on_anomaly"
    assert data["recovery"] is None
    assert data["scan"]["clean"] is False
    assert shared.executed == []


@pytest.mark.parametrize("command", [("persistence", "startup-check"), ("doctor", "run")])
def test_recover_mode_repairs_and_exits_0(papyra: Invoke, shared: SharedStore,
                                          command: tuple[str, str]) -> None:
    shared.damaged = True
    result = papyra(*command, "--mode", "RECOVER", "--recovery-mode", "REPAIR",
                    "--store", "shared://", "--json")
    assert result.exit_code == 0, result.stderr
    data = json_out(result)
    assert data["ok"] is True
    assert data["recovery_mode"] == "repair"
    assert data["recovery"]["after"]["clean"] is True


def test_recover_mode_without_recovery_mode_means_repair(papyra: Invoke,
                                                         shared: SharedStore) -> None:
    shared.damaged = True
    result = papyra("persistence", "startup-check", "--mode", "recover", "--store", "shared://",
                    "--json")
    assert result.exit_code == 0
    assert json_out(result)["recovery_mode"] == "repair"
    assert not shared.damaged


def test_recover_mode_exits_3_when_anomalies_remain(papyra: Invoke, shared: SharedStore) -> None:
    shared.damaged = True
    shared.repairable = False
    result = papyra("doctor", "run", "--mode", "recover", "--store", "shared://")
    assert result.exit_code == 3
    assert "left 1 anomaly" in result.stderr


def test_quarantine_recovery_takes_the_quarantine_dir(papyra: Invoke, shared: SharedStore,
                                                      tmp_path: Path) -> None:
    shared.damaged = True
    result = papyra("doctor", "run", "--mode", "RECOVER", "--recovery-mode", "QUARANTINE",
                    "--quarantine-dir", str(tmp_path / "q"), "--store", "shared://", "--json")
    assert result.exit_code == 0, result.stderr
    actions = json_out(result)["recovery"]["actions"]
    assert any(a["action"] == "quarantine" and a["to"] == str(tmp_path / "q") for a in actions)


def test_scan_only_reports_but_never_fails_or_writes(papyra: Invoke, shared: SharedStore) -> None:
    shared.damaged = True
    result = papyra("doctor", "run", "--mode", "scan_only", "--store", "shared://")
    assert result.exit_code == 0
    assert "scan_only" in result.stderr
    assert shared.executed == []
    assert shared.damaged


def test_ignore_skips_the_check(papyra: Invoke, shared: SharedStore) -> None:
    shared.damaged = True
    result = papyra("persistence", "startup-check", "--mode", "ignore", "--store", "shared://",
                    "--json")
    assert result.exit_code == 0
    assert json_out(result)["scan"] is None


@pytest.mark.parametrize("args", [
    ("--mode", "fail_on_anomaly", "--recovery-mode", "repair"),
    ("--mode", "recover", "--recovery-mode", "repair", "--quarantine-dir", "q"),
    ("--mode", "sometimes"),
])
def test_meaningless_mode_combinations_are_usage_errors(papyra: Invoke,
                                                        args: tuple[str, ...]) -> None:
    result = papyra("persistence", "startup-check", *args, "--store", "shared://")
    assert result.exit_code == 2
    one_error_line(result)


def test_startup_check_defaults_to_the_configured_startup_mode(
        papyra: Invoke, shared: SharedStore, tmp_path: Path) -> None:
    shared.damaged = True
    (tmp_path / "papyra.toml").write_text(
        '[store]\nurl = "shared://"\n[startup]\nmode = "recover"\n[recovery]\nmode = "repair"\n')
    result = papyra("persistence", "startup-check", "--json")
    assert result.exit_code == 0, result.stderr
    assert json_out(result)["mode"] == "recover"
    assert not shared.damaged


def test_doctor_defaults_to_fail_on_anomaly_whatever_the_config_says(
        papyra: Invoke, shared: SharedStore, tmp_path: Path) -> None:
    shared.damaged = True
    (tmp_path / "papyra.toml").write_text(
        '[store]\nurl = "shared://"\n[startup]\nmode = "recover"\n')
    result = papyra("doctor", "run", "--json")
    assert result.exit_code == 1
    assert json_out(result)["mode"] == "fail_on_anomaly"
    assert shared.damaged


def test_doctor_reports_its_checks(papyra: Invoke, shared: SharedStore) -> None:
    result = papyra("doctor", "run", "--store", "shared://", "--json")
    assert result.exit_code == 0
    checks = {c["name"]: c for c in json_out(result)["checks"]}
    assert checks["plugins"]["ok"] is True
    assert checks["health"]["ok"] is True
    human = papyra("doctor", "run", "--store", "shared://")
    assert "✔ plugins" in human.stderr
    assert "store is clean" in human.stderr


def test_library_log_lines_only_appear_when_asked_for(papyra: Invoke,
                                                      shared: SharedStore) -> None:
    shared.damaged = True
    quiet = papyra("doctor", "run", "--mode", "scan_only", "--store", "shared://")
    assert "papyra.startup" not in quiet.stderr
    loud = papyra("--log-level", "WARNING", "doctor", "run", "--mode", "scan_only",
                  "--store", "shared://")
    assert "WARNING papyra.startup: startup scan found 1 anomalies" in loud.stderr
    import logging

    assert logging.getLogger("papyra").handlers == []  # nothing left configured afterwards
