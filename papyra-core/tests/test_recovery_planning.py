"""The recovery plan every backend shares: what each strategy does with each anomaly kind."""

from __future__ import annotations

import pytest
from papyra.backends.memory import MemoryStore
from papyra.errors import ConfigError
from papyra.plugin_manager import PluginManager
from papyra.recovery import IgnoreStrategy, QuarantineStrategy, RepairStrategy, plan_repair
from papyra.reports import Anomaly, ScanReport


def scan(*anomalies: Anomaly) -> ScanReport:
    return ScanReport(store="json:///x.ndjson", backend="json", records=10, anomalies=anomalies)


BAD_LINE = Anomaly(kind="checksum_mismatch", file="x.ndjson", offset=100, length=50, line=3)
TORN = Anomaly(kind="truncated_tail", file="x.ndjson", offset=400, length=17, line=9)
NO_NEWLINE = Anomaly(kind="missing_trailing_newline", file="x.ndjson", offset=300, length=99,
                     line=8)
LEFTOVER = Anomaly(kind="orphaned_file", file="x.ndjson.compact.tmp", length=12)
STRANGER = Anomaly(kind="foreign_file", severity="warning", file="notes.txt", length=5)
NEWER = Anomaly(kind="unsupported_version", file="x.ndjson", offset=150, length=40, line=4)
GAP = Anomaly(kind="seq_gap", file="x.ndjson", offset=190, length=0, line=5, detail="5..7")
UNREADABLE = Anomaly(kind="unreadable", file="x.ndjson", detail="permission denied")
BAD_ENTRY = Anomaly(kind="malformed_entry", stream="p:{s}:events", entry_id="1-0")


def test_ignore_plans_nothing() -> None:
    assert IgnoreStrategy().plan(scan(BAD_LINE, TORN, LEFTOVER)) == []
    assert not IgnoreStrategy().writes


def test_repair_drops_bad_lines_only() -> None:
    (action,) = plan_repair(scan(BAD_LINE))
    assert (action.action, action.file, action.offset, action.length) == ("drop", "x.ndjson",
                                                                          100, 50)
    assert action.anomaly == BAD_LINE


def test_repair_truncates_a_torn_tail_and_adds_a_missing_newline() -> None:
    actions = plan_repair(scan(NO_NEWLINE, TORN))
    assert [(a.action, a.offset, a.length) for a in actions] == [("newline", 399, 1),
                                                                 ("truncate", 400, 17)]


def test_repair_deletes_papyras_leftovers_but_never_foreign_files() -> None:
    actions = plan_repair(scan(LEFTOVER, STRANGER))
    assert [(a.action, a.file) for a in actions] == [("delete", "x.ndjson.compact.tmp")]


def test_repair_keeps_lines_of_a_newer_format_version() -> None:
    assert plan_repair(scan(NEWER)) == []
    assert RepairStrategy().plan(scan(NEWER)) == []


def test_quarantine_copies_before_it_removes_and_moves_leftovers() -> None:
    actions = QuarantineStrategy().plan(scan(BAD_LINE, TORN, LEFTOVER, NEWER, STRANGER),
                                        quarantine_dir="/q")
    assert [(a.action, a.offset, a.to) for a in actions] == [
        ("quarantine", 100, "/q"), ("drop", 100, None),
        ("quarantine", 400, "/q"), ("truncate", 400, None),
        ("move", 0, "/q"),
        ("quarantine", 150, "/q"), ("drop", 150, None),
    ]


def test_a_seq_gap_is_explained_by_a_gap_action() -> None:
    (action,) = plan_repair(scan(GAP))
    assert (action.action, action.offset, action.detail) == ("gap", 190, "5..7")


def test_anomalies_with_no_safe_fix_plan_nothing() -> None:
    assert plan_repair(scan(UNREADABLE)) == []


def test_entries_of_a_stream_are_dropped_by_entry_id() -> None:
    (action,) = plan_repair(scan(BAD_ENTRY))
    assert (action.action, action.file, action.detail) == ("drop", "p:{s}:events", "1-0")


def test_actions_serialise_to_the_documented_json_shape() -> None:
    (action,) = plan_repair(scan(BAD_LINE))
    assert action.to_dict() == {"action": "drop", "file": "x.ndjson", "offset": 100,
                                "length": 50, "to": None, "detail": ""}


def test_recovery_modes_are_looked_up_case_insensitively() -> None:
    pm = PluginManager(entry_points=False)
    assert pm.recovery_strategy(" Repair ").name == "repair"
    assert pm.recovery_strategy("QUARANTINE").name == "quarantine"
    with pytest.raises(ConfigError, match="unknown recovery mode 'rebuild'") as info:
        pm.recovery_strategy("rebuild")
    assert info.value.exit_code == 2


async def test_an_unknown_recovery_mode_is_refused_by_the_store() -> None:
    store = MemoryStore(plugins=PluginManager(entry_points=False))
    with pytest.raises(ConfigError):
        await store.recover("rebuild")
