"""Physical retention for one log file: keep a suffix, replace the prefix by one ``gap`` record.

:func:`compact_file` walks the log newest-first (reading backwards: cost proportional to what
is kept, not to the file) feeding each data record to the retention rules until one refuses.
Everything before that point is retired; the new file is a leading ``gap`` record
(``"reason":"retention"``, covering the first retired seq — or the seq of an existing leading
gap — through the last retired one) followed by the kept bytes copied verbatim. The copy runs
without the lock; the switch-over (catching up with records appended meanwhile, ``os.replace``,
directory fsync) holds it. Memory stays constant whatever the file size.

Records are counted without decoding the retired prefix: lines minus gap records (recover a
damaged log before compacting it; damaged lines in the retired prefix would count as records).

A segmented store applies the same walk across segments (newest segment first) and uses
:func:`write_leading_gap` plus :class:`~papyra.filelog.rewrite.Rewrite` for the one segment the
cut falls into; whole older segments are simply deleted.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from papyra import codec
from papyra.errors import StoreUnavailableError
from papyra.filelog import framing
from papyra.filelog.fsio import file_identity, open_read
from papyra.filelog.locking import LogLock
from papyra.filelog.rewrite import Rewrite
from papyra.records import GapRecord
from papyra.retention import MaxRecordsRule, RetentionPolicy, RetentionRule, RetentionWalk

_GAP_LINE = re.compile(rb'(?m)^\{"v":1,"seq":\d+,"id":"[0-9a-f]{32}","kind":"gap"')
_GAP_HINT = b'"kind":"gap"'


def _gap_lines(data: bytes, start: int = 0, end: int | None = None) -> int:
    """Gap lines in ``data[start:end]`` (``start`` at a line start): a C substring count
    first, the anchored regex only when the text occurs at all (outside JSON strings it can
    only be structure, and inside them quotes are escaped)."""
    stop = len(data) if end is None else end
    if data.count(_GAP_HINT, start, stop) == 0:
        return 0
    return len(_GAP_LINE.findall(data, start, stop))


@attrs.frozen(kw_only=True)
class Cut:
    """Where retention cuts a log (computed by :func:`find_cut`)."""

    offset: int
    """Bytes before this offset are retired."""
    kept_records: int
    first_kept_seq: int | None
    """Seq the kept part starts at (the first seq any kept line covers)."""
    newest_seq: int | None
    """The highest seq in the log (what a gap covers when everything is retired)."""


@attrs.frozen(kw_only=True)
class CompactionResult:
    before_records: int
    after_records: int
    before_bytes: int
    after_bytes: int
    first_kept_seq: int | None
    changed: bool


def _line_facts(line: bytes) -> tuple[str, int | None, int | None, float | None]:
    """(status, seq, through, timestamp) of one line; cheap for well-formed v1 lines."""
    head = framing.quick_header(line)
    if head is not None:
        seq, kind, ts = head
        if kind == "gap":
            status, a, b, _info = framing.check_line(line)
            if status == framing.GAP:
                return status, a, b, ts
            return status, None, None, None
        return framing.VALID, seq, seq, ts
    status, a, b, _info = framing.check_line(line)
    if status in (framing.VALID, framing.LEGACY):
        try:
            rec = codec.decode(line)
        except codec.DecodeError:  # pragma: no cover - check_line said it decodes
            return "invalid_json", None, None, None
        return status, a, b, rec.timestamp
    return status, a, b, None


def _first_seq_at(fd: int, offset: int, end: int) -> int | None:
    for _off, _size, line, _t in framing.iter_lines(fd, offset, min(end, offset + (1 << 16))):
        if isinstance(line, bytes) and line:
            status, a, _b, _info = framing.check_line(line)
            if status in (framing.VALID, framing.GAP) and a is not None:
                return int(a)
            return None
    return None


def _skip_by_count(fd: int, end: int, keep: int) -> tuple[int, int]:
    """For a ``max_records``-only policy: skip whole blocks of newest lines in C.

    Returns ``(pos, skipped)``: every line in ``[pos, end)`` is kept, ``skipped`` of them
    are data lines (lines that are not gap records), and at least ``keep - skipped`` data
    lines remain to be walked line by line before ``pos``.
    """
    nl = end
    if end and os.pread(fd, 1, end - 1) != b"\n":
        back = os.pread(fd, min(end, 1 << 16), max(0, end - (1 << 16)))
        i = back.rfind(b"\n")
        if i < 0:
            return end, 0
        nl = end - len(back) + i + 1
    pos = nl
    skipped = 0
    while pos > 0:
        start = max(0, pos - framing.BLOCK)
        block = os.pread(fd, pos - start, start)
        first = block.find(b"\n") + 1 if start > 0 else 0
        if start > 0 and first == 0:
            break
        data = block.count(b"\n", first) - _gap_lines(block, first)
        if skipped + data > keep - 1:
            break
        skipped += data
        pos = start + first
    return (pos, skipped) if pos < nl else (end, 0)


def find_cut(
    fd: int, end: int, policy: RetentionPolicy, rules: Mapping[str, RetentionRule] | None = None,
    *, now: float | None = None,
) -> Cut | None:
    """Walk newest-first; None when the policy keeps everything."""
    options = policy.options()
    if set(options) == {"max_records"} and (
        rules is None or isinstance(rules.get("max_records"), MaxRecordsRule)
    ):
        keep = int(options["max_records"])
        pos, skipped = _skip_by_count(fd, end, keep)
        if skipped:
            newest_line: int | None = None
            for _o, _s, line, terminated in framing.iter_lines_reverse(fd, end):
                if terminated and line:
                    newest_line = line_through(line)
                    if newest_line is not None:
                        break
            cut = find_cut(fd, pos, RetentionPolicy(max_records=keep - skipped), rules, now=now)
            if cut is None:
                return None
            first = cut.first_kept_seq
            if first is None:
                first = _first_seq_at(fd, cut.offset, end)
            return Cut(offset=cut.offset, kept_records=cut.kept_records + skipped,
                       first_kept_seq=first, newest_seq=newest_line)
    walk = RetentionWalk(policy, rules, now=now)
    if walk.unbounded:
        return None
    kept = 0
    first_kept: int | None = None
    newest: int | None = None
    for off, size, line, terminated in framing.iter_lines_reverse(fd, end):
        if not terminated or not line:
            continue
        status, seq, through, ts = _line_facts(line)
        if newest is None and through is not None:
            newest = through
        if status == framing.GAP:
            first_kept = seq
            continue
        if status not in (framing.VALID, framing.LEGACY) or ts is None:
            continue
        if not walk.keep(seq, ts, size):
            return Cut(offset=off + size, kept_records=kept, first_kept_seq=first_kept,
                       newest_seq=newest)
        kept += 1
        if seq is not None:
            first_kept = seq
    return None


def count_prefix(fd: int, end: int) -> tuple[int, int | None]:
    """(records, first seq) of bytes ``[0, end)``: lines minus gap lines, no decoding."""
    lines = 0
    gaps = 0
    first_seq: int | None = None
    carry = b""
    pos = 0
    while pos < end:
        chunk = os.pread(fd, min(framing.BLOCK, end - pos), pos)
        if not chunk:
            break
        if pos == 0:
            for _off, _size, line, _t in framing.iter_lines(fd, 0, min(end, 1 << 16)):
                if isinstance(line, bytes):
                    status, a, _b, _info = framing.check_line(line)
                    if a is not None and status in (framing.VALID, framing.GAP):
                        first_seq = a
                        break
        pos += len(chunk)
        data = carry + chunk
        lines += data.count(b"\n")
        cut = data.rfind(b"\n") + 1
        gaps += _gap_lines(data, 0, cut)
        carry = data[cut:]
    if carry:
        lines += 1
    return lines - gaps, first_seq


def line_through(line: bytes) -> int | None:
    """The highest seq a v1 line covers (a gap's ``through``), None for anything else."""
    status, _a, b, _info = framing.check_line(line)
    return int(b) if status in (framing.VALID, framing.GAP) and b is not None else None


def gap_line(first: int, through: int, reason: str = "retention") -> bytes:
    return codec.encode(GapRecord(seq=first, through=through, reason=reason))


def compact_file(
    path: Path, lock: LogLock, policy: RetentionPolicy,
    rules: Mapping[str, RetentionRule] | None = None, *, dry_run: bool = False,
    now: float | None = None,
) -> CompactionResult:
    """Apply ``policy`` to ``path`` physically (see module doc)."""
    fd = open_read(path)
    try:
        st = os.fstat(fd)
        end = st.st_size
        identity = file_identity(st)
        cut = find_cut(fd, end, policy, rules, now=now)
        if cut is None or cut.offset == 0:
            total, _first = count_prefix(fd, end)
            return CompactionResult(before_records=total, after_records=total,
                                    before_bytes=end, after_bytes=end,
                                    first_kept_seq=None, changed=False)
        retired, first_seq = count_prefix(fd, cut.offset)
        before = retired + cut.kept_records
        last_retired = (cut.first_kept_seq - 1 if cut.first_kept_seq is not None
                        else cut.newest_seq)
        gap = b""
        if first_seq is not None and last_retired is not None and last_retired >= first_seq:
            gap = gap_line(first_seq, last_retired)
        if dry_run:
            return CompactionResult(before_records=before, after_records=cut.kept_records,
                                    before_bytes=end,
                                    after_bytes=len(gap) + end - cut.offset,
                                    first_kept_seq=cut.first_kept_seq, changed=False)
    finally:
        os.close(fd)
    with Rewrite(path, lock, purpose="compact") as rw:
        if rw.source_identity != identity or rw.source_end < end:
            raise StoreUnavailableError(
                f"{path} was replaced by another maintenance run meanwhile; nothing was changed, "
                "run the command again")
        rw.write(gap)
        rw.copy_range(cut.offset, end)
        rw.source_end = end
        appended = rw.commit()
        after_bytes = rw.written
    extra = 0
    if appended:
        fd = open_read(path)
        try:
            size = os.fstat(fd).st_size
            extra, _ = count_prefix_range(fd, size - appended, size)
        finally:
            os.close(fd)
    return CompactionResult(before_records=before + extra, after_records=cut.kept_records + extra,
                            before_bytes=end + appended, after_bytes=after_bytes,
                            first_kept_seq=(last_retired + 1) if last_retired is not None
                            else cut.first_kept_seq,
                            changed=True)


def count_prefix_range(fd: int, start: int, end: int) -> tuple[int, Any]:
    """Lines (minus gaps) in ``[start, end)``."""
    data_lines = 0
    for _off, _size, line, _t in framing.iter_lines(fd, start, end):
        if isinstance(line, bytes) and not _GAP_LINE.match(line):
            data_lines += 1
    return data_lines, None
