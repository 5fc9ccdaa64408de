"""The installed ``papyra`` CLI on rotation directories (real subprocesses, real files)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from papyra.testing import sample_records
from papyra_backend_rotation import RotationStore


def papyra(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "papyra_cli", *args], capture_output=True,
                          text=True, timeout=120, check=False)


async def make_log(directory: Path, n: int = 60) -> None:
    store = RotationStore(directory, max_segment_bytes=1200)
    try:
        for i in range(0, n, 5):
            await store.append(sample_records(5, start=i))
    finally:
        await store.aclose()


async def test_path_to_an_existing_directory_scans_it_as_a_rotation_store(
    tmp_path: Path,
) -> None:
    await make_log(tmp_path / "log")
    result = await asyncio.to_thread(papyra, "persistence", "scan", "--path",
                                     str(tmp_path / "log"), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["backend"] == "rotation"
    assert report["clean"] is True
    assert (report["records"], report["first_seq"], report["last_seq"]) == (60, 1, 60)


async def test_a_deleted_segment_exits_1_and_recover_makes_the_directory_clean(
    tmp_path: Path,
) -> None:
    await make_log(tmp_path / "log")
    sorted((tmp_path / "log").glob("segment-*.ndjson"))[2].unlink()
    scan = await asyncio.to_thread(papyra, "persistence", "scan", "--path",
                                   str(tmp_path / "log"), "--json")
    assert scan.returncode == 1
    assert [a["kind"] for a in json.loads(scan.stdout)["anomalies"]] == ["seq_gap"]
    rec = await asyncio.to_thread(papyra, "persistence", "recover", "--path",
                                  str(tmp_path / "log"), "--json")
    assert rec.returncode == 0, rec.stderr
    assert json.loads(rec.stdout)["clean"] is True
    again = await asyncio.to_thread(papyra, "persistence", "scan", "--path",
                                    str(tmp_path / "log"))
    assert again.returncode == 0


async def test_a_missing_rotation_directory_is_exit_4_and_a_clean_first_boot(
    tmp_path: Path,
) -> None:
    url = f"rotation://{tmp_path}/nothing-here"
    scan = await asyncio.to_thread(papyra, "persistence", "scan", "--store", url)
    assert scan.returncode == 4
    assert "Traceback" not in scan.stderr
    check = await asyncio.to_thread(papyra, "persistence", "startup-check", "--store", url,
                                    "--mode", "fail_on_anomaly")
    assert check.returncode == 0, check.stderr


async def test_a_quarantine_directory_inside_the_store_is_a_usage_error(
    tmp_path: Path,
) -> None:
    await make_log(tmp_path / "log", 10)
    result = await asyncio.to_thread(
        papyra, "persistence", "recover", "--path", str(tmp_path / "log"), "--mode",
        "quarantine", "--quarantine-dir", str(tmp_path / "log" / "q"))
    assert result.returncode == 2
    assert "inside the rotation directory" in result.stderr
    assert not (tmp_path / "log" / "q").exists()


async def test_a_legacy_rotating_set_migrates_into_a_segment_directory_in_order(
    tmp_path: Path,
) -> None:
    old = tmp_path / "old"
    old.mkdir()
    n = 0
    for name in ("rot.ndjson.3", "rot.ndjson.2", "rot.ndjson.1", "rot.ndjson"):
        lines = []
        for _ in range(3):
            lines.append(json.dumps({"system_id": "s", "actor_address": f"s:{n}",
                                     "event_type": f"E{n:02d}", "payload": {"n": n},
                                     "timestamp": 1000.0 + n, "kind": "event"}))
            n += 1
        (old / name).write_text("\n".join(lines) + "\n")
    url = f"rotation://{tmp_path}/new?max_segment_bytes=600"
    result = await asyncio.to_thread(papyra, "persistence", "migrate", "--path",
                                     str(old / "rot.ndjson"), "--to", url)
    assert result.returncode == 0, result.stderr
    store = RotationStore(tmp_path / "new")
    try:
        back = await store.read_all()
        assert [r.event_type for r in back] == [f"E{i:02d}" for i in range(12)]  # type: ignore[union-attr]
        assert [r.seq for r in back] == list(range(1, 13))
        assert (await store.scan()).clean
    finally:
        await store.aclose()
