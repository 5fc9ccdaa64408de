"""Walking the log in (segment, line) order, forwards and backwards (blocking; run in a thread).

Replay order is (segment in name order, line in file order): the same bytes always give the
same records in the same order. Reads are lenient: lines that do not decode are skipped (the
scan reports them); superseded segments are never read.

Retention is applied as a *position*: the oldest kept record's ``(segment index, offset)``,
found by a newest-first walk that stops at the first record a rule refuses.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final

from papyra import codec
from papyra.codec import DecodeError
from papyra.errors import StoreNotFoundError
from papyra.filelog import framing
from papyra.filelog.fsio import open_read_sized
from papyra.records import GapRecord, StoredRecord
from papyra.retention import RetentionPolicy, RetentionRule, RetentionWalk

from papyra_backend_rotation.segments import Layout

Position = tuple[int, int]
"""(index of the live segment, byte offset of a line in it)."""

_GAP_MARK: Final = b'"kind":"gap"'


def _open_sized(path: Path | str) -> tuple[int, int] | None:
    try:
        return open_read_sized(path)
    except StoreNotFoundError:
        return None  # deleted meanwhile by concurrent maintenance


def lines_forward(
    layout: Layout, start: Position = (0, 0)
) -> Iterator[tuple[Position, int, bytes]]:
    """``((segment index, offset), size, line)`` from ``start`` to the end of the log."""
    for i in range(start[0], len(layout.live)):
        seg = layout.live[i]
        opened = _open_sized(seg.path)
        if opened is None:
            continue
        fd = opened[0]
        try:
            off0 = start[1] if i == start[0] else 0
            for off, size, line, _term in framing.iter_lines(fd, off0):
                if isinstance(line, bytes) and line:
                    yield (i, off), size, line
        finally:
            os.close(fd)


def segments_backward(
    layout: Layout,
) -> Iterator[tuple[int, Iterator[tuple[int, int, bytes, bool]]]]:
    """``(segment index, its lines newest first)`` from the newest segment to the oldest.

    The lines are :func:`framing.iter_lines_reverse`'s ``(offset, size, line, terminated)``;
    each segment's file is open only until the walk moves on to the next one, so its lines must
    be consumed before advancing (as nested ``for`` loops do).
    """
    for i in range(len(layout.live) - 1, -1, -1):
        opened = _open_sized(layout.live[i].entry.location)
        if opened is None:
            continue
        fd, size = opened
        try:
            yield i, framing.iter_lines_reverse(fd, size)
        finally:
            os.close(fd)


def lines_backward(layout: Layout) -> Iterator[tuple[Position, int, bytes]]:
    """The same lines as :func:`lines_forward`, newest first (O(lines visited))."""
    for i, lines in segments_backward(layout):
        for off, size, line, _term in lines:
            if line:
                yield (i, off), size, line


def decode(line: bytes) -> StoredRecord | None:
    try:
        return codec.decode(line)
    except DecodeError:
        return None


def header(line: bytes) -> tuple[int | None, str, float] | None:
    """``(seq, kind, timestamp)`` of a line, quickly when it is a v1 line; None if invalid."""
    head = framing.quick_header(line)
    if head is not None:
        return head
    rec = decode(line)
    if rec is None:
        return None
    return rec.seq, rec.kind, rec.timestamp


def retention_cutoff(
    layout: Layout, policy: RetentionPolicy, rules: Mapping[str, RetentionRule],
    *, now: float | None = None,
) -> tuple[Position | None, int | None]:
    """Where the kept suffix starts: ``(position, seq)`` of its oldest record.

    ``(None, None)`` when every record is kept; the end of the log (``(len(live), 0)``) with
    ``seq = last seq + 1`` when none is.
    """
    walk = RetentionWalk(policy, rules, now=now)
    if walk.unbounded:
        return None, None
    oldest: tuple[Position, int | None] | None = None
    newest_seq: int | None = None
    for pos, size, line in lines_backward(layout):
        head = header(line)
        if head is None:
            continue
        seq, kind, ts = head
        if kind == "gap":
            if newest_seq is None:
                rec = decode(line)
                if isinstance(rec, GapRecord):
                    newest_seq = rec.through
            continue
        if newest_seq is None:
            newest_seq = seq
        if not walk.keep(seq, ts, size):
            if oldest is None:
                return (len(layout.live), 0), (newest_seq or 0) + 1
            return oldest
        oldest = (pos, seq)
    return None, None


def count_records(fd: int, start: int = 0, end: int | None = None) -> int:
    """Data lines between ``start`` and ``end`` (gap records and empty lines excluded)."""
    n = 0
    for _off, lines, _term in framing.iter_line_batches(fd, start, end):
        for ln in lines:
            gap = isinstance(ln, bytes) and _GAP_MARK in ln[:100] and _is_gap(ln)
            if ln and not gap:
                n += 1
    return n


def _is_gap(line: bytes | framing.Overlong) -> bool:
    if not isinstance(line, bytes):
        return False
    head = framing.quick_header(line)
    return head is not None and head[1] == "gap"
