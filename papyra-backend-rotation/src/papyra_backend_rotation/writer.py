"""The segment writer: the :class:`~papyra.filelog.writer.BatchTarget` behind the group-commit
thread. It appends to the active segment, rolls to a new segment when the policy says so and
applies the disk bound at each rotation.

Under the directory lock, before every batch, it checks (a few ``stat`` calls) whether another
process appended to the active segment (it learns the last seq from the tail), rotated (the next
segment exists), or whether maintenance replaced or deleted the active segment (it reloads).

Rotation: the active segment is fsynced (unless the policy is ``never``), the next segment is
created with ``O_CREAT|O_EXCL`` (0600) and the directory fsynced before its first record is
acknowledged. Then whole oldest sealed segments are deleted while the disk bound is exceeded
(their directory fsync runs in the background: a deletion that a crash undoes brings back
records, it loses none, and the next rotation deletes them again).

Reservation (what keeps rotations off the append latency): creating a file and fsyncing its
directory costs a journal commit of its own, about twice an append's. So once the active
segment is within :data:`RESERVE_LEAD_BYTES` (or eight batches) of ``max_segment_bytes``, the
writer decides where the next segment starts -- the seq after the records that surely still
fit, by the largest average record size of recent batches -- creates that segment empty and
fsyncs the directory in a background thread while appends go on into the active segment. When
the log reaches that seq it rotates into the reserved segment: no create, no directory fsync
on the append path. If records turn out larger and the policy rotates earlier (or by age), the
reservation is deleted and the rotation takes the ordinary path. An empty last segment further
ahead than the next seq is a reservation to everyone (see :mod:`.segments`): a writer that
finds one, after a crash or from another process, adopts it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import attrs
from papyra.errors import PapyraError, StoreUnavailableError, StoreUnhealthyError
from papyra.filelog import framing
from papyra.filelog.fsio import (
    FILE_MODE,
    ensure_dir,
    file_identity,
    fsync_dir,
    unavailable,
    write_all,
)
from papyra.filelog.locking import LogLock
from papyra.filelog.writer import FsyncFailedError, sequence_line

from papyra_backend_rotation.crashpoints import armed, crashpoint
from papyra_backend_rotation.layout import list_directory, segment_name
from papyra_backend_rotation.policy import RotationPolicy
from papyra_backend_rotation.segments import RACY_NS, TailCache, resolve

RESERVE_LEAD_BYTES = 64 * 1024
"""Reserve the next segment once the active one has at most this much room left (or eight
batches' worth, if that is more)."""


@attrs.define(kw_only=True)
class Reservation:
    """An empty segment created ahead of the rotation into it."""

    seq: int
    path: Path
    fd: int | None
    """Ours (created by this writer), or None for one adopted from the directory."""
    synced: Future[None] | None = None
    """The background fsync of the directory after we created it (None when adopted)."""


class SegmentWriter:
    """Appends batches to the active segment of ``directory`` (see module doc)."""

    def __init__(
        self, directory: Path, lock: LogLock, policy: RotationPolicy, tails: TailCache, *,
        seal_fsync: bool = True,
        torn_tail: str = "newline",
        on_fsync: Callable[[], None] | None = None,
        on_retention_drop: Callable[[int], None] | None = None,
    ) -> None:
        self.directory = directory
        self.lock = lock
        self.policy = policy
        self.tails = tails
        self.seal_fsync = seal_fsync
        self.torn_tail = torn_tail
        self.on_fsync = on_fsync
        self.on_retention_drop = on_retention_drop
        self.path: Path | None = None
        self.fd: int | None = None
        self.identity: tuple[int, int] | None = None
        self.known_end = 0
        self.last_seq = 0
        self.first_timestamp: float | None = None
        self._first_ts_known = False
        self.torn = False
        self.dirty = False
        """Bytes were written to the active segment since its last fsync."""
        self.broken: str | None = None
        self.rotations = 0
        self.deleted_segments = 0
        self._sealed: list[tuple[int, bool]] = []
        """(fd, written since its last fsync) of segments sealed by the current batch."""
        self._dir_dirty = False
        self._dir_seen = (0, 0)
        """(directory mtime, when we looked) after our last listing or our own change."""
        self.reservation: Reservation | None = None
        self.reservations_used = 0
        self._batch_bytes = 0
        self._line_hint = 0
        """Largest average record size of the batches in the active segment (and below, of
        the one before): how many more records surely fit, for the reservation."""
        self._prev_line_hint = 0
        self._pool: ThreadPoolExecutor | None = None
        self._background: Future[None] | None = None
        """The last background directory fsync (after a reservation or the disk bound)."""

    # ------------------------------------------------------------------ state

    def _close_fd(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def reset(self) -> None:
        """Forget what we know (maintenance in this process changed the directory)."""
        self._close_fd()
        self._forget_reservation()
        self.path = None
        self.identity = None

    def _load(self) -> None:
        """Find the active segment and the last seq from the directory itself."""
        self._close_fd()
        ensure_dir(self.directory)
        self._note_dir()
        layout = resolve(list_directory(self.directory), self.tails)
        self.path = None
        self.identity = None
        self.known_end = 0
        self.torn = False
        self.first_timestamp = None
        self._first_ts_known = False
        # a segment another process created may not be durable yet (it may have crashed
        # before its directory fsync): the first batch after a load fsyncs the directory
        self._dir_dirty = True
        self._adopt(layout.reserved.path if layout.reserved is not None else None,
                    layout.reserved.first_seq if layout.reserved is not None else 0)
        if not layout.live:
            self.last_seq = 0
            return
        active = layout.live[-1]
        prev_last = max((s.last_seq or 0 for s in layout.live[:-1]), default=0)
        try:
            fd = os.open(active.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError as exc:
            raise unavailable(active.path, exc, "open segment") from None
        self.fd = fd
        self.path = active.path
        st = os.fstat(fd)
        self.identity = file_identity(st)
        self.dirty = True  # another process may not have fsynced what it wrote
        self._learn_tail(st.st_size, floor=max(prev_last, active.first_seq - 1))

    def _learn_tail(self, size: int, *, floor: int) -> None:
        assert self.path is not None
        rfd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            last, _end, terminated = framing.last_sequenced(rfd, size)
        finally:
            os.close(rfd)
        self.last_seq = max(last, floor)
        self.known_end = size
        self.torn = not terminated

    def _sync(self) -> None:
        """Under the lock: make our view of the active segment and the last seq current."""
        bg = self._background
        if bg is not None and bg.done():
            self._background = None
            if bg.exception() is not None:
                self._dir_dirty = True  # fsync the directory in line (and report if it fails)
        if self.path is None or self.fd is None:
            self._load()
            return
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._load()  # deleted by compaction, repair or another writer's disk bound
            return
        except OSError as exc:
            raise unavailable(self.path, exc, "stat segment") from None
        if file_identity(st) != self.identity:
            self._load()  # replaced by compaction or repair
            return
        if st.st_size != self.known_end:
            if self._dir_changed():
                self._load()  # another process appended and changed the directory (reserved?)
                return
            self._learn_tail(st.st_size, floor=self.last_seq)
        res = self.reservation
        if res is not None and res.seq <= self.last_seq + 1:
            if res.seq <= self.last_seq or not self._still_empty(res):
                # overtaken by a writer that did not know of it, or taken by one that did
                self.reservation = None
                self._discard(res)
            else:
                return  # due: the next record rotates into it
        if os.path.lexists(self.directory / segment_name(self.last_seq + 1)):
            self._load()  # another process rotated

    def _note_dir(self) -> None:
        """Remember the directory's mtime (after our own change, or before a listing)."""
        with contextlib.suppress(OSError):
            self._dir_seen = (os.stat(self.directory).st_mtime_ns, time.time_ns())

    def _dir_changed(self) -> bool:
        """Whether the directory may have changed since we last looked (a coarse mtime is
        trusted only when we looked well after it, as in :class:`~.segments.ReadLayouts`)."""
        mtime, seen_at = self._dir_seen
        try:
            now_mtime = os.stat(self.directory).st_mtime_ns
        except OSError:
            return True
        return now_mtime != mtime or seen_at - mtime < RACY_NS

    def _active_first_timestamp(self) -> float | None:
        if self._first_ts_known or self.policy.max_segment_age_seconds is None:
            return self.first_timestamp
        self._first_ts_known = True
        if self.path is not None and self.known_end:
            rfd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                for _off, _n, line, _t in framing.iter_lines(rfd, 0, min(self.known_end, 1 << 16)):
                    if isinstance(line, bytes) and line:
                        head = framing.quick_header(line)
                        if head is not None:
                            self.first_timestamp = head[2]
                        break
            finally:
                os.close(rfd)
        return self.first_timestamp

    # ------------------------------------------------------------------ writing

    def write_batch(self, bodies: Sequence[bytes], *, fsync: bool) -> int:
        if self.broken is not None:
            raise StoreUnhealthyError(self.broken)
        with self.lock.held():
            rotations = self.rotations
            try:
                first = self._write_batch(bodies, fsync=fsync)
            finally:
                self._finish_rotations(fsync=fsync)
            if self.rotations == rotations:  # a batch that rotated has had its share of work
                self._maybe_reserve()
            return first

    def _maybe_reserve(self) -> None:
        """After a batch, under the lock: reserve the next segment if the active one is
        nearly full. Never raises: the batch is written, and without a reservation the next
        rotation simply takes the ordinary path."""
        if self.reservation is not None or self.path is None or self.known_end == 0:
            return
        room = self.policy.max_segment_bytes - self.known_end
        if room > max(RESERVE_LEAD_BYTES, 8 * self._batch_bytes):
            return
        with contextlib.suppress(OSError):
            self._reserve()

    def _write_batch(self, bodies: Sequence[bytes], *, fsync: bool) -> int:
        self._sync()
        first = self.last_seq + 1
        lines = [sequence_line(b, first + i) for i, b in enumerate(bodies)]
        now = time.time()
        size = sum(map(len, lines))
        self._batch_bytes = size
        self._line_hint = max(self._line_hint, -(-size // len(lines)))
        res = self.reservation
        due = res.seq if res is not None else 0
        if (not due or first + len(lines) <= due) and self._fits(size, now):
            # the common case: the whole batch goes into the active segment
            self._write(lines, fsync=fsync)
            return first
        pending: list[bytes] = []
        pending_size = 0
        for i, line in enumerate(lines):
            if self.path is None:
                self._rotate(first + i, seal=False)
            elif first + i == due or self.policy.should_rotate(
                active_size=self.known_end + pending_size, incoming=len(line),
                active_first_timestamp=self._active_first_timestamp(), now=now,
            ):
                if pending:
                    self._write(pending, fsync=False)  # fsynced with the batch, below
                    pending, pending_size = [], 0
                self._rotate(first + i, seal=True)
            if self.known_end + pending_size == 0 and not self._first_ts_known:
                self.first_timestamp = now  # the segment's age counts from its first write
                self._first_ts_known = True
            pending.append(line)
            pending_size += len(line)
        if pending:
            self._write(pending, fsync=fsync)
        return first

    def _fits(self, size: int, now: float) -> bool:
        """Whether ``size`` more bytes go into the active segment without any rotation (the
        per-line loop of :meth:`_write_batch` decides the rest)."""
        if self.path is None or self.known_end == 0:
            return False  # a first write also starts the segment's age: the per-line path
        return not self.policy.should_rotate(
            active_size=self.known_end, incoming=size,
            active_first_timestamp=self._active_first_timestamp(), now=now)

    def _reserve(self) -> None:
        """Create the segment the next rotation goes into (see the module doc)."""
        room = self.policy.max_segment_bytes - self.known_end
        fit = room // max(self._line_hint, self._prev_line_hint, 1)
        if fit < 1:
            return
        seq = self.last_seq + 1 + fit
        path = self.directory / segment_name(seq)
        fd = create_exclusive(path)
        self._note_dir()
        crashpoint("reservation.after_create")
        self.reservation = Reservation(seq=seq, path=path, fd=fd,
                                       synced=self._fsync_dir_in_background())

    def _fsync_dir_in_background(self) -> Future[None]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="papyra-rotation-dirsync")
        self._background = self._pool.submit(self._fsync_dir_job)
        return self._background

    def _fsync_dir_job(self) -> None:
        fsync_dir(self.directory)
        crashpoint("reservation.after_dir_fsync")

    def _adopt(self, path: Path | None, seq: int) -> None:
        """Take the reservation a listing found (keeping ours if it is the same file)."""
        res = self.reservation
        if res is not None and path == res.path and self._still_empty(res):
            return
        self._forget_reservation()
        if path is not None:
            self.reservation = Reservation(seq=seq, path=path, fd=None)

    def _still_empty(self, res: Reservation) -> bool:
        """Whether the reserved segment is still there, ours (if we hold it) and empty."""
        try:
            st = os.stat(res.path)
            if res.fd is not None and file_identity(os.fstat(res.fd)) != file_identity(st):
                return False
        except OSError:
            return False
        return st.st_size == 0

    def _forget_reservation(self) -> None:
        res, self.reservation = self.reservation, None
        if res is not None and res.fd is not None:
            os.close(res.fd)

    def _discard(self, res: Reservation) -> None:
        """Delete a reservation we will not use, if it is still the empty file we know."""
        try:
            if self._still_empty(res):
                os.unlink(res.path)
                self._note_dir()
        except OSError:
            pass  # left in place: a later writer adopts it or scan explains it
        finally:
            if res.fd is not None:
                os.close(res.fd)

    def _take(self, res: Reservation) -> int | None:
        """An append fd on the reserved segment, or None if it is gone or no longer empty
        (the rotation then creates the segment as usual)."""
        fd = res.fd
        if fd is None:
            try:
                fd = os.open(res.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW)
            except OSError:
                return None
            res.fd = fd
        if not self._still_empty(res):
            os.close(fd)
            return None
        durable = False
        if res.synced is not None:
            try:
                res.synced.result()
                durable = True
            except OSError:
                pass  # the directory fsync at the end of the batch tries again (and reports)
        if not durable:
            self._dir_dirty = True
        crashpoint("rotation.into_reservation")
        return fd

    def _finish_rotations(self, *, fsync: bool) -> None:
        """After a batch that rotated: fsync the sealed segments and the directory.

        Done once the new segment's data is fsynced (with ``always``), so the journal commit
        those fsyncs need has mostly happened already: a rotation costs almost no extra latency.
        Nothing of the batch is acknowledged before this returns.
        """
        sealed, self._sealed = self._sealed, []
        try:
            for fd, dirty in sealed:
                if dirty and (fsync or self.seal_fsync):
                    try:
                        os.fsync(fd)
                    except OSError as exc:
                        self.broken = (f"fsync of a sealed segment failed "
                                       f"({os.strerror(exc.errno or errno.EIO)})")
                        raise FsyncFailedError(self.broken) from None
                    if self.on_fsync is not None:
                        self.on_fsync()
        finally:
            for fd, _dirty in sealed:
                os.close(fd)
        if self._dir_dirty:
            try:
                fsync_dir(self.directory)
            except OSError as exc:
                self.broken = f"fsync of directory {self.directory} failed ({exc.strerror})"
                raise FsyncFailedError(self.broken) from None
            self._dir_dirty = False
            crashpoint("rotation.after_dir_fsync")

    def _write(self, lines: list[bytes], *, fsync: bool) -> None:
        assert self.fd is not None
        assert self.path is not None
        count = len(lines)
        if self.torn and self.torn_tail == "fail":
            raise StoreUnavailableError(
                f"{self.path} ends with a torn record; run `papyra persistence recover` "
                "(or start with startup mode recover)")
        if self.torn:
            lines = [b"\n", *lines]  # never glue a record onto a torn tail
        data = b"".join(lines)
        start = self.known_end
        try:
            if armed("append.mid_write") and len(data) > 1:
                write_all(self.fd, data[: len(data) // 2])
                crashpoint("append.mid_write")
            write_all(self.fd, data)
        except OSError as exc:
            self._undo(start, exc)
            raise unavailable(self.path, exc, "append to") from None
        self.known_end = start + len(data)
        self.torn = False
        self.dirty = True
        self.last_seq += count
        crashpoint("append.after_write")
        if fsync:
            self._fsync()

    def _undo(self, start: int, exc: OSError) -> None:
        assert self.fd is not None
        try:
            os.ftruncate(self.fd, start)
        except OSError as texc:
            self.broken = (f"cannot undo a partial write to {self.path} "
                           f"({os.strerror(exc.errno or errno.EIO)}; truncate failed: "
                           f"{os.strerror(texc.errno or errno.EIO)}); run recover")

    def _fsync(self) -> None:
        assert self.fd is not None
        try:
            os.fsync(self.fd)
        except OSError as exc:
            self.broken = (f"fsync of {self.path} failed ({os.strerror(exc.errno or errno.EIO)});"
                           " records since the last successful fsync may be lost")
            raise FsyncFailedError(self.broken) from None
        self.dirty = False
        if self.on_fsync is not None:
            self.on_fsync()

    def sync(self) -> None:
        if self.broken is not None:
            raise StoreUnhealthyError(self.broken)
        if self.fd is not None:
            with self.lock.held():
                self._fsync()

    # ------------------------------------------------------------------ rotation

    def _rotate(self, first_seq: int, *, seal: bool) -> None:
        """Start ``segment-<first_seq>``: the reserved segment if it is the one, or created
        exclusively now, the directory (and the segment it seals) fsynced by
        :meth:`_finish_rotations` before the batch is done."""
        res, self.reservation = self.reservation, None
        fd: int | None = None
        if res is not None and res.seq == first_seq:
            fd = self._take(res)
            if fd is not None:
                self.reservations_used += 1
        elif res is not None:
            self._discard(res)  # the policy rotates earlier than we guessed
        if fd is None:
            fd = self._create_segment(first_seq)
        if self.fd is not None:
            self._sealed.append((self.fd, self.dirty))
            self.fd = None
        self.fd = fd
        self.path = self.directory / segment_name(first_seq)
        self.identity = file_identity(os.fstat(fd))
        self.known_end = 0
        self.torn = False
        self.dirty = False
        self.first_timestamp = None
        self._first_ts_known = False
        self._prev_line_hint, self._line_hint = self._line_hint, 0
        self.rotations += 1
        self._note_dir()
        if seal and self.policy.bounded:
            self._enforce_bound()

    def _create_segment(self, first_seq: int) -> int:
        ensure_dir(self.directory)
        path = self.directory / segment_name(first_seq)
        crashpoint("rotation.before_create")
        try:
            fd = create_exclusive(path)
        except FileExistsError:
            # only an empty segment left by a crashed rotation can be there: take it over
            try:
                if os.stat(path).st_size != 0:
                    raise StoreUnavailableError(
                        f"cannot start segment {path}: it exists and is not empty "
                        "(run `papyra persistence scan`)")
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW)
            except OSError as exc:
                raise unavailable(path, exc, "open segment") from None
        except OSError as exc:
            raise unavailable(path, exc, "create segment") from None
        crashpoint("rotation.after_create")
        self._dir_dirty = True
        return fd

    def _enforce_bound(self) -> None:
        """Delete whole oldest sealed segments while the directory is over the bound."""
        layout = resolve(list_directory(self.directory), self.tails)
        live = list(layout.live)
        if not live or live[-1].path != self.path:
            return  # not what we expect (a concurrent maintenance run): next rotation retries
        sealed = live[:-1]
        n = self.policy.segments_to_delete([s.size for s in sealed])
        if not n:
            return
        dropped = 0
        for i in range(n):
            seg = sealed[i]
            nxt = live[i + 1]
            crashpoint("retention.before_delete")
            # superseded leftovers inside the deleted range would otherwise come back to life
            for old, _why in layout.superseded:
                if seg.first_seq < old.first_seq < nxt.first_seq:
                    _unlink(old.path)
            _unlink(seg.path)
            dropped += nxt.first_seq - seg.first_seq
            self.deleted_segments += 1
            crashpoint("retention.after_delete")
        self._note_dir()
        if not self._dir_dirty:
            self._fsync_dir_in_background()  # see the module doc: a deletion need not wait
        if self.on_retention_drop is not None and dropped:
            self.on_retention_drop(dropped)

    def close(self) -> None:
        """Delete an unused reservation (under the lock) and close everything."""
        res, self.reservation = self.reservation, None
        if res is not None:
            if res.synced is not None:
                with contextlib.suppress(OSError):
                    res.synced.result()
            try:
                with self.lock.held():
                    self._discard(res)
            except (OSError, PapyraError):
                if res.fd is not None:
                    os.close(res.fd)  # busy lock or a vanished directory: leave it for adoption
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._close_fd()


def create_exclusive(path: Path) -> int:
    """Create a new segment that must not exist yet (0600); returns an append fd."""
    return os.open(
        path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW,
        FILE_MODE,
    )


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise unavailable(path, exc, "delete segment") from None
