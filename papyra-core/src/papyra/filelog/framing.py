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
  anomaly; the same damage followed by a valid record is reported line by line. Its
  :meth:`~FileScanner.run` verifies the checksums of a whole block at once
  (:func:`crcs_match`) before parsing each line; every line its fast paths do not accept goes
  through :meth:`~FileScanner.feed`, so the report is the same as feeding lines one by one. It
  also records the clean :class:`Stretch` es between anomalies, which a scan of a verbatim copy
  (after a repair) may count without reading (``known``).

A segmented store (rotation backend) scans each segment with its own :class:`FileScanner`,
passing ``last_file=False`` for sealed segments and ``expect_seq`` (last seq of the previous
segment + 1) so continuity between segments is checked; it reads newest-first with
:func:`iter_lines_reverse` segment by segment, newest segment first.
"""

from __future__ import annotations

import bisect
import itertools
import math
import operator
import os
import re
import sys
import zlib
from array import array
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, Final, cast

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
    # Read exactly what is there: a pread asking for more than the file holds (the last partial
    # block, the empty read at EOF) allocates and frees a whole block, which costs as much as
    # reading one. Without ``end``, the size is taken again when reached, so lines appended
    # meanwhile are still read, as with read-until-empty.
    limit = os.fstat(fd).st_size if end is None else end
    while True:
        want = min(block, limit - pos)
        if want <= 0 and end is None:
            limit = os.fstat(fd).st_size
            want = min(block, limit - pos)
        chunk = os.pread(fd, want, pos) if want > 0 else b""
        if not chunk:
            break  # the end, or the file shrank under us
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
        # split the block itself and prepend the carried partial line to its first line only
        # (``carry + chunk`` would copy the whole block once more)
        parts = cast("list[LineData]", chunk.split(b"\n"))
        n = len(chunk)
        # drop the block before handing out its lines: otherwise it is still alive when the
        # next pread allocates one, memory goes back to the kernel and is faulted in again on
        # every block (docs/performance.md: "No heap churn per block")
        chunk = b""
        if carry:
            parts[0] = carry + cast("bytes", parts[0])
        tail = parts.pop()
        assert isinstance(tail, bytes)
        if parts:
            first_off = carry_off
            carry_off += len(carry) + n - len(tail)
            yield first_off, parts, True
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
        lines.clear()  # free the batch before the next block is split (see iter_line_batches)


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


_K_COMMA: Final = zlib.crc32(b"}") ^ zlib.crc32(b",")
"""``crc32(x + b"}") == crc32(x + b",") ^ _K_COMMA`` for any ``x`` (crc32 is affine and the two
messages differ in their last byte only): the checksum of a line's body is that of the line cut
just after the comma of its crc member, which needs one slice and no concatenation."""
_K_COMMA_BE: Final = _K_COMMA.to_bytes(4, "big")
_GROUP_1: Final = operator.methodcaller("group", 1)
_GROUP_2: Final = operator.methodcaller("group", 2)
_SLICE: Final = 64
"""Lines per slice when a batch's checksums do not all match: only the slices with damage go
through the per-line path."""
_HEAD_COMMA: Final = operator.itemgetter(slice(None, 1 - _CRC_TAIL))
_SUFFIX: Final = operator.itemgetter(slice(-_CRC_TAIL, None))
_SUFFIX_FIXED: Final = (*((i, bytes([c])) for i, c in enumerate(_CRC_PREFIX)),
                        (_CRC_TAIL - 2, b'"'), (_CRC_TAIL - 1, b"}"))


def _framed(line: bytes) -> bool:
    return (type(line) is bytes and len(line) > _CRC_TAIL
            and line.startswith(_CRC_PREFIX, len(line) - _CRC_TAIL) and line.endswith(b'"}'))


def crcs_match(lines: Sequence[LineData]) -> bool:
    """Whether every line ends with ``,"crc":"xxxxxxxx"}`` whose 8 lowercase hex digits are the
    crc32 of the line with that member removed — exactly the checksum :func:`codec.decode`
    verifies — decided for the whole batch with C-level loops (no Python code per line).

    False as soon as one line fails (or is :class:`Overlong`); the caller then checks the lines
    one by one. Each line's crc is compared exactly, never folded into a combined value.
    """
    k = len(lines)
    raw = cast("Sequence[bytes]", lines)  # an Overlong raises TypeError below
    if k and not (_framed(raw[0]) and _framed(raw[-1])):  # e.g. a legacy log: give up at once
        return False
    try:
        suffixes = b"".join(map(_SUFFIX, raw))
    except TypeError:  # an Overlong line
        return False
    if len(suffixes) != _CRC_TAIL * k:  # some line is shorter than a crc member
        return False
    for i, c in _SUFFIX_FIXED:  # the framing first: cheap, and all a legacy log needs
        if suffixes[i::_CRC_TAIL] != c * k:
            return False
    crcs = array("I", map(zlib.crc32, map(_HEAD_COMMA, raw)))
    if sys.byteorder == "little":
        crcs.byteswap()
    # every crc ^ _K_COMMA at once (one big integer), then 8 lowercase hex digits per line
    fixed = int.from_bytes(crcs.tobytes(), "big") ^ int.from_bytes(_K_COMMA_BE * k, "big")
    digits = fixed.to_bytes(4 * k, "big").hex().encode("ascii")
    return all(suffixes[8 + i :: _CRC_TAIL] == digits[i::8] for i in range(8))


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


@attrs.frozen
class Stretch:
    """A run of lines a scan found clean (no anomaly, no damage) and what they hold: enough for
    a later scan of a verbatim copy of those bytes to count them without reading them."""

    start: int
    end: int
    lines: int
    records: int
    legacy_records: int
    gaps: int
    kinds: tuple[tuple[str, int], ...]
    first_seq: int | None
    """Seq of the first line that carries one (None when no line does)."""
    last_seq: int | None


class FileScanner:
    """Streaming scan of one file. Feed lines with :meth:`feed` (or use :meth:`run`).

    Memory stays bounded by the number of damaged lines, never by the file size.
    """

    def __init__(
        self, file: str, *, last_file: bool = True, expect_seq: int | None = None,
        first_line: int = 1, trusted: Sequence[tuple[int, int]] = (),
        known: Sequence[tuple[int, int, Stretch]] = (),
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
        self.known = sorted(known, key=lambda k: k[0])
        """``(start, end, stretch)``: byte ranges of this file that are verbatim copies of a
        :class:`Stretch` another scan found clean; :meth:`run` counts such a range without
        reading it when it starts where the previous line ended and continues the seqs."""
        self.stretches: list[Stretch] = []
        """The clean runs between anomalies (bounded by the number of anomalies + 1)."""
        self._open: tuple[int, int, int, int, int, dict[str, int], int | None] = (
            0, self.line_no, 0, 0, 0, {}, self.last_seq)
        self._open_first: int | None = None
        self._t_index = 0

    # ---------------------------------------------------------------- stretches

    def _state(self, offset: int) -> tuple[int, int, int, int, int, dict[str, int], int | None]:
        return (offset, self.line_no, self.records, self.legacy_records, self.gaps,
                dict(self.kinds), self.last_seq)

    def _close(self, end: int, state: tuple[int, int, int, int, int, dict[str, int],
                                            int | None], first: int | None) -> None:
        """Record the open stretch as ending at ``end`` with the counters of ``state``."""
        start, line0, rec0, leg0, gap0, kinds0, _seq0 = self._open
        _o, line1, rec1, leg1, gap1, kinds1, seq1 = state
        if line1 > line0 and end > start:
            kinds = tuple(sorted((k, v - kinds0.get(k, 0)) for k, v in kinds1.items()
                                 if v != kinds0.get(k, 0)))
            self.stretches.append(Stretch(start, end, line1 - line0, rec1 - rec0, leg1 - leg0,
                                          gap1 - gap0, kinds, first,
                                          seq1 if first is not None else None))

    def _skip(self, end: int, st: Stretch) -> bool:
        """Count a known clean stretch without reading it, if nothing before it changes how
        its lines would be judged; False (nothing changed) otherwise."""
        if self._pending or (st.first_seq is not None and self.last_seq is not None
                             and st.first_seq != self.last_seq + 1):
            return False
        self.line_no += st.lines
        self.records += st.records
        self.legacy_records += st.legacy_records
        self.gaps += st.gaps
        for kind, count in st.kinds:
            self.kinds[kind] = self.kinds.get(kind, 0) + count
        if st.first_seq is not None:
            if self.first_seq is None:
                self.first_seq = st.first_seq
            if self._open_first is None:
                self._open_first = st.first_seq
            self.last_seq = st.last_seq
            self._damage_since_seq = False
        self.last_valid_end = self.bytes = end
        self.terminated = True
        return True

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
        if self._open_first is None:
            self._open_first = seq
        self.last_seq = through
        self._damage_since_seq = False
        return True

    def feed(self, offset: int, length: int, line: LineData, terminated: bool) -> None:
        """One line: ``length`` includes its newline when ``terminated``."""
        line_no, records, legacy, gaps, last_seq = (
            self.line_no, self.records, self.legacy_records, self.gaps, self.last_seq)
        first = self._open_first
        reported = len(self.anomalies) + len(self._pending)
        counted = self._feed(offset, length, line, terminated)
        if len(self.anomalies) + len(self._pending) != reported:  # this line is an anomaly
            kinds = dict(self.kinds)
            if counted is not None:  # (a seq_gap or a missing newline still counts)
                kinds[counted] -= 1
            self._close(offset, (offset, line_no, records, legacy, gaps, kinds, last_seq),
                        first)
            self._open = self._state(offset + length)
            self._open_first = None

    def _feed(self, offset: int, length: int, line: LineData, terminated: bool) -> str | None:
        """:meth:`feed` without the stretch bookkeeping; returns the kind the line was counted
        as (None when it was not counted)."""
        self.line_no += 1
        self.bytes = offset + length
        self.terminated = terminated
        if isinstance(line, Overlong):
            self._damage("invalid_json", offset, length,
                         f"line of {line.length} bytes is longer than any record")
            return None
        status, a, b, info = check_line(line)
        if status in (VALID, GAP):
            if self._pending:
                self._flush_pending()
            ok = self._sequenced(a, b, offset, length)
            if not ok:
                return None
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
            return str(info) if status == VALID else None
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
            return str(info)
        elif status == "unsupported_version":
            if self._pending:
                self._flush_pending()
            self.anomalies.append(Anomaly(kind=status, file=self.file, offset=offset,
                                          length=length, line=self.line_no, detail=str(info)))
            self.last_valid_end = offset + length
        else:
            if not terminated and not line:
                return None  # nothing at all after the last newline
            self._damage(status, offset, length, str(info))
        return None

    def finish(self) -> None:
        """End of file: a damaged run after the last valid record is the torn tail."""
        self._close(self.bytes, self._state(self.bytes), self._open_first)
        self._open = self._state(self.bytes)
        self._open_first = None
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

    def _load(self) -> tuple[int, int | None, int | None, int, int]:
        return self.records, self.last_seq, self.first_seq, self.line_no, self.last_valid_end

    def run(self, fd: int, start: int = 0, end: int | None = None, *,
            block: int = BLOCK) -> FileScanner:
        """Scan ``fd`` from ``start`` to ``end`` (EOF when None) and finish.

        Each batch of lines (one block) first has all its checksums verified at once
        (:func:`crcs_match`); when they all match, :meth:`_run_verified` only parses and
        type-checks each line. A batch with a mismatch is checked again in slices of
        ``_SLICE`` lines, and only the slices with a mismatch (or an overlong line) go through
        :meth:`_run_lines`, the per-line path. Lines inside the ``trusted`` ranges are counted
        from their fixed v1 head by :meth:`_run_trusted`. Every line that is not a valid v1
        record with the next seq is handed to :meth:`feed`, so the anomalies are the same as
        feeding every line one by one.
        """
        if self.line_no == self._open[1]:
            self._open = self._state(start)
        pos = start
        terminated = True
        known = [k for k in self.known if k[0] >= start and (end is None or k[1] <= end)]
        if known:
            size = os.fstat(fd).st_size
            known = [k for k in known if k[1] <= size]
        for k_start, k_end, stretch in known:
            if k_start < pos:
                continue
            pos, terminated = self._read(fd, pos, k_start, block)
            if pos != k_start:  # the file ended (or a line crossed k_start): read on normally
                break
            if not self._skip(k_end, stretch):
                pos, terminated = self._read(fd, pos, k_end, block)
            else:
                pos, terminated = k_end, True
        pos, terminated = self._read(fd, pos, end, block)
        self.bytes = max(self.bytes, pos)
        self.terminated = terminated
        self.finish()
        return self

    def _read(self, fd: int, start: int, end: int | None, block: int) -> tuple[int, bool]:
        """Scan the lines from ``start`` to ``end``; returns where they end and whether the
        last one is terminated."""
        off = start
        ends_terminated = True
        trusted = self.trusted
        t_index = self._t_index
        for off, lines, last_terminated in iter_line_batches(fd, start, end, block=block):
            ends_terminated = last_terminated
            tail_line: LineData | None = None
            if not last_terminated:
                tail_line = lines.pop()
            if not lines:
                pass
            elif not trusted or type(lines[0]) is not bytes:
                off = self._run_checked(off, lines)
            else:
                # split the batch at the trusted ranges (line i spans starts[i]..starts[i+1])
                starts = list(itertools.accumulate(
                    map((1).__add__, map(len, cast("list[bytes]", lines))), initial=off))
                k = len(lines)
                batch_end = starts[k]
                i = 0
                while t_index < len(trusted) and trusted[t_index][1] <= starts[i]:
                    t_index += 1
                while t_index < len(trusted) and trusted[t_index][0] < batch_end:
                    t_start, t_end = trusted[t_index]
                    first = bisect.bisect_left(starts, t_start, i, k)
                    past = max(first, bisect.bisect_right(starts, t_end, first, k + 1) - 1)
                    if past > first:
                        if first > i:
                            off = self._run_checked(off, lines[i:first])
                        segment = lines[first:past]
                        if not self._run_trusted(off, segment):
                            self._run_checked(off, segment)
                        off = starts[past]
                        i = past
                    if t_end > batch_end:
                        break
                    t_index += 1
                if i < k:
                    off = self._run_checked(off, lines[i:])
            if tail_line is not None:
                size = tail_line.length if isinstance(tail_line, Overlong) else len(tail_line)
                self.feed(off, size, tail_line, False)
                off += size
            # free this batch before the generator splits the next block (see iter_line_batches)
            lines.clear()
        self._t_index = t_index
        return off, ends_terminated

    def _run_checked(self, off: int, lines: list[LineData]) -> int:
        """Terminated lines with nothing known about them; returns the offset after them."""
        if crcs_match(lines):
            return self._run_verified(off, cast("list[bytes]", lines))
        if len(lines) <= _SLICE:
            return self._run_lines(off, lines)
        for i in range(0, len(lines), _SLICE):
            part = lines[i : i + _SLICE]
            if crcs_match(part):
                off = self._run_verified(off, cast("list[bytes]", part))
            else:
                off = self._run_lines(off, part)
        return off

    def _run_trusted(self, off: int, lines: list[LineData]) -> bool:
        """Lines inside a trusted range: counted in bulk when every one has a fixed v1 head and
        they carry the next seqs; False (nothing changed) otherwise."""
        if self._pending:
            return False
        heads = list(map(_TRUSTED_HEAD.match, cast("list[bytes]", lines)))
        if None in heads:
            return False
        matches = cast("list[re.Match[bytes]]", heads)
        seqs = list(map(int, map(_GROUP_1, matches)))
        n = len(seqs)
        first = seqs[0] if self.last_seq is None else self.last_seq + 1
        if seqs != list(range(first, first + n)):
            return False
        for kind, count in Counter(map(_GROUP_2, matches)).items():
            name = kind.decode("ascii")
            self.kinds[name] = self.kinds.get(name, 0) + count
        end = off + sum(map(len, cast("list[bytes]", lines))) + n
        self.records += n
        self.line_no += n
        if self.first_seq is None:
            self.first_seq = first
        if self._open_first is None:
            self._open_first = first
        self.last_seq = first + n - 1
        self.last_valid_end = self.bytes = end
        self.terminated = True
        self._damage_since_seq = False
        return True

    def _run_verified(self, off: int, lines: list[bytes]) -> int:
        """Terminated lines whose checksums all matched (:func:`crcs_match`); returns the offset
        after them.

        The common case — a v1 event with the next seq, no damage pending — costs one
        ``orjson.loads`` and a few type checks; an audit or dead letter record with the next seq
        is checked inline too; every other line goes to :meth:`feed`.
        """
        loads = orjson.loads
        em = _EVENT_MEMBERS
        fast_ok = _fast_ok
        one = 1
        type_ = type
        str_, dict_, float_, int_ = str, dict, float, int
        n_lines = len(lines)
        i = 0
        while i < n_lines:
            last_seq = self.last_seq
            if last_seq is None or self._pending:
                ln = lines[i]
                self.feed(off, len(ln) + 1, ln, True)
                off += len(ln) + 1
                i += 1
                continue
            first = expect = last_seq + 1
            # loads and the member lookup run inside map(): a line that is not JSON, not an
            # object or not an event raises there and ends the loop like a failed check
            others = {"audit": 0, "dead_letter": 0}
            try:
                for d in map(loads, itertools.islice(lines, i, None)):
                    if type_(d) is not dict_:
                        break
                    try:
                        v, seq, rid, kind, ts, sid, addr, etype, payload = em(d)
                    except KeyError:  # not an event: an audit or dead letter record?
                        kind = d.get("kind")
                        if kind == "audit" or kind == "dead_letter":
                            v, seq, rid = d.get("v"), d.get("seq"), d.get("id")
                            if (seq == expect and v == one and type_(seq) is type_(v) is int_
                                    and type_(rid) is str_ and len(rid) == 32 and fast_ok(d)):
                                others[kind] += 1
                                expect += 1
                                continue
                        break
                    if (seq == expect and v == one and kind == "event" and type_(ts) is float_
                            and type_(sid) is str_ and type_(addr) is str_
                            and type_(etype) is str_ and type_(payload) is dict_
                            and type_(seq) is type_(v) is int_ and type_(rid) is str_
                            and len(rid) == 32):
                        expect += 1
                        continue
                    break
            except Exception:  # not JSON (or anything unforeseen): feed() judges the line
                pass
            n = expect - first
            if n:
                j = i + n
                size = sum(map(len, itertools.islice(lines, i, j))) + n
                off += size
                self.records += n
                events = n
                for kind, count in others.items():
                    if count:
                        self.kinds[kind] = self.kinds.get(kind, 0) + count
                        events -= count
                if events:
                    self.kinds["event"] = self.kinds.get("event", 0) + events
                self.line_no += n
                if self.first_seq is None:
                    self.first_seq = first
                if self._open_first is None:
                    self._open_first = first
                self.last_seq = expect - 1
                self.last_valid_end = off
                self.bytes = off
                self.terminated = True
                self._damage_since_seq = False
                i = j
            if i < n_lines:
                ln = lines[i]
                self.feed(off, len(ln) + 1, ln, True)
                off += len(ln) + 1
                i += 1
        return off

    def _run_lines(self, off: int, lines: Sequence[LineData]) -> int:
        """Terminated lines checked one by one (a batch with damage, an overlong line or
        trusted ranges); returns the offset after them.

        The common case — a terminated, checksum-valid v1 data record with the next seq and no
        damage pending — is handled inline with local state; everything else goes through
        :meth:`feed` (state is written back before and read again after).
        """
        loads = orjson.loads
        decode_error = orjson.JSONDecodeError
        crc32 = zlib.crc32
        fast_ok = _fast_ok
        crc_prefix = _CRC_PREFIX
        k_comma = _K_COMMA
        event_members = _EVENT_MEMBERS
        pending = self._pending
        records, last_seq, first_seq, line_no, valid_end = self._load()
        open_first = self._open_first
        counts = {"event": 0, "audit": 0, "dead_letter": 0}
        fast = False
        trusted = self.trusted or [(-1, -1)]
        t_index = 0
        t_start, t_end = trusted[0]
        t_last = len(trusted) - 1
        trusted_head = _TRUSTED_HEAD.match
        seq: Any = None
        kind: Any = None
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
                            if open_first is None:
                                open_first = seq
                            last_seq = seq
                            off += len(ln) + 1
                            valid_end = off
                            continue
                n = len(ln)
                if (n > _CRC_TAIL and ln.startswith(crc_prefix, n - _CRC_TAIL)
                        and ln.endswith(b'"}')
                        and b"%08x" % (crc32(ln[: n - _CRC_TAIL + 1]) ^ k_comma)
                        == ln[n - 10 : n - 2]
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
                                  and type(etype) is str and type(payload) is dict)
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
                            if open_first is None:
                                open_first = seq
                            last_seq = seq
                            off += n + 1
                            valid_end = off
                            continue
                size = n + 1
            else:
                assert isinstance(ln, Overlong)
                size = ln.length + 1
            if fast:  # fast lines since the last sync: write their counts back
                self._sync(records, last_seq, first_seq, line_no, valid_end, fast)
                self._merge(counts, open_first)
            self.feed(off, size, ln, True)
            fast = False
            records, last_seq, first_seq, line_no, valid_end = self._load()
            open_first = self._open_first
            off += size
        self._sync(records, last_seq, first_seq, line_no, valid_end, fast)
        self._merge(counts, open_first)
        if off > self.bytes:
            self.bytes = off
            self.terminated = True
        return off

    def _merge(self, counts: dict[str, int], open_first: int | None) -> None:
        """Write the per-line path's kind counts (then zeroed) and stretch start back."""
        for kind, count in counts.items():
            if count:
                self.kinds[kind] = self.kinds.get(kind, 0) + count
                counts[kind] = 0
        self._open_first = open_first

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

