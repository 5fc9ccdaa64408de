"""Physical retention of a rotation directory, crash-atomic, while writers stay live.

Only the boundary segment (the one holding the oldest kept record) is copied; whole older
segments are deleted. The new content of the log's *first* segment name ``segment-F`` is

    {"kind":"gap","seq":F,"through":K-1,"reason":"retention"}   + the boundary segment from K on

Steps: the temp file is filled without the lock (from a snapshot of the boundary segment);
then, under the lock, what writers appended meanwhile is copied, the temp file is fsynced and
``os.replace``-d over ``segment-F``, the directory fsynced, and the old segments between
``segment-F`` and the boundary (inclusive) are deleted, then the directory fsynced again.

After a crash before the replace the log is the old one (plus a temp file: an
``orphaned_file``); after it, ``segment-F`` holds every seq up to the boundary's last, so the
old segments still present are *superseded* (see :mod:`~papyra_backend_rotation.segments`):
readers skip them and repair deletes them. Old or new content, never both, never neither.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from papyra import codec
from papyra.errors import StoreUnavailableError
from papyra.filelog.fsio import (
    FILE_MODE,
    file_identity,
    fsync_dir,
    open_read,
    unavailable,
    write_all,
)
from papyra.filelog.locking import LogLock
from papyra.filelog.rewrite import _copy
from papyra.records import GapRecord
from papyra.reports import CompactionReport
from papyra.retention import RetentionPolicy, RetentionRule

from papyra_backend_rotation.crashpoints import crashpoint
from papyra_backend_rotation.layout import segment_name, temp_name
from papyra_backend_rotation.reading import count_records, retention_cutoff
from papyra_backend_rotation.scan import load_layout
from papyra_backend_rotation.segments import Layout, TailCache


def _count(path: Path, start: int = 0, end: int | None = None) -> int:
    try:
        fd = open_read(path)
    except Exception:
        return 0
    try:
        return count_records(fd, start, end)
    finally:
        os.close(fd)


def compact(
    directory: Path, lock: LogLock, tails: TailCache, policy: RetentionPolicy,
    rules: dict[str, RetentionRule], *, dry_run: bool, url: str, backend: str,
) -> CompactionReport:
    layout = load_layout(directory, tails)
    live = layout.live
    before_bytes = sum(s.size for s in live)
    counts = [_count(s.path) for s in live]
    before = sum(counts)
    position, kept_seq = retention_cutoff(layout, policy, rules)

    def report(after: int, after_bytes: int, first_kept: int | None, dry: bool
               ) -> CompactionReport:
        return CompactionReport(store=url, backend=backend, dry_run=dry, before_records=before,
                                after_records=after, before_bytes=before_bytes,
                                after_bytes=after_bytes, first_kept_seq=first_kept)

    if position is None or kept_seq is None or not live:
        return report(before, before_bytes, None, dry_run)
    b, offset = position
    if b >= len(live):  # nothing kept: the boundary is the end of the last segment
        b, offset = len(live) - 1, live[-1].size
    retired = sum(counts[:b]) + _count(live[b].path, 0, offset)
    if retired == 0:
        return report(before, before_bytes, None, dry_run)
    first = live[0]
    gap = GapRecord(seq=first.first_seq, through=kept_seq - 1, reason="retention")
    gap_line = codec.encode(gap)
    tail_bytes = live[b].size - offset
    if dry_run:
        after_bytes = before_bytes - sum(s.size for s in live[: b + 1]) + len(gap_line) \
            + tail_bytes
        return report(before - retired, after_bytes, kept_seq, True)
    _switch(directory, lock, layout, b, offset, gap_line)
    after_layout = load_layout(directory, tails)
    after_bytes = sum(s.size for s in after_layout.live)
    return report(before - retired, after_bytes, kept_seq, False)


def _switch(
    directory: Path, lock: LogLock, layout: Layout, b: int, offset: int, gap_line: bytes
) -> None:
    live = layout.live
    first = live[0]
    boundary = live[b]
    target = directory / segment_name(first.first_seq)
    tmp = directory / temp_name(target.name, "compact")
    src = open_read(boundary.path)
    try:
        src_identity = file_identity(os.fstat(src))
        snapshot_end = os.fstat(src).st_size
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     FILE_MODE)
        try:
            write_all(fd, gap_line)
            _copy_all(src, fd, offset, snapshot_end)
            crashpoint("compaction.after_copy")
            with lock.held():
                _check_unchanged(layout, b, src_identity)
                now_end = os.fstat(src).st_size
                if now_end > snapshot_end:
                    _copy_all(src, fd, snapshot_end, now_end)  # appended meanwhile
                os.fsync(fd)
                os.close(fd)
                fd = -1
                crashpoint("compaction.before_replace")
                os.replace(tmp, target)
                crashpoint("compaction.after_replace")
                fsync_dir(directory)
                for seg in live[1 : b + 1]:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(seg.path)
                    crashpoint("compaction.after_delete")
                fsync_dir(directory)
        finally:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    except OSError as exc:
        raise unavailable(directory, exc, "compact") from None
    finally:
        os.close(src)


def _copy_all(src: int, dst: int, start: int, end: int) -> None:
    pos = start
    while pos < end:
        n = _copy(src, dst, pos, end - pos)
        if n <= 0:
            raise StoreUnavailableError("a segment shrank while it was being compacted")
        pos += n


def _check_unchanged(layout: Layout, b: int, src_identity: tuple[int, int]) -> None:
    """Under the lock: the segments we are about to replace are still the ones we read."""
    for i, seg in enumerate(layout.live[: b + 1]):
        try:
            st = os.stat(seg.path)
        except FileNotFoundError:
            raise StoreUnavailableError(
                f"{seg.path} was removed while compacting (another maintenance run or the disk "
                "bound); nothing was changed, run compaction again") from None
        if i == b and file_identity(st) != src_identity:
            raise StoreUnavailableError(
                f"{seg.path} was replaced while compacting; nothing was changed, run again")
        if i < b and st.st_size != seg.size:
            raise StoreUnavailableError(
                f"sealed segment {seg.path} changed while compacting; nothing was changed")
