"""Every operator workflow of issue 7 and the operator runbooks, run as the installed ``papyra``
console script on real files (clean, torn, corrupt and legacy fixtures)."""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cli_subprocess import FIXTURES, ROOT, clean_env, cli, error_lines, ndjson, out_json, papyra


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_fixture(name: str, dest: Path) -> Path:
    target = dest / "events.ndjson"
    shutil.copyfile(FIXTURES / name / "events.ndjson" if name else FIXTURES / "events.ndjson",
                    target)
    target.chmod(0o600)
    return target


# --------------------------------------------------------------------------- CI gates


def test_ci_scans_the_committed_v1_fixture_from_the_repository_root() -> None:
    before = digest(FIXTURES / "v1" / "events.ndjson")
    proc = papyra("persistence", "scan", "--path", "tests/fixtures/v1/events.ndjson", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "clean" in proc.stderr
    assert digest(FIXTURES / "v1" / "events.ndjson") == before
    assert not (FIXTURES / "v1" / "events.ndjson.lock").exists()


def test_ci_startup_check_accepts_upper_case_modes() -> None:
    proc = papyra("persistence", "startup-check", "--mode", "FAIL_ON_ANOMALY", "--path",
               "tests/fixtures/events.ndjson", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "store is clean" in proc.stderr


@pytest.mark.parametrize(("fixture", "code", "kinds"), [
    ("torn", 1, ["truncated_tail"]),
    ("corrupt", 1, ["invalid_json", "checksum_mismatch"]),
    ("legacy", 0, []),
])
def test_scan_reports_damage_with_exit_codes_and_json(fixture: str, code: int,
                                                      kinds: list[str]) -> None:
    proc = cli("persistence", "scan", "--json", "--path",
               str(FIXTURES / fixture / "events.ndjson"))
    assert proc.returncode == code, proc.stderr
    data = out_json(proc)
    assert [a["kind"] for a in data["anomalies"]] == kinds
    assert data["store"].startswith("json://")
    if fixture == "legacy":
        assert data["legacy_records"] == 12
    for a in data["anomalies"]:
        assert set(a) >= {"kind", "severity", "file", "stream", "offset", "length", "line",
                          "entry_id", "detail"}


def test_scan_of_a_missing_file_exits_4(tmp_path: Path) -> None:
    proc = cli("persistence", "scan", "--path", str(tmp_path / "nope.ndjson"))
    assert proc.returncode == 4
    assert len(error_lines(proc)) == 1
    assert not (tmp_path / "nope.ndjson").exists()


# --------------------------------------------------------------------------- startup gates


def test_startup_check_fails_on_a_torn_log_and_changes_nothing(tmp_path: Path) -> None:
    log = copy_fixture("torn", tmp_path)
    before = digest(log)
    proc = papyra("persistence", "startup-check", "--mode", "fail_on_anomaly", cwd=tmp_path,
               env=clean_env(PAPYRA_STORE=f"json://{log}"))
    assert proc.returncode == 1
    assert "refusing to start" in proc.stderr
    assert digest(log) == before


def test_startup_check_recovers_with_repair_from_papyra_toml(tmp_path: Path) -> None:
    log = copy_fixture("torn", tmp_path)
    (tmp_path / "papyra.toml").write_text('[store]\nurl = "json://events.ndjson"\n')
    proc = papyra("persistence", "startup-check", "--mode", "recover", "--recovery-mode", "repair",
               "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = out_json(proc)
    assert data["ok"] is True
    assert data["recovery"]["after"]["clean"] is True
    assert cli("persistence", "scan", "--path", str(log)).returncode == 0


def test_startup_check_without_any_log_is_a_clean_first_boot(tmp_path: Path) -> None:
    proc = cli("persistence", "startup-check", "--json", "--path",
               str(tmp_path / "papyra.ndjson"))
    assert proc.returncode == 0, proc.stderr
    assert out_json(proc)["first_boot"] is True
    assert not (tmp_path / "papyra.ndjson").exists()


def test_doctor_gates_a_deployment(tmp_path: Path) -> None:
    log = copy_fixture("corrupt", tmp_path)
    env = clean_env(PAPYRA_STORE=f"json://{log}")
    assert papyra("doctor", "run", "--mode", "fail_on_anomaly", env=env).returncode == 1
    assert cli("doctor", "run", "--mode", "FAIL_ON_ANOMALY", env=env).returncode == 1
    proc = cli("doctor", "run", "--mode", "RECOVER", "--recovery-mode", "REPAIR", "--json",
               env=env)
    assert proc.returncode == 0, proc.stderr
    data = out_json(proc)
    assert {"store", "mode", "recovery_mode", "scan", "recovery", "ok"} <= set(data)
    assert data["mode"] == "recover"
    assert data["recovery_mode"] == "repair"
    actions = [a["action"] for a in data["recovery"]["actions"]]
    assert actions.count("drop") == 2
    assert "gap" in actions
    assert cli("doctor", "run", env=env).returncode == 0


def test_doctor_quarantines_into_the_given_directory(tmp_path: Path) -> None:
    log = copy_fixture("corrupt", tmp_path)
    qdir = tmp_path / "var" / "lib" / "papyra" / "quarantine"
    proc = papyra("doctor", "run", "--mode", "RECOVER", "--recovery-mode", "QUARANTINE",
               "--quarantine-dir", str(qdir), env=clean_env(PAPYRA_STORE=f"json://{log}"))
    assert proc.returncode == 0, proc.stderr
    kept = sorted(p.name for p in qdir.iterdir())
    assert len([k for k in kept if not k.endswith(".json")]) == 2
    assert cli("persistence", "scan", "--path", str(log)).returncode == 0


# --------------------------------------------------------------------------- recovery


def test_recover_repairs_a_torn_log_by_relative_path(tmp_path: Path) -> None:
    copy_fixture("torn", tmp_path)
    proc = papyra("persistence", "recover", "--path", "events.ndjson", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "after: clean" in proc.stderr
    again = cli("persistence", "recover", "--path", "events.ndjson", "--json", cwd=tmp_path)
    assert again.returncode == 0
    assert out_json(again)["actions"] == []


def test_recover_keeps_valid_records_after_mid_file_corruption(tmp_path: Path) -> None:
    log = copy_fixture("corrupt", tmp_path)
    assert cli("persistence", "recover", "--path", str(log)).returncode == 0
    events = ndjson(cli("inspect", "events", "--json", "--path", str(log)))
    assert [e["seq"] for e in events] == [1, 2, 3, 5, 9, 10, 11]


def test_recover_quarantine_beside_the_file(tmp_path: Path) -> None:
    copy_fixture("corrupt", tmp_path)
    proc = papyra("persistence", "recover", "--mode", "quarantine", "--quarantine-dir",
               "./quarantine", "--path", "events.ndjson", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    bad = sorted(p for p in (tmp_path / "quarantine").iterdir() if not p.name.endswith(".json"))
    assert b'{"v":1,"seq":4,"id":\n' in [p.read_bytes() for p in bad]  # b'{"v":1,"seq":4,"id":\n'


def test_recover_dry_run_exits_like_a_scan_and_changes_nothing(tmp_path: Path) -> None:
    log = copy_fixture("torn", tmp_path)
    before = digest(log)
    proc = cli("persistence", "recover", "--dry-run", "--json", "--path", str(log))
    assert proc.returncode == 1
    data = out_json(proc)
    assert data["dry_run"] is True
    assert data["after"] is None
    assert [a["action"] for a in data["actions"]] == ["truncate"]
    assert digest(log) == before


def test_recover_of_a_missing_log_exits_4(tmp_path: Path) -> None:
    proc = cli("persistence", "recover", "--path", str(tmp_path / "events.ndjson"))
    assert proc.returncode == 4
    assert not (tmp_path / "events.ndjson").exists()


# --------------------------------------------------------------------------- compaction


def test_compact_applies_the_configured_retention(tmp_path: Path) -> None:
    copy_fixture("", tmp_path)
    (tmp_path / "papyra.toml").write_text(
        '[store]\nurl = "json://events.ndjson"\n[retention]\nmax_records = 5\n')
    proc = papyra("persistence", "compact", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = out_json(proc)
    assert (data["before_records"], data["after_records"]) == (12, 5)
    assert data["reclaimed_bytes"] > 0
    assert cli("persistence", "scan", cwd=tmp_path).returncode == 0
    events = ndjson(cli("inspect", "events", "--json", cwd=tmp_path))
    assert [e["seq"] for e in events] == [9, 10, 11]


def test_compact_flags_and_dry_run(tmp_path: Path) -> None:
    log = copy_fixture("", tmp_path)
    before = digest(log)
    proc = cli("persistence", "compact", "--max-records", "2", "--dry-run", "--json",
               "--path", str(log))
    assert proc.returncode == 0, proc.stderr
    assert out_json(proc)["removed_records"] == 10
    assert digest(log) == before
    proc = cli("persistence", "compact", "--max-age", "7d", "--max-total-bytes", "10GiB",
               "--path", str(log), "--json")
    assert proc.returncode == 0, proc.stderr
    assert out_json(proc)["after_records"] == 0  # the fixture is from 2026-01-01


def test_compact_of_a_missing_log_does_not_create_it(tmp_path: Path) -> None:
    proc = cli("persistence", "compact", "--max-records", "1", "--path",
               str(tmp_path / "events.ndjson"))
    assert proc.returncode == 4
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- inspect, migrate


def test_inspect_events_reads_the_store_from_the_environment(tmp_path: Path) -> None:
    log = copy_fixture("", tmp_path)
    env = clean_env(PAPYRA_STORE=f"json://{log}")
    proc = papyra("inspect", "events", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "ActorCrashed" in proc.stdout
    newest = ndjson(cli("inspect", "events", "--limit", "2", "--json", env=env))
    assert [e["event_type"] for e in newest] == ["ActorStopped", "ActorStopped"]
    crashed = ndjson(cli("inspect", "events", "--type", "ActorCrashed", "--json", env=env))
    assert crashed[0]["payload"] == {"error": "ValueError: boom"}
    letters = ndjson(cli("inspect", "dead-letters", "--target", "orders:*", "--json", env=env))
    assert [d["message_type"] for d in letters] == ["PlaceOrder"]
    summary = out_json(cli("inspect", "summary", "--json", env=env))
    assert summary["records_by_kind"] == {"event": 8, "audit": 2, "dead_letter": 2}
    assert summary["newest_audit"]["dead_letters_count"] == 2


def test_inspect_shows_legacy_records(tmp_path: Path) -> None:
    proc = cli("inspect", "events", "--json", "--path",
               str(FIXTURES / "legacy" / "events.ndjson"))
    assert proc.returncode == 0, proc.stderr
    events = ndjson(proc)
    assert len(events) == 8
    assert all(e.get("legacy") for e in events)


def test_migrate_upgrades_a_legacy_file_in_place(tmp_path: Path) -> None:
    log = copy_fixture("legacy", tmp_path)
    before = ndjson(papyra("inspect", "events", "--json", "--path", str(log)))
    proc = cli("persistence", "migrate", "--path", str(log), "--json")
    assert proc.returncode == 0, proc.stderr
    assert out_json(proc)["migrated"] == 12
    scan = out_json(cli("persistence", "scan", "--json", "--path", str(log)))
    assert (scan["records"], scan["legacy_records"], scan["clean"]) == (12, 0, True)
    after = ndjson(cli("inspect", "events", "--json", "--path", str(log)))
    assert [(e["timestamp"], e["event_type"]) for e in after] == [
        (e["timestamp"], e["event_type"]) for e in before]


def test_migrate_refuses_a_damaged_log(tmp_path: Path) -> None:
    log = copy_fixture("torn", tmp_path)
    before = digest(log)
    proc = cli("persistence", "migrate", "--path", str(log))
    assert proc.returncode == 1
    assert digest(log) == before


def test_migrate_copies_a_legacy_rotating_set_into_a_new_store(tmp_path: Path) -> None:
    lines = (FIXTURES / "legacy" / "events.ndjson").read_bytes().splitlines(keepends=True)
    (tmp_path / "old.ndjson.2").write_bytes(b"".join(lines[:4]))
    (tmp_path / "old.ndjson.1").write_bytes(b"".join(lines[4:8]))
    (tmp_path / "old.ndjson").write_bytes(b"".join(lines[8:]))
    new = tmp_path / "new.ndjson"
    proc = cli("persistence", "migrate", "--path", "old.ndjson", "--to", f"json://{new}",
               "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert out_json(proc)["migrated"] == 12
    stamps = [e["timestamp"] for e in ndjson(cli("inspect", "events", "--json", "--path",
                                                 str(new)))]
    assert stamps == sorted(stamps)
    assert len(stamps) == 8


# --------------------------------------------------------------------------- rotation


def test_path_to_a_directory_means_a_rotation_store(tmp_path: Path) -> None:
    import asyncio

    from papyra import EventRecord, open_store

    log_dir = tmp_path / "log"

    async def write() -> None:
        async with open_store(f"rotation://{log_dir}", max_segment_bytes=600) as store:
            for i in range(12):
                await store.append([EventRecord(system_id="s", actor_address="s:1",
                                                event_type=f"E{i}")])

    asyncio.run(write())
    assert len(list(log_dir.glob("segment-*.ndjson"))) > 1
    proc = papyra("persistence", "scan", "--path", str(log_dir), "--json")
    assert proc.returncode == 0, proc.stderr
    data = out_json(proc)
    assert (data["backend"], data["records"]) == ("rotation", 12)
    events = ndjson(cli("inspect", "events", "--limit", "3", "--json", "--path", str(log_dir)))
    assert [e["event_type"] for e in events] == ["E9", "E10", "E11"]
    (log_dir / "notes.txt").write_text("not papyra's")
    warned = cli("persistence", "scan", "--path", str(log_dir), "--json")
    assert warned.returncode == 0  # a foreign file is a warning: reported, never touched
    assert [a["kind"] for a in out_json(warned)["anomalies"]] == ["foreign_file"]
    compact = cli("persistence", "compact", "--max-records", "4", "--path", str(log_dir),
                  "--json")
    assert compact.returncode == 0, compact.stderr
    assert out_json(compact)["after_records"] == 4
    assert (log_dir / "notes.txt").exists()


def test_a_closed_stdout_pipe_ends_quietly_with_141(tmp_path: Path) -> None:
    import subprocess

    from cli_subprocess import PAPYRA

    lines = (FIXTURES / "legacy" / "events.ndjson").read_bytes()
    (tmp_path / "big.ndjson").write_bytes(lines * 200)  # far more than a pipe buffer
    proc = subprocess.Popen([PAPYRA, "inspect", "events", "--json", "--path", "big.ndjson"],
                            cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith(b"{")
    proc.stdout.close()
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 141
    assert b"Traceback" not in stderr
    assert b"error" not in stderr


def test_migrate_copies_a_legacy_rotating_set_into_a_rotation_directory(tmp_path: Path) -> None:
    lines = (FIXTURES / "legacy" / "events.ndjson").read_bytes().splitlines(keepends=True)
    (tmp_path / "old.ndjson.1").write_bytes(b"".join(lines[:6]))
    (tmp_path / "old.ndjson").write_bytes(b"".join(lines[6:]))
    target = tmp_path / "log"
    proc = cli("persistence", "migrate", "--path", "old.ndjson", "--to", f"rotation://{target}",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    scan = out_json(cli("persistence", "scan", "--json", "--path", str(target)))
    assert (scan["backend"], scan["records"], scan["legacy_records"]) == ("rotation", 12, 0)
    summary = out_json(cli("inspect", "summary", "--json", "--path", str(target)))
    assert summary["oldest_timestamp"] == 1767225601.0
