"""Behaviour of the example SQLite backend that the conformance suite does not spell out."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import papyra
import pytest
from papyra.plugin_manager import PluginManager
from papyra_backend_sqlite.plugin import create


def open_db(path: Path, **options: object) -> papyra.Store:
    return create(papyra.StoreURL.parse(f"sqlite://{path}"), **options)  # type: ignore[no-any-return]


async def fill(store: papyra.Store, n: int) -> None:
    await store.append([
        papyra.EventRecord(system_id="t", actor_address=f"t:{i}", event_type="ActorStarted",
                           timestamp=1_700_000_000 + i)
        for i in range(1, n + 1)
    ])


async def test_appended_records_get_contiguous_seqs_from_one(tmp_path: Path) -> None:
    async with open_db(tmp_path / "p.db") as store:
        await fill(store, 3)
        await fill(store, 2)
        seqs = [r.seq for r in await store.read_all()]
    assert seqs == [1, 2, 3, 4, 5]


async def test_database_file_is_created_private(tmp_path: Path) -> None:
    async with open_db(tmp_path / "sub" / "p.db") as store:
        await fill(store, 1)
    assert (tmp_path / "sub" / "p.db").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "sub").stat().st_mode & 0o777 == 0o700


async def test_limit_returns_the_newest_records_in_log_order(tmp_path: Path) -> None:
    async with open_db(tmp_path / "p.db") as store:
        await fill(store, 1200)
        newest = [r.seq for r in await store.read_all(limit=3)]
        reversed_ = [r.seq for r in await store.read_all(limit=3, newest_first=True)]
        page = [r.seq for r in await store.read_all(after_seq=600, limit=2)]
    assert newest == [1198, 1199, 1200]
    assert reversed_ == [1200, 1199, 1198]
    assert page == [601, 602]


async def test_records_survive_reopening(tmp_path: Path) -> None:
    async with open_db(tmp_path / "p.db") as store:
        await fill(store, 2)
    async with open_db(tmp_path / "p.db") as store:
        await fill(store, 1)
        records = await store.read_all()
    assert [r.seq for r in records] == [1, 2, 3]
    assert isinstance(records[0], papyra.EventRecord)
    assert records[0].actor_address == "t:1"


async def test_scan_of_a_missing_database_raises_store_not_found(tmp_path: Path) -> None:
    async with open_db(tmp_path / "nothing.db") as store:
        assert not await store.exists()
        assert await store.read_all() == []
        with pytest.raises(papyra.StoreNotFoundError):
            await store.scan()
    assert not (tmp_path / "nothing.db").exists()


async def test_compaction_leaves_a_retention_gap_and_seq_keeps_counting(tmp_path: Path) -> None:
    async with open_db(tmp_path / "p.db") as store:
        await fill(store, 10)
        report = await store.compact(papyra.RetentionPolicy(max_records=4))
        assert (report.before_records, report.after_records, report.removed_records) == (10, 4, 6)
        assert report.reclaimed_bytes
        everything = await store.read_all(include_gaps=True)
        await fill(store, 1)
        last = (await store.read_all(limit=1))[0]
        scan = await store.scan()
    gap = everything[0]
    assert isinstance(gap, papyra.GapRecord)
    assert (gap.seq, gap.through, gap.reason) == (1, 6, "retention")
    assert [r.seq for r in everything[1:]] == [7, 8, 9, 10]
    assert last.seq == 11
    assert scan.clean
    assert scan.records == 5


async def test_retention_is_applied_to_reads_without_deleting(tmp_path: Path) -> None:
    async with open_db(tmp_path / "p.db", retention=papyra.RetentionPolicy(max_records=2)) as s:
        await fill(s, 5)
        kept = [r.seq for r in await s.read_all()]
        all_ = [r.seq for r in await s.read_all(apply_retention=False)]
    assert kept == [4, 5]
    assert all_ == [1, 2, 3, 4, 5]


def corrupt(path: Path, seq: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("UPDATE records SET line = CAST(replace(CAST(line AS TEXT), 't:', 'x:') AS BLOB)"
                 " WHERE seq = ?", (seq,))
    conn.commit()
    conn.close()


async def test_repair_drops_only_the_damaged_record_and_explains_it_with_a_gap(
    tmp_path: Path,
) -> None:
    db = tmp_path / "p.db"
    async with open_db(db) as store:
        await fill(store, 5)
    corrupt(db, 3)
    async with open_db(db) as store:
        scan = await store.scan()
        assert [a.kind for a in scan.anomalies] == ["checksum_mismatch"]
        assert [r.seq for r in await store.read_all()] == [1, 2, 4, 5]
        report = await store.recover("repair")
        again = await store.recover("repair")
        records = await store.read_all(include_gaps=True)
    assert report.clean
    assert report.after is not None
    assert report.after.records == 4
    assert again.actions == ()
    assert again.clean
    gap = records[2]
    assert isinstance(gap, papyra.GapRecord)
    assert (gap.seq, gap.through) == (3, 3)
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]


async def test_quarantine_copies_the_damaged_line_before_removing_it(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    async with open_db(db) as store:
        await fill(store, 3)
    corrupt(db, 2)
    async with open_db(db) as store:
        report = await store.recover("quarantine", quarantine_dir=str(tmp_path / "q"))
    files = sorted(os.listdir(tmp_path / "q"))
    assert report.clean
    assert files == ["p.db.seq-2.quarantine", "p.db.seq-2.quarantine.json"]
    assert b"x:2" in (tmp_path / "q" / files[0]).read_bytes()


async def test_dry_run_recovery_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    async with open_db(db) as store:
        await fill(store, 3)
    corrupt(db, 2)
    before = db.read_bytes()
    async with open_db(db) as store:
        report = await store.recover("repair", dry_run=True)
    assert report.after is None
    assert not report.clean
    assert [a.action for a in report.actions] == ["drop"]
    assert db.read_bytes() == before


def test_entry_point_registers_the_sqlite_scheme() -> None:
    manager = PluginManager()
    manager.load_entry_points()
    spec = manager.backend_for_scheme("sqlite")
    assert spec.name == "sqlite"
    assert spec.plugin == "sqlite"


async def test_repair_explains_a_deleted_row_with_a_gap(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    async with open_db(db) as store:
        await fill(store, 5)
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM records WHERE seq = 3")
    conn.commit()
    conn.close()
    async with open_db(db) as store:
        scan = await store.scan()
        report = await store.recover("repair")
        records = await store.read_all(include_gaps=True)
    assert [a.kind for a in scan.anomalies] == ["seq_gap"]
    assert report.clean
    gap = records[2]
    assert isinstance(gap, papyra.GapRecord)
    assert (gap.seq, gap.through) == (3, 3)


WRITER = """
import asyncio, sys
import papyra
from papyra_backend_sqlite.plugin import create

async def main() -> None:
    store = create(papyra.StoreURL.parse("sqlite://" + sys.argv[1]))
    async with store:
        for i in range(40):
            await store.append([papyra.EventRecord(system_id="t", actor_address=sys.argv[2],
                                                   event_type="Tick") for _ in range(5)])

asyncio.run(main())
"""


def test_two_writer_processes_get_unique_contiguous_seqs(tmp_path: Path) -> None:
    import subprocess
    import sys

    db = tmp_path / "p.db"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(db), f"w:{n}"])
             for n in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    conn = sqlite3.connect(db)
    seqs = [row[0] for row in conn.execute("SELECT seq FROM records ORDER BY seq")]
    conn.close()
    assert seqs == list(range(1, 401))
