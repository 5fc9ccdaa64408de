"""NDJSON framing: lines in big blocks (forwards and backwards) and the streaming scanner.

Everything here reads through a file descriptor with ``os.pread`` and never writes.

- :func:`iter_line_batches` / :func:`iter_lines` walk a file forwards in 1 MiB blocks. A line
  longer than ``max_line`` is not buffered: it comes back as :class:`Overlong` (offset and
  length only), so memory stays bounded on any input.
- :func:`iter_lines_reverse` walks backwards from an offset: reading the newest N records costs
  O(N), not O(file).
- :func:`check_line` classifies one line (without its newline) quickly: valid v1 record, gap,
  legacy 0.3.0 record, or the anomaly kind of DESIGN §6. It agrees with :func:`papyra.codec.decode`
  (which it calls whenever its fast path is unsure).
- :class:`FileScanner` consumes lines and produces the anomalies of one file with exact
  ``offset``/``length``/``line``, counts, first/last seq and where the last valid record ends.
  A damaged run after the last valid record of the *last* file is one ``truncated_tail``
  anomaly; the same damage followed by a valid record is reported line by line.

A segmented store (rotation backend) scans each segment with its own :class:`FileScanner`,
passing ``last_file=False`` for sealed segments and ``expect_seq`` (last seq of the previous
segment + 1) so continuity between segments is checked; it reads newest-first with
:func:`iter_lines_reverse` segment by segment, newest segment first.
"""

from __future__ import annotations

import math
import operator
import os
import re
import zlib
from collections.abc import Iterator, Sequence
from typing import Any, Final

import attrs
import orjson

from papyra import codec
from papyra.codec import DecodeError
from papyra.reports import Anomaly

BLOCK: Final = 1 << 20
MAX_LINE: Final = 64 << 20
_CRC_TAIL: Final = 18  # len(',"crc":"xxxxxxxx"}')
_CRC_PREFIX: Final = b',"crc":"'
_HEX: Final = frozenset(b"0123456789abcdef")


@attrs.frozen
class Overlong:
    """A line longer than ``max_line`` bytes; its content was not kept."""

    length: int
    """Bytes of the line without its newline."""


LineData = bytes | Overlong


# --------------------------------------------------------------------------- forward reading


def iter_line_batches(
    fd: int, start: int = 0, end: int | None = None, *, block: int = BLOCK,
    max_line: int = MAX_LINE,
) -> Iterator[tuple[int, list[LineData], bool]]:
    """Yield ``(offset_of_first_line, lines, last_terminated)`` batches from ``start`` to ``end``.

    Every line of a batch except possibly the very last one of the file is newline-terminated;
    ``last_terminated`` is False only on the final batch when the file does not end with a
    newline. Lines are given without their newline.
    """
    pos = start
    carry = b""
    carry_off = start
    skipping: int | None = None  # length so far of an overlong line being skipped
    while True:
        want = block if end is None else min(block, end - pos)
        chunk = os.pread(fd, want, pos) if want > 0 else b""
        if not chunk:
            break
        pos += len(chunk)
        if skipping is not None:
            nl = chunk.find(b"\n")
            if nl < 0:
                skipping += len(chunk)
                continue
            length = skipping + nl
            yield carry_off, [Overlong(length)], True
            carry_off += length + 1
            chunk = chunk[nl + 1 :]
            skipping = None
        data = carry + chunk if carry else chunk
        parts: list[LineData] = list(data.split(b"\n"))
        tail = parts.pop()
        assert isinstance(tail, bytes)
        if parts:
            yield carry_off, parts, True
            carry_off += len(data) - len(tail)
        carry = tail
        if len(carry) > max_line:
            skipping = len(carry)
            carry = b""
    if skipping is not None:
        yield carry_off, [Overlong(skipping)], False
    elif carry:
        yield carry_off, [carry], False


def iter_lines(
    fd: int, start: int = 0, end: int | None = None, *, block: int = BLOCK,
    max_line: int = MAX_LINE,
) -> Iterator[tuple[int, int, LineData, bool]]:
    """Yield ``(offset, length_with_newline, line, terminated)`` for each line, in order."""
    for off, lines, last_terminated in iter_line_batches(fd, start, end, block=block,
                                                         max_line=max_line):
        last = len(lines) - 1
        for i, ln in enumerate(lines):
            n = ln.length if isinstance(ln, Overlong) else len(ln)
            terminated = last_terminated or i < last
            size = n + 1 if terminated else n
            yield off, size, ln, terminated
            off += size


def iter_lines_reverse(
    fd: int, end: int, *, block: int = 1 << 16
) -> Iterator[tuple[int, int, bytes, bool]]:
    """Yield ``(offset, length_with_newline, line, terminated)`` newest first, ending at ``end``."""
    if end <= 0:
        return
    pos = end
    carry = b""
    terminated = True
    first = True
    while pos > 0:
        start = max(0, pos - block)
        chunk = os.pread(fd, pos - start, start)
        if len(chunk) != pos - start:  # the file shrank under us: stop quietly
            return
        if first:
            first = False
            if chunk.endswith(b"\n"):
                chunk = chunk[:-1]
            else:
                terminated = False
        data = chunk + carry if carry else chunk
        parts = data.split(b"\n")
        line_end = start + len(data)
        for i in range(len(parts) - 1, 0, -1):
            ln = parts[i]
            off = line_end - len(ln)
            yield off, len(ln) + (1 if terminated else 0), ln, terminated
            line_end = off - 1
            terminated = True
        carry = parts[0]
        pos = start
    yield 0, len(carry) + (1 if terminated else 0), carry, terminated


# --------------------------------------------------------------------------- line checks

VALID: Final = "valid"
GAP: Final = "gap"
LEGACY: Final = "legacy"

_NUM = (int, float)
_DATA_KINDS: Final = frozenset({"event", "audit", "dead_letter"})
_TRUSTED_HEAD: Final = re.compile(
    rb'\{"v":1,"seq":([1-9][0-9]*),"id":"[0-9a-f]{32}","kind":"(event|audit|dead_letter)",')
_EVENT_MEMBERS: Final = operator.itemgetter(
    "v", "seq", "id", "kind", "timestamp", "system_id", "actor_address", "event_type", "payload")
_AUDIT_INTS = ("total_actors", "alive_actors", "stopping_actors", "restarting_actors",
               "registry_size", "dead_letters_count")


def _fast_ok(d: dict[str, Any]) -> bool:
    """Members of a decoded v1 object are as :func:`codec.decode` requires (conservative)."""
    ts = d.get("timestamp")
    if (type(ts) is not float and type(ts) is not int) or not math.isfinite(ts):
        return False
    kind = d.get("kind")
    if kind == "event":
        return (type(d.get("system_id")) is str and type(d.get("actor_address")) is str
                and type(d.get("event_type")) is str and type(d.get("payload")) is dict)
    if kind == "dead_letter":
        t = d.get("target", ...)
        return (type(d.get("system_id")) is str and type(d.get("message_type")) is str
                and "payload" in d and (t is None or type(t) is str)
                and type(d.get("expects_reply")) is bool)
    if kind == "audit":
        for name in _AUDIT_INTS:
            v = d.get(name)
            if type(v) is not int or v < 0:
                return False
        a = d.get("actors")
        return (type(d.get("system_id")) is str and type(d.get("registry_orphans")) is list
                and type(d.get("registry_dead")) is list and (a is None or type(a) is list))
    if kind == "gap":
        seq = d.get("seq")
        t = d.get("through")
        return type(seq) is int and type(t) is int and t >= seq and type(d.get("reason")) is str
    return False


def check_line(line: bytes) -> tuple[str, Any, Any, str]:
    """Classify one line without its newline.

    Returns ``(status, a, b, info)``:

    - ``("valid", seq, seq, kind)`` for a v1 data record (``seq`` may be None if absent),
    - ``("gap", seq, through, "gap")`` for a gap record,
    - ``("legacy", None, None, kind)`` for a legacy 0.3.0 record,
    - ``(anomaly_kind, None, None, detail)`` for a damaged line.
    """
    n = len(line)
    if (n > _CRC_TAIL + 1 and line[n - 2 :] == b'"}'
            and line[n - _CRC_TAIL : n - 10] == _CRC_PREFIX):
        crc_hex = line[n - 10 : n - 2]
        if _HEX.issuperset(crc_hex) and int(crc_hex, 16) == zlib.crc32(
            b"}", zlib.crc32(memoryview(line)[: n - _CRC_TAIL])
        ):
            try:
                d = orjson.loads(line)
            except orjson.JSONDecodeError:
                d = None
            if (type(d) is dict and d.get("v") == 1 and type(d["v"]) is int
                    and type(d.get("id")) is str and len(d["id"]) == 32):
                seq = d.get("seq")
                if (seq is None or (type(seq) is int and seq >= 1)) and _fast_ok(d):
                    kind = d["kind"]
                    if kind == "gap":
                        return GAP, seq, d["through"], kind
                    return VALID, seq, seq, kind
    try:
        rec = codec.decode(line)
    except DecodeError as exc:
        return exc.kind, None, None, exc.detail
    except Exception as exc:  # never crash on any input
        return "invalid_json", None, None, f"undecodable line: {type(exc).__name__}"
    if rec.kind == "gap":
        return GAP, rec.seq, getattr(rec, "through", rec.seq), "gap"
    if getattr(rec, "legacy", False):
        return LEGACY, None, None, rec.kind
    return VALID, rec.seq, rec.seq, rec.kind


_HEADER = re.compile(
    rb'\{"v":1,"seq":(\d+),"id":"[0-9a-f]{32}","kind":"(event|audit|dead_letter|gap)",'
    rb'"timestamp":(-?[0-9.eE+-]+),'
)


def quick_header(line: bytes) -> tuple[int, str, float] | None:
    """``(seq, kind, timestamp)`` read from the fixed head of a v1 line without parsing the
    rest (no checksum check): for retention walks and statistics over known-good logs."""
    m = _HEADER.match(line)
    if m is None:
        return None
    try:
        return int(m.group(1)), m.group(2).decode("ascii"), float(m.group(3))
    except ValueError:
        return None


# --------------------------------------------------------------------------- scanning


@attrs.define
class _Pending:
    kind: str
    offset: int
    length: int
    line: int
    detail: str


class FileScanner:
    """Streaming scan of one file. Feed lines with :meth:`feed` (or use :meth:`run`).

    Memory stays bounded by the number of damaged lines, never by the file size.
    """

    def __init__(
        self, file: str, *, last_file: bool = True, expect_seq: int | None = None,
        first_line: int = 1, trusted: Sequence[tuple[int, int]] = (),
    ) -> None:
        self.file = file
        self.trusted = sorted(trusted)
        """Byte ranges already verified (e.g. verbatim copies made by a repair): a line fully
        inside one whose fixed v1 head parses is counted without re-checking its checksum."""
        self.last_file = last_file
        self.anomalies: list[Anomaly] = []
        self.records = 0
        self.legacy_records = 0
        self.gaps = 0
        self.bytes = 0
        self.first_seq: int | None = None
        self.last_seq: int | None = None if expect_seq is None else expect_seq - 1
        self._expect_given = expect_seq is not None
        self.last_valid_end = 0
        """Offset just past the last line that repair keeps (valid, legacy or newer-version)."""
        self.terminated = True
        """Whether the file ends with a newline (or is empty)."""
        self.line_no = first_line - 1
        self._pending: list[_Pending] = []
        self._damage_since_seq = False
        self.kinds: dict[str, int] = {}

    # ---------------------------------------------------------------- feeding

    def _flush_pending(self) -> None:
        for p in self._pending:
            self.anomalies.append(Anomaly(kind=p.kind, file=self.file, offset=p.offset,
                                          length=p.length, line=p.line, detail=p.detail))
        self._pending.clear()

    def _damage(self, kind: str, offset: int, length: int, detail: str) -> None:
        self._pending.append(_Pending(kind, offset, length, self.line_no, detail))
        self._damage_since_seq = True

    def _sequenced(self, seq: int | None, through: int | None, offset: int, length: int) -> bool:
        """Check continuity; False when the line is a ``seq_regression`` (reported)."""
        if seq is None:
            return True
        assert through is not None
        last = self.last_seq
        if last is not None:
            if seq <= last:
                self.anomalies.append(Anomaly(
                    kind="seq_regression", file=self.file, offset=offset, length=length,
                    line=self.line_no, detail=f"seq {seq} after seq {last}"))
                return False
            if seq > last + 1 and not self._damage_since_seq:
                self.anomalies.append(Anomaly(
                    kind="seq_gap", file=self.file, offset=offset, length=length,
                    line=self.line_no,
                    detail=f"seqs {last + 1}..{seq - 1} are missing before seq {seq}"))
        if self.first_seq is None:
            self.first_seq = seq
        self.last_seq = through
        self._damage_since_seq = False
        return True

    def feed(self, offset: int, length: int, line: LineData, terminated: bool) -> None:
        """One line: ``length`` includes its newline when ``terminated``."""
        self.line_no += 1
        self.bytes = offset + length
        self.terminated = terminated
        if isinstance(line, Overlong):
            self._damage("invalid_json", offset, length,
                         f"line of {line.length} bytes is longer than any record")
            return
        status, a, b, info = check_line(line)
        if status in (VALID, GAP):
            if self._pending:
                self._flush_pending()
            ok = self._sequenced(a, b, offset, length)
            if not ok:
                return
            if status == VALID:
                self.records += 1
                self.kinds[info] = self.kinds.get(info, 0) + 1
            else:
                self.gaps += 1
            self.last_valid_end = offset + length
            if not terminated:
                self.anomalies.append(Anomaly(
                    kind="missing_trailing_newline", file=self.file, offset=offset,
                    length=length, line=self.line_no,
                    detail="the last record is valid but lacks its newline"))
        elif status == LEGACY:
            if self._pending:
                self._flush_pending()
            self.legacy_records += 1
            self.kinds[info] = self.kinds.get(info, 0) + 1
            self.last_valid_end = offset + length
            if not terminated:
                self.anomalies.append(Anomaly(
                    kind="missing_trailing_newline", file=self.file, offset=offset,
                    length=length, line=self.line_no,
                    detail="the last record is valid but lacks its newline"))
        elif status == "unsupported_version":
            if self._pending:
                self._flush_pending()
            self.anomalies.append(Anomaly(kind=status, file=self.file, offset=offset,
                                          length=length, line=self.line_no, detail=str(info)))
            self.last_valid_end = offset + length
        else:
            if not terminated and not line:
                return  # nothing at all after the last newline
            self._damage(status, offset, length, str(info))

    def finish(self) -> None:
        """End of file: a damaged run after the last valid record is the torn tail."""
        if not self._pending:
            return
        if not self.last_file:
            self._flush_pending()
            return
        first = self._pending[0]
        n = len(self._pending)
        length = self.bytes - first.offset
        what = f"{first.kind}: {first.detail}"
        detail = (f"{length} bytes after the last valid record ({what})" if n == 1 else
                  f"{n} damaged lines, {length} bytes after the last valid record "
                  f"(first: {what})")
        self.anomalies.append(Anomaly(kind="truncated_tail", file=self.file,
                                      offset=first.offset, length=length, line=first.line,
                                      detail=detail))
        self._pending.clear()

    def _sync(self, records: int, last_seq: int | None, first_seq: int | None, line_no: int,
              valid_end: int, fast: bool) -> None:
        """Write the fast path's local state back before the general path runs."""
        self.records, self.last_seq, self.first_seq = records, last_seq, first_seq
        self.line_no, self.last_valid_end = line_no, valid_end
        if valid_end > self.bytes:
            self.bytes = valid_end
        if fast:
            self._damage_since_seq = False

    def run(self, fd: int, start: int = 0, end: int | None = None) -> FileScanner:
        """Scan ``fd`` from ``start`` to ``end`` (EOF when None) and finish.

        The common case — a terminated, checksum-valid v1 data record with the next seq and no
        damage pending — is handled inline with local state; everything else goes through
        :meth:`feed` (state is written back before and read again after).
        """
        loads = orjson.loads
        decode_error = orjson.JSONDecodeError
        crc32 = zlib.crc32
        fast_ok = _fast_ok
        crc_prefix = _CRC_PREFIX
        isfinite = math.isfinite
        event_members = _EVENT_MEMBERS
        pending = self._pending
        off = start
        ends_terminated = True
        records = self.records
        last_seq = self.last_seq
        first_seq = self.first_seq
        line_no = self.line_no
        valid_end = self.last_valid_end
        counts = {"event": 0, "audit": 0, "dead_letter": 0}
        fast = False
        trusted = self.trusted or [(-1, -1)]
        t_index = 0
        t_start, t_end = trusted[0]
        t_last = len(trusted) - 1
        trusted_head = _TRUSTED_HEAD.match
        seq: Any = None
        kind: Any = None
        for off, lines, last_terminated in iter_line_batches(fd, start, end):
            ends_terminated = last_terminated
            tail_line: LineData | None = None
            if not last_terminated:
                tail_line = lines.pop()
            for ln in lines:
                if type(ln) is bytes:
                    if off >= t_end and t_index < t_last:
                        while off >= t_end and t_index < t_last:
                            t_index += 1
                            t_start, t_end = trusted[t_index]
                    if t_start <= off and off + len(ln) < t_end and not pending:
                        m = trusted_head(ln)
                        if m is not None:
                            seq = int(m.group(1))
                            if seq == last_seq + 1 if last_seq is not None else seq >= 1:
                                kind = m.group(2).decode("ascii")
                                fast = True
                                line_no += 1
                                records += 1
                                counts[kind] += 1
                                if first_seq is None:
                                    first_seq = seq
                                last_seq = seq
                                off += len(ln) + 1
                                valid_end = off
                                continue
                    head, sep, tail = ln.rpartition(crc_prefix)
                    if (sep and len(tail) == 10 and tail.endswith(b'"}')
                            and b"%08x" % crc32(b"}", crc32(head)) == tail[:8]
                            and not pending):
                        try:
                            d = loads(ln)
                        except decode_error:
                            d = None
                        if type(d) is dict:
                            try:
                                v, seq, rid, kind, ts, sid, addr, etype, payload = (
                                    event_members(d))
                                ok = (kind == "event" and type(ts) is float
                                      and type(sid) is str and type(addr) is str
                                      and type(etype) is str and type(payload) is dict
                                      and isfinite(ts))
                            except KeyError:
                                v, seq, rid, kind = (d.get("v"), d.get("seq"), d.get("id"),
                                                     d.get("kind"))
                                ok = kind in counts and fast_ok(d)
                            if (ok and type(seq) is int
                                    and (seq == last_seq + 1 if last_seq is not None
                                         else seq >= 1)
                                    and v == 1 and type(v) is int
                                    and type(rid) is str and len(rid) == 32):
                                fast = True
                                line_no += 1
                                records += 1
                                counts[kind] += 1
                                if first_seq is None:
                                    first_seq = seq
                                last_seq = seq
                                off += len(ln) + 1
                                valid_end = off
                                continue
                    size = len(ln) + 1
                else:
                    assert isinstance(ln, Overlong)
                    size = ln.length + 1
                self._sync(records, last_seq, first_seq, line_no, valid_end, fast)
                self.feed(off, size, ln, True)
                fast = False
                records, last_seq, first_seq = self.records, self.last_seq, self.first_seq
                line_no, valid_end = self.line_no, self.last_valid_end
                off += size
            if tail_line is not None:
                size = tail_line.length if isinstance(tail_line, Overlong) else len(tail_line)
                self._sync(records, last_seq, first_seq, line_no, valid_end, fast)
                self.feed(off, size, tail_line, False)
                fast = False
                records, last_seq, first_seq = self.records, self.last_seq, self.first_seq
                line_no, valid_end = self.line_no, self.last_valid_end
                off += size
        self._sync(records, last_seq, first_seq, line_no, valid_end, fast)
        for kind, count in counts.items():
            if count:
                self.kinds[kind] = self.kinds.get(kind, 0) + count
        self.bytes = max(self.bytes, off)
        self.terminated = ends_terminated
        self.finish()
        return self

    @property
    def damaged_since_last_valid(self) -> bool:
        return bool(self._pending)


def last_sequenced(fd: int, end: int) -> tuple[int, int, bool]:
    """What a writer must know before appending at ``end``.

    Returns ``(last_seq, valid_end, terminated)``: the highest seq of the newest valid v1 line
    (0 when there is none), the offset just past that line, and whether the file ends with a
    newline. Reads backwards: cheap for a healthy log.
    """
    if end <= 0:
        return 0, 0, True
    terminated = os.pread(fd, 1, end - 1) == b"\n"
    for off, size, line, _term in iter_lines_reverse(fd, end):
        if not line:
            continue
        status, _a, b, _info = check_line(line)
        if (status in (VALID, GAP)) and b is not None:
            return int(b), off + size, terminated
    return 0, 0, terminated


def offset_after_seq(fd: int, end: int, seq: int, *, window: int = 1 << 16) -> int:
    """A line-start offset at or before the first line whose seq is greater than ``seq``.

    Bisects over byte offsets (O(log size) small reads) on the sorted seqs of a log; the caller
    reads forward from the result and filters, so an undecidable probe (damaged or legacy lines)
    only makes the result earlier, never wrong.
    """
    lo, hi = 0, end
    while hi - lo > window:
        mid = (lo + hi) // 2
        found: tuple[int, int, int] | None = None
        skip_first = True
        for off, size, line, terminated in iter_lines(fd, mid, hi, block=window):
            if skip_first:  # the line containing ``mid`` may have started before it
                skip_first = False
                if mid > 0 and os.pread(fd, 1, mid - 1) != b"\n":
                    continue
            if not terminated or not isinstance(line, bytes) or not line:
                continue
            status, a, b, _info = check_line(line)
            if status in (VALID, GAP) and a is not None:
                found = (off, off + size, int(b))
                break
            if off - mid > window:
                break
        if found is None:
            break
        line_start, line_end, line_seq = found
        if line_seq <= seq:
            lo = line_end
        else:
            hi = line_start
    return lo

