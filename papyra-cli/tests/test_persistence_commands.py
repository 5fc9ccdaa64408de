from __future__ import annotations

from pathlib import Path

from cli_helpers import Invoke, SharedStore, event, json_out, mixed_log, one_error_line, seed

SCAN_KEYS = {"store", "backend", "clean", "records", "legacy_records", "bytes", "anomalies"}
ANOMALY_KEYS = {"kind", "severity", "file", "stream", "offset", "length", "line", "entry_id",
                "detail"}


def test_scan_of_a_clean_store_exits_0_and_says_so(papyra: Invoke, shared: SharedStore) -> None:
    mixed_log(shared)
    result = papyra("persistence", "scan", "--store", "shared://")
    assert result.exit_code == 0
    assert "clean" in result.stderr
    assert "10 records" in result.stderr
    assert result.stdout == ""


def test_scan_json_has_the_documented_shape(papyra: Invoke, shared: SharedStore) -> None:
    mixed_log(shared)
    result = papyra("persistence", "scan", "--store", "shared://", "--json")
    assert result.exit_code == 0
    data = json_out(result)
    assert set(data) >= SCAN_KEYS
    assert data["clean"] is True
    assert data["records"] == 10
    assert data["store"] == "shared://"


def test_scan_with_anomalies_exits_1_and_lists_them(papyra: Invoke, shared: SharedStore) -> None:
    shared.damaged = True
    result = papyra("persistence", "scan", "--store", "shared://", "--json")
    assert result.exit_code == 1
    data = json_out(result)
    assert data["clean"] is False
    (anomaly,) = data["anomalies"]
    assert set(anomaly) >= ANOMALY_KEYS
    assert anomaly["kind"] == "truncated_tail"
    assert anomaly["stream"] is None
    human = papyra("persistence", "scan", "--store", "shared://")
    assert human.exit_code == 1
    assert "truncated_tail shared.ndjson line 3" in human.stderr


def test_scan_of_a_missing_store_exits_4_with_one_line(papyra: Invoke, shared: SharedStore) -> None:
    shared.missing = True
    result = papyra("persistence", "scan", "--store", "shared://")
    assert result.exit_code == 4
    assert "no log" in one_error_line(result)


def test_recover_without_mode_repairs_and_exits_0_when_clean_after(
        papyra: Invoke, shared: SharedStore) -> None:
    shared.damaged = True
    result = papyra("persistence", "recover", "--store", "shared://", "--json")
    assert result.exit_code == 0, result.stderr
    data = json_out(result)
    assert data["mode"] == "repair"
    assert data["dry_run"] is False
    assert data["before"]["clean"] is False
    assert data["after"]["clean"] is True
    assert data["clean"] is True
    assert [a["action"] for a in data["actions"]] == ["truncate"]
    assert set(data["actions"][0]) >= {"action", "file", "offset", "length", "to"}


def test_recover_exits_3_when_anomalies_remain(papyra: Invoke, shared: SharedStore) -> None:
    shared.damaged = True
    shared.repairable = False
    result = papyra("persistence", "recover", "--store", "shared://")
    assert result.exit_code == 3
    assert "remain" in result.stderr


def test_recover_dry_run_changes_nothing_and_exits_like_a_scan(
        papyra: Invoke, shared: SharedStore) -> None:
    shared.damaged = True
    result = papyra("persistence", "recover", "--store", "shared://", "--dry-run", "--json")
    assert result.exit_code == 1
    data = json_out(result)
    assert data["dry_run"] is True
    assert data["after"] is None
    assert data["actions"]
    assert shared.executed == []
    assert shared.damaged
    shared.damaged = False
    assert papyra("persistence", "recover", "--store", "shared://", "--dry-run").exit_code == 0


def test_recover_modes_are_case_insensitive(papyra: Invoke, shared: SharedStore,
                                            tmp_path: Path) -> None:
    shared.damaged = True
    result = papyra("persistence", "recover", "--mode", "QUARANTINE", "--quarantine-dir",
                    "./quarantine", "--store", "shared://", "--json")
    assert result.exit_code == 0, result.stderr
    data = json_out(result)
    assert data["mode"] == "quarantine"
    assert any(a["action"] == "quarantine" and a["to"] == str(tmp_path / "quarantine")
               for a in data["actions"])


def test_recover_refuses_a_quarantine_dir_without_quarantine_mode(
        papyra: Invoke, shared: SharedStore) -> None:
    result = papyra("persistence", "recover", "--mode", "repair", "--quarantine-dir", "q",
                    "--store", "shared://")
    assert result.exit_code == 2
    assert "--quarantine-dir only applies" in one_error_line(result)


def test_recover_refuses_an_unknown_mode_with_exit_2(papyra: Invoke) -> None:
    result = papyra("persistence", "recover", "--mode", "bogus", "--store", "shared://")
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "unknown recovery mode 'bogus'" in line
    assert "repair" in line


def test_compact_with_max_records_removes_the_oldest(papyra: Invoke, shared: SharedStore) -> None:
    mixed_log(shared)
    result = papyra("persistence", "compact", "--max-records", "4", "--store", "shared://",
                    "--json")
    assert result.exit_code == 0, result.stderr
    data = json_out(result)
    assert {"store", "dry_run", "before_records", "after_records", "before_bytes",
            "after_bytes", "removed_records", "reclaimed_bytes"} <= set(data)
    assert (data["before_records"], data["after_records"], data["removed_records"]) == (10, 4, 6)
    assert data["reclaimed_bytes"] > 0
    assert data["dry_run"] is False


def test_compact_dry_run_changes_nothing(papyra: Invoke, shared: SharedStore) -> None:
    mixed_log(shared)
    result = papyra("persistence", "compact", "--max-records", "4", "--dry-run",
                    "--store", "shared://", "--json")
    assert result.exit_code == 0
    data = json_out(result)
    assert data["dry_run"] is True
    assert data["removed_records"] == 6
    assert data["clean"] is True
    assert papyra("persistence", "scan", "--store", "shared://", "--json").exit_code == 0
    assert json_out(papyra("persistence", "scan", "--store", "shared://", "--json")
                    )["records"] == 10


def test_compact_dry_run_exits_1_when_the_store_has_anomalies(
        papyra: Invoke, shared: SharedStore) -> None:
    mixed_log(shared)
    shared.damaged = True
    result = papyra("persistence", "compact", "--max-records", "4", "--dry-run",
                    "--store", "shared://")
    assert result.exit_code == 1


def test_compact_parses_ages_and_sizes(papyra: Invoke, shared: SharedStore) -> None:
    seed(shared, [event(1, ts=1.0), event(2, ts=2.0)])
    import time

    seed(shared, [event(3, ts=time.time())])
    result = papyra("persistence", "compact", "--max-age", "7d", "--max-total-bytes", "10GiB",
                    "--store", "shared://", "--json")
    assert result.exit_code == 0, result.stderr
    data = json_out(result)
    assert data["removed_records"] == 2
    assert data["retention"]["max_age_seconds"] == 604800
    assert data["retention"]["max_total_bytes"] == 10 * 1024**3


def test_compact_uses_the_configured_retention_without_flags(
        papyra: Invoke, shared: SharedStore, tmp_path: Path) -> None:
    mixed_log(shared)
    (tmp_path / "papyra.toml").write_text('[store]\nurl = "shared://"\n[retention]\n'
                                          'max_records = 3\n')
    result = papyra("persistence", "compact", "--json")
    assert result.exit_code == 0, result.stderr
    assert json_out(result)["after_records"] == 3


def test_compact_refuses_bad_retention_values(papyra: Invoke) -> None:
    result = papyra("persistence", "compact", "--max-age", "7 parsecs", "--store", "shared://")
    assert result.exit_code == 2
    assert "parsecs" in one_error_line(result)
    assert papyra("persistence", "compact", "--max-total-bytes", "lots",
                  "--store", "shared://").exit_code == 2


def test_compact_of_a_missing_store_exits_4(papyra: Invoke, shared: SharedStore) -> None:
    shared.missing = True
    assert papyra("persistence", "compact", "--store", "shared://").exit_code == 4


def test_persistence_inspect_describes_the_store_and_its_metrics(
        papyra: Invoke, shared: SharedStore) -> None:
    mixed_log(shared)
    result = papyra("persistence", "inspect", "--show-metrics", "--store", "shared://",
                    "--json")
    assert result.exit_code == 0, result.stderr
    data = json_out(result)
    assert data["backend"] == "shared"
    assert data["stats"]["records"] == 10
    assert data["stats"]["records_by_kind"] == {"event": 5, "audit": 2, "dead_letter": 3}
    assert data["metrics"]["backend"] == "shared"
    human = papyra("persistence", "inspect", "--show-metrics", "--store", "shared://")
    assert human.exit_code == 0
    assert "records:     10" in human.stdout
    assert "metrics:" in human.stdout


def test_migrate_in_place_on_a_backend_without_migrate_is_a_usage_error(
        papyra: Invoke, shared: SharedStore) -> None:
    mixed_log(shared)
    result = papyra("persistence", "migrate", "--store", "shared://")
    assert result.exit_code == 2
    assert "cannot migrate in place" in one_error_line(result)


LEGACY = [
    '{"kind": "event", "system_id": "s", "actor_address": "s:1", "event_type": "ActorStarted", '
    '"payload": {}, "timestamp": 1.0}',
    '{"system_id": "s", "actor_address": "s:1", "event_type": "ActorStopped", "payload": {}, '
    '"timestamp": 2.0, "kind": "event"}',
]


def test_migrate_copies_a_legacy_rotating_set_oldest_first(
        papyra: Invoke, shared: SharedStore, tmp_path: Path) -> None:
    (tmp_path / "old.ndjson.2").write_text(LEGACY[0] + "\n")
    (tmp_path / "old.ndjson.1").write_text(LEGACY[1] + "\n")
    (tmp_path / "old.ndjson").write_text(
        '{"kind": "audit", "system_id": "s", "total_actors": 0, "alive_actors": 0, '
        '"stopping_actors": 0, "restarting_actors": 0, "registry_size": 0, '
        '"registry_orphans": [], "registry_dead": [], "dead_letters_count": 0, '
        '"timestamp": 3.0}\n')
    result = papyra("persistence", "migrate", "--path", "old.ndjson", "--to", "shared://",
                    "--json")
    assert result.exit_code == 0, result.stderr
    data = json_out(result)
    assert data["migrated"] == 3
    assert data["legacy_records"] == 3
    assert [r.timestamp for r in shared._records] == [1.0, 2.0, 3.0]
    assert not any(r.legacy for r in shared._records)
    again = papyra("persistence", "migrate", "--path", "old.ndjson", "--to", "shared://",
                   "--json")
    assert json_out(again)["migrated"] == 0
    assert json_out(again)["skipped"] == 3


def test_migrate_refuses_a_damaged_legacy_file_and_copies_nothing(
        papyra: Invoke, shared: SharedStore, tmp_path: Path) -> None:
    (tmp_path / "old.ndjson").write_text(LEGACY[0] + "\n{not json\n" + LEGACY[1] + "\n")
    result = papyra("persistence", "migrate", "--path", "old.ndjson", "--to", "shared://")
    assert result.exit_code == 1
    assert "recover" in result.stderr
    assert shared._records == []
