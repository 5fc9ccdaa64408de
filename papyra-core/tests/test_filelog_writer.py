"""papyra.filelog writer, lock and rewrite, used directly (as the rotation backend does)."""

from __future__ import annotations

import asyncio
import os
import stat
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from papyra.errors import LockTimeoutError, StoreUnhealthyError
from papyra.filelog.locking import LogLock, lock_path_for
from papyra.filelog.rewrite import Rewrite, leftovers
from papyra.filelog.writer import AppendFile, GroupCommitWriter, encode_body
from papyra.testing import sample_records


class CountingTarget:
    """A BatchTarget that records how batches were grouped."""

    def __init__(self, *, fail_fsync: bool = False) -> None:
        self.groups: list[int] = []
        self.next_seq = 1
        self.syncs = 0
        self.fail_fsync = fail_fsync
        self.gate = threading.Event()

    def write_batch(self, bodies: Sequence[bytes], *, fsync: bool) -> int:
        self.gate.wait(5)
        if fsync and self.fail_fsync:
            raise StoreUnhealthyError("fsync failed")
        self.groups.append(len(bodies))
        first = self.next_seq
        self.next_seq += len(bodies)
        return first

    def sync(self) -> None:
        self.syncs += 1

    def close(self) -> None:
        pass


def test_batches_queued_during_a_write_go_out_as_one_group() -> None:
    target = CountingTarget()
    writer = GroupCommitWriter(target)
    futures = [writer.submit([b"x"] * 3) for _ in range(50)]
    target.gate.set()
    firsts = [f.result(5) for f in futures]
    writer.close()
    assert firsts == [1 + 3 * i for i in range(50)]
    assert len(target.groups) < 50
    assert sum(target.groups) == 150


def test_a_failed_fsync_fails_the_group_and_every_later_submit() -> None:
    target = CountingTarget(fail_fsync=True)
    target.gate.set()
    writer = GroupCommitWriter(target)
    with pytest.raises(StoreUnhealthyError):
        writer.submit([b"x"]).result(5)
    with pytest.raises(StoreUnhealthyError):
        writer.submit([b"y"]).result(5)
    writer.close()


def test_asyncio_callers_get_their_seqs_and_a_cancelled_caller_harms_nobody() -> None:
    target = CountingTarget()
    writer = GroupCommitWriter(target)

    async def main() -> list[int]:
        tasks = [asyncio.create_task(writer.append([b"x"] * 2)) for _ in range(20)]
        await asyncio.sleep(0.05)  # all queued behind the closed gate
        tasks[3].cancel()  # its records are still written; only its caller stopped waiting
        target.gate.set()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(done[3], asyncio.CancelledError)
        later = await writer.append([b"y"])
        return [d for d in done if isinstance(d, int)] + [later]

    firsts = asyncio.run(main())
    assert firsts == [1 + 2 * i for i in range(20) if i != 3] + [41]
    assert writer.alive
    writer.close()


def test_an_asyncio_caller_of_a_broken_writer_fails_at_once() -> None:
    target = CountingTarget(fail_fsync=True)
    target.gate.set()
    writer = GroupCommitWriter(target)

    async def main() -> None:
        with pytest.raises(StoreUnhealthyError):
            await writer.append([b"x"])
        with pytest.raises(StoreUnhealthyError):
            await writer.append([b"y"])

    asyncio.run(main())
    writer.close()


def test_append_file_learns_seqs_written_by_another_writer(tmp_path: Path) -> None:
    path = tmp_path / "log.ndjson"
    a = AppendFile(path, LogLock(lock_path_for(path)))
    b = AppendFile(path, LogLock(lock_path_for(path)))
    bodies = [encode_body(r) for r in sample_records(3)]
    assert a.write_batch(bodies, fsync=True) == 1
    assert b.write_batch(bodies, fsync=False) == 4
    assert a.write_batch(bodies[:1], fsync=False) == 7
    assert a.foreign_appends == 1
    a.close()
    b.close()


def test_the_lock_excludes_a_second_holder_until_released(tmp_path: Path) -> None:
    path = tmp_path / "log.lock"
    first, second = LogLock(path), LogLock(path, timeout=0.05)
    first.acquire()
    with pytest.raises(LockTimeoutError):
        second.acquire()
    first.release()
    with second.held():
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first.close()
    second.close()


def test_a_rewrite_keeps_bytes_appended_during_it_and_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"a\nb\nc\n")
    os.chmod(path, 0o640)
    lock = LogLock(lock_path_for(path))
    rw = Rewrite(path, lock, purpose="compact")
    rw.write(b"B\n")
    rw.copy_range(4, 6)
    with open(path, "ab") as f:
        f.write(b"d\n")
    assert rw.commit() == 2
    assert path.read_bytes() == b"B\nc\nd\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert not leftovers(path)
    lock.close()


def test_an_abandoned_rewrite_leaves_no_temp_file_and_dead_ones_are_leftovers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"a\n")
    lock = LogLock(lock_path_for(path))
    with Rewrite(path, lock, purpose="repair") as rw:
        rw.write(b"x\n")
    assert path.read_bytes() == b"a\n"
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []
    dead = tmp_path / ".log.compact.999999.abcd.tmp"
    dead.write_bytes(b"")
    assert leftovers(path) == [dead]
    lock.close()
