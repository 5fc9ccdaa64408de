"""Appending: group commit on a dedicated writer thread, under the log lock.

Three layers, usable separately:

- :func:`encode_body` / :func:`sequence_line`: a record is encoded once, *without* its seq and
  crc, by the caller (so an unencodable or oversized record fails only its own append); the
  writer splices the seq in and frames the line (crc + newline) in one pass when the seq is
  known. The result is byte-identical to ``codec.encode(record, seq)``.
- :class:`AppendFile`: one log file opened ``O_APPEND`` by this process. Under the lock it
  checks that the path still names the file it has open (maintenance may have replaced it:
  reopen) and that the size is what it last wrote (another process appended: re-read the tail
  to learn the last seq), never glues a record onto a torn tail (a separating newline by
  default), writes the whole batch with one ``write`` (short writes looped, a failed partial
  write truncated back), and fsyncs when asked. A failed fsync marks it broken for good.
- :class:`GroupCommitWriter`: many concurrent submitters, one thread; everything queued while
  the previous batch was being written goes out as one write + one fsync (policy ``always``),
  or is fsynced at most every ``interval`` seconds (``interval``), or never (``never``). A
  submit's future resolves only when its records are durable per the policy; asyncio callers
  of one event loop are woken together, with one ``call_soon_threadsafe`` per group.

A segmented store implements the :class:`BatchTarget` protocol itself (rolling to a new segment
inside ``write_batch`` when the active one is full) and reuses :class:`GroupCommitWriter` and
:func:`sequence_line` unchanged; :class:`AppendFile` can serve as its active-segment file.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import os
import threading
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import attrs

from papyra import codec
from papyra.errors import RecordTooLargeError, StoreUnavailableError, StoreUnhealthyError
from papyra.filelog import framing
from papyra.filelog.fsio import file_identity, open_log, unavailable, write_all
from papyra.filelog.locking import LogLock
from papyra.records import Record, stamp

FSYNC_POLICIES = ("always", "interval", "never")
MAX_GROUP_BYTES = 16 << 20



# --------------------------------------------------------------------------- encoding


encode_body = codec.encode_body


def sequence_line(body: bytes, seq: int) -> bytes:
    """Splice ``seq`` into a body from :func:`encode_body` and frame it (crc + newline)."""
    line = b'{"v":1,"seq":%d,%s' % (seq, body[7:])
    return b'%s,"crc":"%08x"}\n' % (line[:-1], zlib.crc32(line))


def line_size(body: bytes, seq: int) -> int:
    """Bytes the framed line will take (for ``max_record_bytes`` checks and byte counts)."""
    return len(body) + len(str(seq)) + 25


def lines_size(bodies: Sequence[bytes], first: int) -> int:
    """Bytes the framed lines of ``bodies`` take when numbered from ``first`` on."""
    return sum(map(len, bodies)) + 25 * len(bodies) + digits_between(first, first + len(bodies))


def digits_between(lo: int, hi: int) -> int:
    """Total decimal digits of the integers ``lo`` .. ``hi - 1`` (both >= 1), in O(digits)."""
    total = 0
    width = len(str(lo))
    while lo < hi:
        top = min(hi, 10**width)
        total += (top - lo) * width
        lo, width = top, width + 1
    return total


_MAX_SEQ_DIGITS = 20


def encode_batch(
    records: Sequence[Record], max_record_bytes: int | None, where: object
) -> list[bytes]:
    """Bodies of ``records`` (:func:`encode_body`); a record over ``max_record_bytes`` (counted
    with the longest possible seq) fails the whole batch before anything is written."""
    bodies = codec.encode_bodies(records)
    if max_record_bytes is not None:
        limit = max_record_bytes - 25 - _MAX_SEQ_DIGITS
        for body in bodies:
            if len(body) > limit:
                raise RecordTooLargeError(
                    f"record of about {len(body) + 25 + _MAX_SEQ_DIGITS} bytes exceeds "
                    f"max_record_bytes={max_record_bytes} of {where}; nothing was written")
    return bodies


def stamp_batch(
    records: Sequence[Record], bodies: Sequence[bytes], first: int
) -> tuple[list[Record], Counter[str]]:
    """What an append returns: the records numbered from ``first``, and bytes written per kind."""
    stored = [stamp(rec, first + i) for i, rec in enumerate(records)]
    sizes: Counter[str] = Counter()
    kind = records[0].kind
    if all(r.kind == kind for r in records):
        sizes[kind] = lines_size(bodies, first)
    else:
        for i, (rec, body) in enumerate(zip(records, bodies, strict=True)):
            sizes[rec.kind] += line_size(body, first + i)
    return stored, sizes


# --------------------------------------------------------------------------- one file


class BatchTarget(Protocol):
    """Where a :class:`GroupCommitWriter` writes. ``write_batch`` returns the first seq."""

    def write_batch(self, bodies: Sequence[bytes], *, fsync: bool) -> int: ...

    def sync(self) -> None: ...

    def close(self) -> None: ...


class FsyncFailedError(StoreUnhealthyError):
    """fsync failed: the data may not be on disk and the kernel may not say so again."""


class AppendFile:
    """One log file, appended to by this process under the shared lock (see module doc)."""

    def __init__(self, path: Path, lock: LogLock, *, torn_tail: str = "newline") -> None:
        if torn_tail not in ("newline", "fail"):
            raise ValueError("torn_tail must be 'newline' or 'fail'")
        self.path = path
        self.lock = lock
        self.torn_tail = torn_tail
        self.fd: int | None = None
        self.identity: tuple[int, int] | None = None
        self.known_end = -1
        self.last_seq = 0
        self.broken: str | None = None
        self.fsyncs = 0
        self.reopens = 0
        self.foreign_appends = 0

    def _reopen(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self.fd = open_log(self.path)
        self.identity = file_identity(os.fstat(self.fd))
        self.known_end = -1
        self.reopens += 1

    def _sync_state(self) -> tuple[int, bool]:
        """Under the lock: the current end of the file and whether it ends with a newline."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise unavailable(self.path, exc, "stat log") from None
        if self.fd is None or st is None or file_identity(st) != self.identity:
            self._reopen()
            assert self.fd is not None
            st = os.fstat(self.fd)
        assert self.fd is not None
        size = st.st_size
        if size != self.known_end:
            if self.known_end >= 0:
                self.foreign_appends += 1
            try:
                self.last_seq, _valid_end, terminated = framing.last_sequenced(self.fd_read(),
                                                                               size)
            finally:
                self._close_reader()
            return size, terminated
        return size, True

    _reader: int | None = None

    def fd_read(self) -> int:
        if self._reader is None:
            self._reader = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        return self._reader

    def _close_reader(self) -> None:
        if self._reader is not None:
            os.close(self._reader)
            self._reader = None

    def write_batch(self, bodies: Sequence[bytes], *, fsync: bool) -> int:
        if self.broken is not None:
            raise StoreUnhealthyError(self.broken)
        with self.lock.held():
            start, terminated = self._sync_state()
            assert self.fd is not None
            seq = self.last_seq + 1
            parts = [sequence_line(b, seq + i) for i, b in enumerate(bodies)]
            if not terminated:
                if self.torn_tail == "fail":
                    raise StoreUnavailableError(
                        f"{self.path} ends with a torn record; run `papyra persistence recover` "
                        "(or start with startup mode recover)"
                    )
                parts.insert(0, b"\n")
            data = b"".join(parts)
            try:
                write_all(self.fd, data)
            except OSError as exc:
                self._undo(start, exc)
                raise unavailable(self.path, exc, "append to") from None
            self.known_end = start + len(data)
            self.last_seq = seq + len(bodies) - 1
            if fsync:
                self._fsync()
        return seq

    def _undo(self, start: int, exc: OSError) -> None:
        """A write failed part-way: cut the file back to where the batch began."""
        assert self.fd is not None
        try:
            os.ftruncate(self.fd, start)
            self.known_end = start
        except OSError as texc:
            self.broken = (f"cannot undo a partial write to {self.path} "
                           f"({os.strerror(exc.errno or errno.EIO)}; truncate failed: "
                           f"{os.strerror(texc.errno or errno.EIO)}); run recover")
            self.known_end = -1

    def _fsync(self) -> None:
        assert self.fd is not None
        try:
            os.fsync(self.fd)
        except OSError as exc:
            self.broken = (f"fsync of {self.path} failed ({os.strerror(exc.errno or errno.EIO)}); "
                           "records since the last successful fsync may be lost")
            raise FsyncFailedError(self.broken) from None
        self.fsyncs += 1

    def sync(self) -> None:
        if self.broken is not None:
            raise StoreUnhealthyError(self.broken)
        if self.fd is not None:
            self._fsync()

    def close(self) -> None:
        self._close_reader()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self.lock.close()


# --------------------------------------------------------------------------- group commit


@attrs.define
class _Item:
    bodies: Sequence[bytes]
    future: concurrent.futures.Future[int] | asyncio.Future[int]
    loop: asyncio.AbstractEventLoop | None = None
    """Set for an asyncio future: it is resolved on its loop, one wake-up per group."""


_Outcome = tuple[_Item, int | BaseException]


def _resolve(pairs: list[tuple[asyncio.Future[int], int | BaseException]]) -> None:
    """On the event loop: settle the asyncio futures of one group (cancelled ones skipped)."""
    for fut, outcome in pairs:
        if fut.done():
            continue
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)


def _settle(outcomes: list[_Outcome]) -> None:
    """Hand each item its first seq or its exception: thread futures directly, asyncio futures
    with one ``call_soon_threadsafe`` per loop (not one self-pipe wake-up per caller)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[int],
                                                        int | BaseException]]] = {}
    for item, outcome in outcomes:
        if item.loop is not None:
            by_loop.setdefault(item.loop, []).append((item.future, outcome))  # type: ignore[arg-type]
            continue
        fut = item.future
        if fut.done():
            continue
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)
    for loop, pairs in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop was closed: nobody is waiting
            loop.call_soon_threadsafe(_resolve, pairs)


class GroupCommitWriter:
    """One thread writes everything submitted; see the module docstring for the policies."""

    def __init__(
        self, target: BatchTarget, *, policy: str = "always", interval: float = 1.0,
        name: str = "papyra-writer",
    ) -> None:
        if policy not in FSYNC_POLICIES:
            raise ValueError(f"fsync policy must be one of {', '.join(FSYNC_POLICIES)}")
        self.target = target
        self.policy = policy
        self.interval = interval
        self.name = name
        self.broken: str | None = None
        self._queue: list[_Item] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._dirty = False
        self._last_sync = time.monotonic()
        self.groups = 0

    def _enqueue(self, item: _Item) -> BaseException | None:
        """Queue ``item`` for the writer thread, or say why it cannot be written."""
        with self._cond:
            if self.broken is not None:
                return StoreUnhealthyError(self.broken)
            if self._closing:
                return StoreUnavailableError("the writer is closed")
            self._queue.append(item)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self._cond.notify()
        return None

    def submit(self, bodies: Sequence[bytes]) -> concurrent.futures.Future[int]:
        """Queue one batch; the future gives its first seq once durable per the policy."""
        fut: concurrent.futures.Future[int] = concurrent.futures.Future()
        refused = self._enqueue(_Item(bodies, fut))
        if refused is not None:
            fut.set_exception(refused)
        return fut

    async def append(self, bodies: Sequence[bytes]) -> int:
        """``submit`` for asyncio callers (the event loop never blocks on I/O)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()
        refused = self._enqueue(_Item(bodies, fut, loop))
        if refused is not None:
            raise refused
        return await fut

    def _take(self) -> list[_Item]:
        taken: list[_Item] = []
        size = 0
        for item in self._queue:
            if taken and size >= MAX_GROUP_BYTES:
                break
            taken.append(item)
            size += sum(map(len, item.bodies))
        del self._queue[: len(taken)]
        return taken

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    if self.policy == "interval" and self._dirty:
                        wait = self.interval - (time.monotonic() - self._last_sync)
                        if wait <= 0:
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                items = self._take()
                closing = self._closing and not self._queue
            if items:
                self._commit(items)
            if self.policy == "interval" and self._dirty and (
                closing or time.monotonic() - self._last_sync >= self.interval
            ):
                self._periodic_sync()
            if closing and not items:
                return

    def _commit(self, items: list[_Item]) -> None:
        bodies: list[bytes] = []
        for item in items:
            bodies.extend(item.bodies)
        if not bodies:
            _settle([(item, 0) for item in items])
            return
        try:
            first = self.target.write_batch(bodies, fsync=self.policy == "always")
        except BaseException as exc:
            if isinstance(exc, StoreUnhealthyError):
                self._break(str(exc))
            _settle([(item, exc) for item in items])
            return
        self.groups += 1
        self._dirty = self.policy == "interval"
        outcomes: list[_Outcome] = []
        seq = first
        for item in items:
            outcomes.append((item, seq))
            seq += len(item.bodies)
        _settle(outcomes)

    def _periodic_sync(self) -> None:
        try:
            self.target.sync()
        except StoreUnhealthyError as exc:
            self._break(str(exc))
        except OSError as exc:
            self._break(f"fsync failed: {exc}")
        self._dirty = False
        self._last_sync = time.monotonic()

    def _break(self, reason: str) -> None:
        with self._cond:
            self.broken = reason
            pending, self._queue = self._queue, []
        _settle([(item, StoreUnhealthyError(reason)) for item in pending])

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until everything submitted so far is written (and synced per policy)."""
        fut = self.submit([])
        with contextlib.suppress(StoreUnavailableError):
            fut.result(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write everything pending, fsync under ``interval``, stop the thread. Idempotent."""
        with self._cond:
            self._closing = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self.target.close()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


def write_error_is_fatal(exc: BaseException) -> bool:
    """Whether an append failure leaves the store unusable (vs. a failure of that batch only)."""
    return isinstance(exc, StoreUnhealthyError)


__all__ = [
    "FSYNC_POLICIES",
    "AppendFile",
    "BatchTarget",
    "FsyncFailedError",
    "GroupCommitWriter",
    "digits_between",
    "encode_batch",
    "encode_body",
    "line_size",
    "lines_size",
    "sequence_line",
    "stamp",
    "stamp_batch",
    "write_error_is_fatal",
]

