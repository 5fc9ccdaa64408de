"""Real-process fault tests of the rotation backend: SIGKILL at named points of rotation, the
disk bound and compaction; deleted segments, strangers and leftovers; copies of a directory
taken while a writer is rotating; a long run under a disk bound."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from papyra.errors import StoreUnavailableError
from papyra.records import GapRecord, StoredRecord
from papyra.retention import RetentionPolicy
from papyra.testing import sample_records
from papyra_backend_rotation import RotationStore

CHILD = textwrap.dedent("""
    import asyncio, json, sys
    from papyra.records import EventRecord
    from papyra.retention import RetentionPolicy
    from papyra_backend_rotation import RotationStore

    def sample_records(n, start, pad=40):
        return [EventRecord(system_id="s", actor_address=f"s:{i}", event_type="Tick",
                            payload={"i": i, "pad": "x" * pad}) for i in range(start, start + n)]

    async def main(directory, action, n, options):
        big_every = options.pop("big_every", 0)  # a large record now and then: rotations
        store = RotationStore(directory, **options)  # earlier than the reserved segment
        if action == "append":
            for i in range(0, n, 3):
                big = big_every and i // 3 % big_every == big_every - 1
                stored = await store.append(sample_records(3, start=i, pad=500 if big else 40))
                print(stored[-1].seq, flush=True)
        elif action == "compact":
            await store.compact(RetentionPolicy(max_records=n))
            print("compacted", flush=True)
        elif action == "recover":
            await store.recover(n)
            print("recovered", flush=True)
        await store.aclose()

    asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])))
""")

OPTIONS = {"max_segment_bytes": 1200, "max_segments": 4, "fsync": "never"}


def run_child(directory: Path, action: str, arg: object, *, crash: str | None = None,
              options: dict[str, object] | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("PAPYRA_TEST_CRASHPOINT", None)
    if crash:
        env["PAPYRA_TEST_CRASHPOINT"] = crash
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(directory), action, json.dumps(arg),
         json.dumps(options or OPTIONS)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )


async def fill(directory: Path, n: int, options: dict[str, object]) -> None:
    """Append ``n`` records in batches of three, in this process."""
    store = RotationStore(directory, **options)  # type: ignore[arg-type]
    try:
        for i in range(0, n, 3):
            await store.append(sample_records(3, start=i))
    finally:
        await store.aclose()


async def physical(directory: Path) -> list[StoredRecord]:
    store = RotationStore(directory)
    try:
        return await store.read_all(include_gaps=True, apply_retention=False)
    finally:
        await store.aclose()


def assert_explainable(records: list[StoredRecord]) -> None:
    """No duplicate seq or id; seqs contiguous (gap records stand for missing ones)."""
    ids = [r.id for r in records]
    assert len(ids) == len(set(ids)), "a record appears twice"
    if not records:
        return
    expected = records[0].seq
    for r in records:
        assert r.seq == expected, f"seq {r.seq} where {expected} was expected"
        expected = (r.through if isinstance(r, GapRecord) else r.seq or 0) + 1


async def recover_clean(directory: Path) -> list[StoredRecord]:
    store = RotationStore(directory)
    try:
        report = await store.recover("repair")
        assert report.clean, [a.describe() for a in (report.after or report.before).anomalies]
        again = await store.recover("repair")
        assert again.actions == ()
    finally:
        await store.aclose()
    records = await physical(directory)
    assert_explainable(records)
    return records


# --------------------------------------------------------------------------- crash points

ROTATION_POINTS = [
    "rotation.before_create", "rotation.after_create", "rotation.after_dir_fsync",
    "retention.before_delete", "retention.after_delete", "append.mid_write",
    "append.after_write", "reservation.after_create", "reservation.after_dir_fsync",
    "rotation.into_reservation",
]


CRASH_AT = {"rotation.before_create": 4, "rotation.after_create": 4,
            "rotation.after_dir_fsync": 4, "append.mid_write": 7, "append.after_write": 7,
            "reservation.after_create": 5, "reservation.after_dir_fsync": 5,
            "rotation.into_reservation": 5}


# segments of a few batches, so that rotations go both ways: into a reserved segment and, when
# a large record arrives, the ordinary create
CRASH_OPTIONS = {**OPTIONS, "max_segment_bytes": 3000, "big_every": 5}


@pytest.mark.parametrize("point", ROTATION_POINTS)
async def test_a_writer_killed_at_each_step_of_rotation_leaves_a_recoverable_log(
    tmp_path: Path, point: str
) -> None:
    directory = tmp_path / "log"
    # after the first rotation, rotations go into reserved segments: the ordinary create
    # path is taken by the first one (and by any that a larger record forces early)
    crash = f"{point}:{CRASH_AT.get(point, 1)}"
    result = await asyncio.to_thread(run_child, directory, "append", 300, crash=crash,
                                     options=CRASH_OPTIONS)
    assert result.returncode == -signal.SIGKILL, result.stderr
    acked = [int(x) for x in result.stdout.split()]
    records = await recover_clean(directory)
    data = [r.seq for r in records if not isinstance(r, GapRecord)]
    if acked:
        assert data[-1] >= acked[-1], "an acknowledged record was lost"
    # a writer carries on where the log ends
    store = RotationStore(directory, **OPTIONS)  # type: ignore[arg-type]
    try:
        await store.append(sample_records(6))
        assert_explainable(await store.read_all(include_gaps=True, apply_retention=False))
        assert (await store.scan()).clean
    finally:
        await store.aclose()


COMPACTION_POINTS = [
    "compaction.after_copy", "compaction.before_replace", "compaction.after_replace",
    "compaction.after_delete",
]


@pytest.mark.parametrize("point", COMPACTION_POINTS)
async def test_compaction_killed_at_any_step_leaves_the_old_or_the_new_log(
    tmp_path: Path, point: str
) -> None:
    directory = tmp_path / "log"
    options = {"max_segment_bytes": 1200, "fsync": "never"}
    await fill(directory, 60, options)
    old = [r.id for r in await physical(directory)]
    assert len(old) == 60
    result = await asyncio.to_thread(run_child, directory, "compact", 25, crash=point,
                                     options=options)
    assert result.returncode == -signal.SIGKILL, result.stderr
    # before any repair: reads see exactly the old or exactly the new content
    now = await physical(directory)
    assert_explainable(now)
    data = [r.id for r in now if not isinstance(r, GapRecord)]
    assert data in (old, old[-25:]), "the log is neither the old nor the compacted one"
    if data == old[-25:]:
        assert isinstance(now[0], GapRecord)
        assert (now[0].seq, now[0].through) == (1, 35)
    records = await recover_clean(directory)
    assert [r.id for r in records if not isinstance(r, GapRecord)] == data


# --------------------------------------------------------------------------- damage


async def test_a_deleted_middle_segment_is_reported_and_repaired_in_a_subprocess(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "log"
    opts = {"max_segment_bytes": 1200, "fsync": "never"}
    await fill(directory, 60, opts)
    segs = sorted(directory.glob("segment-*.ndjson"))
    segs[2].unlink()
    store = RotationStore(directory)
    try:
        report = await store.scan()
        assert [a.kind for a in report.errors] == ["seq_gap"]
    finally:
        await store.aclose()
    result = await asyncio.to_thread(run_child, directory, "recover", "repair", options=opts)
    assert result.returncode == 0, result.stderr
    records = await physical(directory)
    assert_explainable(records)
    assert sum(isinstance(r, GapRecord) for r in records) == 1


async def test_foreign_files_and_leftover_temp_files_after_a_crash(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    await fill(directory, 60, {"max_segment_bytes": 1200, "fsync": "never"})
    result = await asyncio.to_thread(run_child, directory, "compact", 10,
                                     crash="compaction.after_copy")
    assert result.returncode == -signal.SIGKILL
    (directory / "backup.tar").write_bytes(b"operator's file")
    store = RotationStore(directory)
    try:
        report = await store.scan()
        kinds = sorted(a.kind for a in report.anomalies)
        assert kinds == ["foreign_file", "orphaned_file"]
        await store.recover("repair")
        after = await store.scan()
        assert after.clean
        assert [a.kind for a in after.anomalies] == ["foreign_file"]
        assert (directory / "backup.tar").read_bytes() == b"operator's file"
        assert not list(directory.glob("*.tmp"))
    finally:
        await store.aclose()


# --------------------------------------------------------------------------- live copies


async def test_copies_taken_while_writing_rotating_and_compacting_recover_cleanly(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "log"
    opts = {"max_segment_bytes": 900, "max_segments": 6, "fsync": "never"}
    writer = spawn(directory, 1500, opts)
    copies: list[Path] = []
    try:
        await asyncio.to_thread(_wait_for, directory)
        compactor = RotationStore(directory)
        try:
            for n in range(6):
                target = tmp_path / f"copy{n}"
                await asyncio.to_thread(_copy_dir, directory, target)
                copies.append(target)
                if n % 3 == 1:
                    # a concurrent disk-bound deletion makes compaction refuse (and change
                    # nothing): that is fine here, the copies are what is tested
                    with contextlib.suppress(StoreUnavailableError):
                        await compactor.compact(RetentionPolicy(max_records=40))
                await asyncio.sleep(0.02)
        finally:
            await compactor.aclose()
    finally:
        writer.wait(timeout=120)
    assert writer.returncode == 0, writer.stderr.read() if writer.stderr else ""
    for copy in copies:
        records = await recover_clean(copy)
        assert records, f"{copy} recovered to nothing"
    # the live directory itself: nothing lost or repeated by the compactions
    live = await physical(directory)
    assert_explainable(live)
    assert live[-1].seq == 1500
    store = RotationStore(directory)
    try:
        assert (await store.scan()).clean
    finally:
        await store.aclose()


def spawn(directory: Path, n: int, opts: dict[str, object]) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.pop("PAPYRA_TEST_CRASHPOINT", None)
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(directory), "append", str(n), json.dumps(opts)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def _wait_for(directory: Path) -> None:
    """Until the writer has written its first records."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if _segment_bytes(directory) > 0:
            return
        time.sleep(0.01)


def _copy_dir(src: Path, dst: Path) -> None:
    """Copy file by file, like a backup tool, tolerating files that vanish meanwhile."""
    dst.mkdir()
    for name in sorted(os.listdir(src)):
        try:
            shutil.copyfile(src / name, dst / name)
        except FileNotFoundError:
            continue


# --------------------------------------------------------------------------- long run


async def test_disk_use_stays_under_the_bound_during_a_long_run(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    bound = 6000
    opts = {"max_segment_bytes": 1500, "max_total_bytes": bound, "fsync": "never"}
    writer = spawn(directory, 2000, opts)
    peak = 0
    while writer.poll() is None:
        peak = max(peak, await asyncio.to_thread(_segment_bytes, directory))
        await asyncio.sleep(0.005)
    assert writer.returncode == 0
    peak = max(peak, _segment_bytes(directory))
    assert 0 < peak <= bound
    store = RotationStore(directory)
    try:
        report = await store.scan()
        assert report.clean
        assert report.last_seq == 2001
        assert report.first_seq is not None
        assert report.first_seq > 1
    finally:
        await store.aclose()
    assert_explainable(await physical(directory))


def _segment_bytes(directory: Path) -> int:
    total = 0
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return 0
    for name in names:
        if name.startswith("segment-"):
            try:
                total += os.stat(directory / name).st_size
            except FileNotFoundError:
                continue
    return total


async def test_recovery_in_a_subprocess_is_convergent_after_a_kill(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    opts = {"max_segment_bytes": 1200, "fsync": "never"}
    await fill(directory, 60, opts)
    segs = sorted(directory.glob("segment-*.ndjson"))
    for seg in segs[1:3]:
        data = bytearray(seg.read_bytes())
        data[40] ^= 0x01
        seg.write_bytes(bytes(data))
    segs[4].unlink()
    result = await asyncio.to_thread(run_child, directory, "recover", "repair",
                                     crash="repair.after_rewrite", options=opts)
    assert result.returncode == -signal.SIGKILL
    records = await recover_clean(directory)
    assert records[-1].seq == 60
    assert sample_records(1)  # the sample generator is importable in children too


# --------------------------------------------------------------------------- many writers


async def test_concurrent_writer_processes_rotating_one_directory_lose_and_repeat_nothing(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "log"
    opts = {"max_segment_bytes": 800, "fsync": "never"}
    writers = [spawn(directory, 150, opts) for _ in range(3)]
    for w in writers:
        await asyncio.to_thread(w.wait, 120)
        assert w.returncode == 0, w.stderr.read() if w.stderr else ""
    records = await physical(directory)
    assert_explainable(records)
    assert [r.seq for r in records] == list(range(1, 3 * 150 + 1))
    assert len({r.id for r in records}) == 450
    store = RotationStore(directory)
    try:
        assert (await store.scan()).clean
    finally:
        await store.aclose()
    assert len(list(directory.glob("segment-*.ndjson"))) > 10
