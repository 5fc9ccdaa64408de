"""Rotation-specific behaviour: segments, the disk bound, scan of a directory, repair,
compaction across segments, legacy sets, replay order."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import time
from pathlib import Path

import pytest
from papyra import codec
from papyra.errors import ConfigError, StoreNotFoundError, StoreUnavailableError
from papyra.filelog.migrate import legacy_set_files
from papyra.records import GapRecord
from papyra.retention import RetentionPolicy
from papyra.testing import sample_records
from papyra_backend_rotation import RotationStore
from papyra_backend_rotation.layout import classify, parse_segment_name, segment_name
from papyra_backend_rotation.policy import RotationPolicy
from papyra_backend_rotation.writer import SegmentWriter


def segments(d: Path) -> list[Path]:
    return sorted(d.glob("segment-*.ndjson"))


def seqs_in(path: Path) -> list[int]:
    return [json.loads(line)["seq"] for line in path.read_bytes().splitlines() if line]


async def filled(tmp_path: Path, n: int = 40, **options: object) -> RotationStore:
    options.setdefault("max_segment_bytes", 1500)
    store = RotationStore(tmp_path / "log", **options)  # type: ignore[arg-type]
    for i in range(0, n, 5):
        await store.append(sample_records(5, start=i))
    return store


# --------------------------------------------------------------------------- naming


def test_segment_names_carry_the_first_seq_in_twenty_digits_and_sort_in_log_order() -> None:
    assert segment_name(1) == "segment-00000000000000000001.ndjson"
    names = [segment_name(s) for s in (1, 9, 10, 100, 12345678901234)]
    assert sorted(names) == names
    assert parse_segment_name(segment_name(42)) == 42
    assert parse_segment_name("segment-1.ndjson") is None


@pytest.mark.parametrize(("name", "kind"), [
    ("segment-00000000000000000001.ndjson", "segment"),
    ("papyra.lock", "lock"),
    (".segment-00000000000000000001.ndjson.compact.123.abcd1234.tmp", "temp"),
    ("segment-00000000000000000001.ndjson.lock", "stray_lock"),
    ("notes.txt", "foreign"),
    ("segment-00000000000000000001.ndjson.bak", "foreign"),
])
def test_directory_entries_are_classified_by_name(name: str, kind: str) -> None:
    assert classify(name) == kind


def test_rotation_policy_rejects_nonsense() -> None:
    with pytest.raises(ConfigError):
        RotationPolicy(max_segment_bytes=0)
    with pytest.raises(ConfigError):
        RotationPolicy.from_options({"max_segments": "-1"})
    with pytest.raises(ConfigError, match="smaller than max_segment_bytes"):
        RotationPolicy(max_total_bytes=10_000)


def test_the_disk_bound_counts_the_new_active_segment_at_its_full_size() -> None:
    p = RotationPolicy(max_segment_bytes=100, max_total_bytes=350)
    assert p.segments_to_delete([100, 100, 100]) == 1
    assert RotationPolicy(max_segment_bytes=100, max_segments=2).segments_to_delete(
        [100, 100, 100]) == 2


# --------------------------------------------------------------------------- writing


async def test_appends_roll_into_new_segments_named_by_their_first_seq(tmp_path: Path) -> None:
    store = await filled(tmp_path)
    try:
        segs = segments(store.directory)
        if segs[-1].stat().st_size == 0:
            # the next segment, reserved ahead of the rotation into it
            assert parse_segment_name(segs.pop().name) > 41  # type: ignore[operator]
        assert len(segs) > 3
        expected = 1
        for seg in segs:
            got = seqs_in(seg)
            assert parse_segment_name(seg.name) == got[0] == expected
            assert got == list(range(got[0], got[0] + len(got)))
            expected = got[-1] + 1
            assert seg.stat().st_size <= 1500
        assert [r.seq for r in await store.read_all()] == list(range(1, 41))
    finally:
        await store.aclose()


def writer_of(store: RotationStore) -> SegmentWriter:
    assert store._segment_writer is not None
    return store._segment_writer


async def test_rotations_go_into_segments_reserved_ahead_of_time(tmp_path: Path) -> None:
    store = RotationStore(tmp_path / "log", max_segment_bytes=2000)
    try:
        for i in range(120):
            await store.append(sample_records(1, start=i))
        w = writer_of(store)
        assert w.rotations > 5
        # every rotation after the first reservation went into a reserved segment
        assert w.reservations_used >= w.rotations - 1
        res = w.reservation
        assert res is not None
        assert res.path.stat().st_size == 0
        assert res.seq >= 120 + 1  # (when due, it is simply the empty active segment)
        segs = segments(store.directory)
        assert segs[-1] == res.path
        for seg in segs[:-2]:  # the sealed ones
            # filled to within about two records of the limit (the guess), never past it
            assert 2000 - 700 < seg.stat().st_size <= 2000
        report = await store.scan()
        assert report.clean
        assert report.records == 120
        assert report.last_seq == 120
        assert [r.seq for r in await store.read_all()] == list(range(1, 121))
        assert [r.seq for r in await store.read_all(newest_first=True, limit=3)] == [120, 119, 118]
    finally:
        await store.aclose()
    assert res.path.exists() is False, "a clean close deletes the unused reservation"
    assert all(p.stat().st_size > 0 for p in segments(store.directory))


async def test_larger_records_than_guessed_rotate_early_and_drop_the_reservation(
    tmp_path: Path,
) -> None:
    store = RotationStore(tmp_path / "log", max_segment_bytes=2000)
    try:
        for i in range(8):
            await store.append(sample_records(1, start=i))
        w = writer_of(store)
        res = w.reservation
        assert res is not None
        big = sample_records(1, start=100)[0]
        for _ in range(3):
            await store.record_event(actor_address="a:1", event_type="Big",
                                     payload={"x": "y" * 500})
        # seq 10 no longer fits: an ordinary rotation before the reserved seq, and the old
        # reservation deleted (a new one may take its name, guessed from the larger records)
        assert res.seq > 10
        assert w.reservation is not res
        assert seqs_in(store.directory / segment_name(10))[0] == 10
        assert w.reservations_used < w.rotations
        assert (await store.scan()).clean
        await store.append([big])
        assert [r.seq for r in await store.read_all()] == list(range(1, 13))
        for seg in segments(store.directory)[:-1]:
            assert seg.stat().st_size <= 2000
    finally:
        await store.aclose()


async def test_a_reservation_left_by_a_dead_writer_is_adopted(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    store = RotationStore(directory, max_segment_bytes=2000)
    for i in range(10):
        await store.append(sample_records(1, start=i))
    res = writer_of(store).reservation
    assert res is not None
    reserved = res.path
    # what a SIGKILL leaves: the store is not closed, its reservation stays on disk
    store2 = RotationStore(directory, max_segment_bytes=2000)
    try:
        assert (await store2.scan()).clean, "a reservation is not an anomaly"
        for i in range(10, 40):
            await store2.append(sample_records(1, start=i))
        assert writer_of(store2).reservations_used >= 1
        assert seqs_in(reserved)[0] == parse_segment_name(reserved.name)
        assert [r.seq for r in await store2.read_all()] == list(range(1, 41))
        assert (await store2.scan()).clean
    finally:
        await store2.aclose()
        await store.aclose()


async def test_a_second_writer_that_did_not_see_a_reservation_overtakes_it_harmlessly(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "log"
    a = RotationStore(directory, max_segment_bytes=2000)
    b = RotationStore(directory, max_segment_bytes=2000)
    try:
        await a.append(sample_records(1))
        await b.append(sample_records(1, start=1))  # b has listed the directory now
        for i in range(2, 60):
            await (a if i % 7 else b).append(sample_records(1, start=i))
        assert [r.seq for r in await a.read_all()] == list(range(1, 61))
        assert (await a.scan()).clean
        for i in range(60, 120):
            await (b if i % 3 else a).append(sample_records(1, start=i))
        records = await b.read_all()
        assert [r.seq for r in records] == list(range(1, 121))
        assert len({r.id for r in records}) == 120
    finally:
        await a.aclose()
        await b.aclose()
    store = RotationStore(directory)
    try:
        assert (await store.scan()).clean
    finally:
        await store.aclose()


async def test_files_are_0600_and_the_directory_0700(tmp_path: Path) -> None:
    store = await filled(tmp_path, 10)
    await store.aclose()
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    for p in store.directory.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600


async def test_a_record_larger_than_a_segment_gets_a_segment_of_its_own(tmp_path: Path) -> None:
    store = RotationStore(tmp_path / "log", max_segment_bytes=300)
    try:
        await store.append(sample_records(2))
        await store.record_event(actor_address="a:1", event_type="Big", payload={"x": "y" * 900})
        await store.append(sample_records(1))
        assert [len(seqs_in(p)) for p in segments(store.directory)][-2:] == [1, 1]
        assert (await store.scan()).clean
    finally:
        await store.aclose()


async def test_segments_rotate_by_age(tmp_path: Path) -> None:

    store = RotationStore(tmp_path / "log", max_segment_age_seconds=0.3)
    try:
        await store.append(sample_records(3, base_timestamp=time.time() - 3600))
        await store.append(sample_records(2, start=3))
        assert len(segments(store.directory)) == 1, "record timestamps do not age a segment"
        await asyncio.sleep(0.35)
        await store.append(sample_records(2, start=5))
        assert len(segments(store.directory)) == 2
    finally:
        await store.aclose()


async def test_the_disk_bound_deletes_whole_oldest_segments_and_counts_retention_drops(
    tmp_path: Path,
) -> None:
    store = await filled(tmp_path, 200, max_segments=3)
    try:
        segs = segments(store.directory)
        assert len(segs) <= 3
        back = [r.seq for r in await store.read_all()]
        assert back[-1] == 200
        assert back == list(range(back[0], 201))
        assert store.metrics.records_dropped.get("retention") == back[0] - 1
        report = await store.scan()
        assert report.clean, [a.describe() for a in report.anomalies]
        assert report.first_seq == back[0]
    finally:
        await store.aclose()


async def test_max_total_bytes_keeps_the_directory_under_the_bound(tmp_path: Path) -> None:
    store = RotationStore(tmp_path / "log", max_segment_bytes=1000, max_total_bytes=4000)
    try:
        for i in range(0, 300, 3):
            await store.append(sample_records(3, start=i))
            total = sum(p.stat().st_size for p in segments(store.directory))
            assert total <= 4000
    finally:
        await store.aclose()


async def test_seq_continues_across_reopen_and_a_second_store(tmp_path: Path) -> None:
    a = await filled(tmp_path, 20)
    b = RotationStore(tmp_path / "log", max_segment_bytes=1500)
    try:
        await b.append(sample_records(7))
        await a.append(sample_records(3))
        seqs = [r.seq for r in await a.read_all()]
        assert seqs == list(range(1, 31))
    finally:
        await a.aclose()
        await b.aclose()


async def test_newest_n_reads_come_from_the_newest_segments(tmp_path: Path) -> None:
    store = await filled(tmp_path, 60)
    try:
        got = await store.read_all(limit=7)
        assert [r.seq for r in got] == list(range(54, 61))
        got = await store.read_all(limit=3, newest_first=True)
        assert [r.seq for r in got] == [60, 59, 58]
        got = await store.read_all(after_seq=25, limit=4)
        assert [r.seq for r in got] == [26, 27, 28, 29]
    finally:
        await store.aclose()


async def test_readers_reuse_a_listing_only_while_the_directory_is_unchanged(
    tmp_path: Path,
) -> None:
    store = await filled(tmp_path, 40)
    other = RotationStore(tmp_path / "log", max_segment_bytes=1500)  # another writer
    roomy = RotationStore(tmp_path / "log", max_segment_bytes=1 << 20)  # one that never rotates
    layouts = store._read_layouts
    try:
        # a directory changed less than a second ago is listed again on every read (a change
        # in the same clock tick would leave its mtime equal)
        before = layouts.listings
        await store.read_all(limit=3)
        await store.read_all(limit=3)
        assert layouts.listings == before + 2
        # settled for longer than that: one listing serves every read
        past = time.time() - 10
        os.utime(tmp_path / "log", (past, past))
        await store.read_all(limit=3)
        settled = layouts.listings
        assert [r.seq for r in await store.read_all(limit=3)] == [38, 39, 40]
        assert layouts.listings == settled
        # appends into the active segment need no new listing to be seen
        await roomy.append(sample_records(1, start=40))
        assert [r.seq for r in await store.read_all(limit=2)] == [40, 41]
        assert layouts.listings == settled
        # another writer rotates: the directory changes and the new segment is read at once
        n_segments = len(segments(tmp_path / "log"))
        while len(segments(tmp_path / "log")) == n_segments:
            await other.append(sample_records(5, start=41))
        newest = (await other.read_all(limit=1))[0].seq
        assert [r.seq for r in await store.read_all(limit=1)] == [newest]
        assert layouts.listings == settled + 1
    finally:
        await roomy.aclose()
        await other.aclose()
        await store.aclose()


async def test_two_replays_of_the_same_bytes_give_the_same_records(tmp_path: Path) -> None:
    store = await filled(tmp_path, 50)
    try:
        one = [codec.encode(r) for r in await store.read_all()]
        two = [codec.encode(r) for r in await store.read_all()]
        assert one == two
        assert b"".join(one) == b"".join(p.read_bytes() for p in segments(store.directory))
    finally:
        await store.aclose()


# --------------------------------------------------------------------------- scan


async def test_a_missing_directory_is_store_not_found_and_first_append_creates_it(
    tmp_path: Path,
) -> None:
    store = RotationStore(tmp_path / "a" / "log")
    try:
        with pytest.raises(StoreNotFoundError):
            await store.scan()
        assert not await store.exists()
        await store.append(sample_records(1))
        assert await store.exists()
        assert stat.S_IMODE((tmp_path / "a" / "log").stat().st_mode) == 0o700
    finally:
        await store.aclose()


async def test_a_deleted_middle_segment_is_a_seq_gap_and_repair_explains_it(
    tmp_path: Path,
) -> None:
    store = await filled(tmp_path, 40)
    try:
        segs = segments(store.directory)
        missing = seqs_in(segs[2])
        segs[2].unlink()
        report = await store.scan()
        gaps = [a for a in report.anomalies if a.kind == "seq_gap"]
        assert len(gaps) == 1
        assert f"{missing[0]}..{missing[-1]}" in gaps[0].detail
        rec = await store.recover("repair")
        assert rec.clean
        physical = await store.read_all(include_gaps=True)
        gap = [r for r in physical if isinstance(r, GapRecord)]
        assert [(g.seq, g.through) for g in gap] == [(missing[0], missing[-1])]
        assert (store.directory / segment_name(missing[0])).exists()
        again = await store.recover("repair")
        assert again.actions == ()
        await store.append(sample_records(1))
        assert (await store.scan()).clean
    finally:
        await store.aclose()


async def test_a_foreign_file_is_a_warning_and_is_never_touched(tmp_path: Path) -> None:
    store = await filled(tmp_path, 10)
    try:
        stranger = store.directory / "README.txt"
        stranger.write_text("operator notes")
        report = await store.scan()
        assert report.clean
        assert [a.kind for a in report.anomalies] == ["foreign_file"]
        assert report.anomalies[0].severity == "warning"
        await store.recover("repair")
        await store.recover("quarantine", quarantine_dir=str(tmp_path / "q"))
        assert stranger.read_text() == "operator notes"
    finally:
        await store.aclose()


async def test_a_leftover_temp_file_is_orphaned_and_repair_deletes_it(tmp_path: Path) -> None:
    store = await filled(tmp_path, 10)
    try:
        tmp = store.directory / ".segment-00000000000000000001.ndjson.compact.999999.abcd.tmp"
        tmp.write_bytes(b"half a compaction")
        stray = store.directory / "segment-00000000000000000001.ndjson.lock"
        stray.write_bytes(b"")
        report = await store.scan()
        assert sorted(a.kind for a in report.errors) == ["orphaned_file", "orphaned_file"]
        await store.recover("repair")
        assert not tmp.exists()
        assert not stray.exists()
        assert (await store.scan()).clean
    finally:
        await store.aclose()


async def test_quarantine_moves_leftovers_and_keeps_removed_bytes(tmp_path: Path) -> None:
    store = await filled(tmp_path, 20)
    try:
        tmp = store.directory / ".segment-00000000000000000001.ndjson.repair.999999.ab.tmp"
        tmp.write_bytes(b"junk")
        seg = segments(store.directory)[1]
        data = seg.read_bytes()
        seg.write_bytes(data[:10] + b"X" + data[11:])
        qdir = tmp_path / "q"
        report = await store.recover("quarantine", quarantine_dir=str(qdir))
        assert report.clean
        names = sorted(p.name for p in qdir.iterdir())
        assert tmp.name in names
        side = [p for p in qdir.iterdir() if p.name.endswith(".bad.json")]
        assert side
        meta = json.loads(side[0].read_text())
        assert meta["source"] == str(seg)
        assert meta["kind"] == "checksum_mismatch"
    finally:
        await store.aclose()


async def test_a_quarantine_directory_inside_the_rotation_directory_is_refused(
    tmp_path: Path,
) -> None:
    store = await filled(tmp_path, 5)
    try:
        with pytest.raises(ConfigError):
            await store.recover("quarantine",
                                quarantine_dir=str(store.directory / "quarantine"))
        link = tmp_path / "qlink"
        link.symlink_to(tmp_path)
        with pytest.raises(ConfigError):
            await store.recover("quarantine", quarantine_dir=str(link))
    finally:
        await store.aclose()


async def test_a_torn_tail_in_a_sealed_segment_is_not_a_truncated_tail(tmp_path: Path) -> None:
    store = await filled(tmp_path, 30)
    try:
        seg = segments(store.directory)[0]
        data = seg.read_bytes()
        seg.write_bytes(data[:-20])
        report = await store.scan()
        kinds = {a.kind for a in report.errors}
        assert "truncated_tail" not in kinds
        assert kinds
        assert (await store.recover("repair")).clean
        physical = await store.read_all(include_gaps=True)
        expected = 1
        for r in physical:
            assert r.seq == expected
            expected = (r.through if isinstance(r, GapRecord) else r.seq or 0) + 1
    finally:
        await store.aclose()


async def test_a_torn_tail_of_the_active_segment_is_never_glued_to(tmp_path: Path) -> None:
    store = await filled(tmp_path, 15)
    await store.aclose()
    seg = segments(store.directory)[-1]
    data = seg.read_bytes()
    seg.write_bytes(data[:-15])
    report_store = RotationStore(tmp_path / "log", max_segment_bytes=1500)
    try:
        report = await report_store.scan()
        assert [a.kind for a in report.errors] == ["truncated_tail"]
        await report_store.append(sample_records(2))
        back = await report_store.read_all()
        # the torn record 15 never became valid: its seq is given to the next record
        assert [r.seq for r in back] == list(range(1, 17))
        kinds = [a.kind for a in (await report_store.scan()).errors]
        assert kinds == ["invalid_json"], "the torn bytes stay on a line of their own"
    finally:
        await report_store.aclose()


# --------------------------------------------------------------------------- compaction


async def test_compaction_rewrites_only_the_boundary_segment(tmp_path: Path) -> None:
    store = await filled(tmp_path, 60)
    try:
        before = {p.name: p.stat().st_ino for p in segments(store.directory)}
        report = await store.compact(RetentionPolicy(max_records=25))
        assert report.removed_records == 35
        after = {p.name: p.stat().st_ino for p in segments(store.directory)}
        first = segment_name(1)
        assert first in after
        untouched = [n for n in after if n != first]
        assert all(before[n] == after[n] for n in untouched)
        physical = await store.read_all(include_gaps=True, apply_retention=False)
        assert isinstance(physical[0], GapRecord)
        assert (physical[0].seq, physical[0].through) == (1, 35)
        assert [r.seq for r in physical[1:]] == list(range(36, 61))
        assert (await store.scan()).clean
        await store.append(sample_records(1))
        assert (await store.read_all(limit=1))[0].seq == 61
    finally:
        await store.aclose()


async def test_compaction_that_retires_everything_leaves_one_gap(tmp_path: Path) -> None:
    store = await filled(tmp_path, 30)
    try:
        await store.compact(RetentionPolicy(max_records=0))
        # (an empty segment reserved for the next rotation may follow: it holds no records)
        assert [p.name for p in segments(store.directory) if p.stat().st_size] == [
            segment_name(1)]
        physical = await store.read_all(include_gaps=True, apply_retention=False)
        assert len(physical) == 1
        assert isinstance(physical[0], GapRecord)
        assert physical[0].through == 30
        await store.append(sample_records(1))
        assert [r.seq for r in await store.read_all()] == [31]
        assert (await store.scan()).clean
    finally:
        await store.aclose()


async def test_a_superseded_segment_is_ignored_by_reads_and_removed_by_repair(
    tmp_path: Path,
) -> None:
    store = await filled(tmp_path, 60)
    try:
        keep = {p.name: p.read_bytes() for p in segments(store.directory)}
        await store.compact(RetentionPolicy(max_records=25))
        # put back the old segments a crash between replace and delete would leave
        for name, data in keep.items():
            p = store.directory / name
            if not p.exists() and int(name[8:28]) < 36:
                p.write_bytes(data)
        back = await store.read_all(apply_retention=False)
        assert [r.seq for r in back] == list(range(36, 61))
        report = await store.scan()
        assert {a.kind for a in report.errors} == {"orphaned_file"}
        await store.recover("repair")
        assert (await store.scan()).clean
        assert [r.seq for r in await store.read_all()] == list(range(36, 61))
    finally:
        await store.aclose()


# --------------------------------------------------------------------------- legacy


def _legacy_line(i: int) -> bytes:
    return json.dumps({"system_id": "s", "actor_address": f"s:{i}", "event_type": f"E{i:03d}",
                       "payload": {"i": i}, "timestamp": 1000.0 + i, "kind": "event"}).encode()


async def test_a_legacy_rotating_set_migrates_oldest_first(tmp_path: Path) -> None:
    base = tmp_path / "old" / "rot.ndjson"
    base.parent.mkdir()
    # 0.3.0: rot.ndjson.2 is the oldest, rot.ndjson the newest
    (base.parent / "rot.ndjson.2").write_bytes(b"\n".join(_legacy_line(i) for i in (0, 1)) + b"\n")
    (base.parent / "rot.ndjson.1").write_bytes(b"\n".join(_legacy_line(i) for i in (2, 3)) + b"\n")
    base.write_bytes(b"\n".join(_legacy_line(i) for i in (4, 5)) + b"\n")
    assert [p.name for p in legacy_set_files(base)] == ["rot.ndjson.2", "rot.ndjson.1",
                                                        "rot.ndjson"]
    store = RotationStore(tmp_path / "log", max_segment_bytes=600)
    try:
        assert await store.migrate_from(base) == 6
        back = await store.read_all()
        assert [r.event_type for r in back] == [f"E{i:03d}" for i in range(6)]  # type: ignore[union-attr]
        assert [r.seq for r in back] == list(range(1, 7))
        assert not any(r.legacy for r in back)  # type: ignore[union-attr]
        assert (await store.scan()).clean
        assert len(segments(store.directory)) > 1
    finally:
        await store.aclose()


async def test_the_plugin_opens_rotation_urls(tmp_path: Path) -> None:
    from papyra.plugin_manager import PluginManager

    pm = PluginManager()
    pm.load_entry_points()
    url = f"rotation://{tmp_path}/log?max_segment_bytes=700&max_segments=4"
    store = pm.open_store(url)
    try:
        assert isinstance(store, RotationStore)
        assert store.policy.max_segment_bytes == 700
        assert store.policy.max_segments == 4
        await store.append(sample_records(3))
        assert await store.exists()
    finally:
        await store.aclose()


@pytest.mark.parametrize("policy", ["always", "interval", "never"])
async def test_every_fsync_policy_rotates_and_reopens_with_contiguous_seqs(
    tmp_path: Path, policy: str
) -> None:
    store = await filled(tmp_path, 30, fsync=policy, fsync_interval_ms=5)
    await store.aclose()
    again = RotationStore(tmp_path / "log", max_segment_bytes=1500, fsync=policy)
    try:
        await again.append(sample_records(2))
        assert [r.seq for r in await again.read_all()] == list(range(1, 33))
        assert len(segments(again.directory)) > 2
        if policy == "always":
            assert again.metrics.fsyncs >= 1
    finally:
        await again.aclose()


async def test_torn_tail_fail_refuses_to_append_until_recovered(tmp_path: Path) -> None:
    store = await filled(tmp_path, 10)
    await store.aclose()
    seg = segments(store.directory)[-1]
    seg.write_bytes(seg.read_bytes()[:-9])
    strict = RotationStore(tmp_path / "log", max_segment_bytes=1500, torn_tail="fail")
    try:
        with pytest.raises(StoreUnavailableError, match="torn"):
            await strict.append(sample_records(1))
        assert (await strict.recover("repair")).clean
        stored = await strict.append(sample_records(1))
        assert stored[0].seq == 10
    finally:
        await strict.aclose()
