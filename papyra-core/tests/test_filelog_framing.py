"""papyra.filelog framing: line iteration both ways, the line classifier, the scanner."""

from __future__ import annotations

import os
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from papyra import codec
from papyra.filelog import framing
from papyra.filelog.writer import (
    digits_between,
    encode_body,
    line_size,
    lines_size,
    sequence_line,
    stamp,
)
from papyra.records import GapRecord
from papyra.testing import sample_records


def _fd(path: Path, data: bytes) -> int:
    path.write_bytes(data)
    return os.open(path, os.O_RDONLY)


def _expected_lines(data: bytes) -> list[tuple[int, int, bytes, bool]]:
    out = []
    off = 0
    parts = data.split(b"\n")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if last and not part:
            break
        size = len(part) + (0 if last else 1)
        out.append((off, size, part, not last))
        off += size
    return out


lines_data = st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"x")),
                      max_size=30).flatmap(
    lambda ls: st.booleans().map(lambda term: b"\n".join(ls) + (b"\n" if term and ls else b"")))


@settings(max_examples=150, deadline=None)
@given(data=lines_data, block=st.integers(1, 64))
def test_forward_and_backward_line_iteration_agree_with_split(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, block: int
) -> None:
    path = tmp_path_factory.mktemp("f") / "log"
    fd = _fd(path, data)
    try:
        expected = _expected_lines(data)
        assert list(framing.iter_lines(fd, block=block)) == expected
        assert list(framing.iter_lines_reverse(fd, len(data), block=block)) == expected[::-1]
    finally:
        os.close(fd)


def test_forward_reading_to_eof_also_reads_lines_appended_meanwhile(tmp_path: Path) -> None:
    # reads are sized by fstat (no empty pread at EOF); the size is taken again when reached
    path = tmp_path / "log"
    fd = _fd(path, b"a\nb\n")
    try:
        it = framing.iter_line_batches(fd, block=2)
        assert next(it) == (0, [b"a"], True)
        with open(path, "ab") as f:
            f.write(b"c\nd")
        assert list(it) == [(2, [b"b"], True), (4, [b"c"], True), (6, [b"d"], False)]
    finally:
        os.close(fd)


def test_forward_reading_stops_quietly_when_the_file_shrinks_under_it(tmp_path: Path) -> None:
    path = tmp_path / "log"
    fd = _fd(path, b"one\ntwo\nthree\n")
    try:
        it = framing.iter_lines(fd, block=4)
        assert next(it) == (0, 4, b"one", True)
        os.truncate(path, 4)
        assert list(it) == []
    finally:
        os.close(fd)


def test_an_overlong_line_is_reported_without_being_kept_in_memory(tmp_path: Path) -> None:
    fd = _fd(tmp_path / "log", b"ok\n" + b"x" * 5000 + b"\nend\n")
    try:
        got = list(framing.iter_lines(fd, block=256, max_line=1000))
    finally:
        os.close(fd)
    assert got[0] == (0, 3, b"ok", True)
    assert got[1] == (3, 5001, framing.Overlong(5000), True)
    assert got[2] == (5004, 4, b"end", True)


def test_the_writer_frames_lines_exactly_as_the_codec_does() -> None:
    for i, rec in enumerate(sample_records(12)):
        assert sequence_line(encode_body(rec), i + 1) == codec.encode(rec, i + 1)
        stamped = stamp(rec, 7)
        assert type(stamped) is type(rec)
        assert attrs.asdict(stamped) == {**attrs.asdict(rec), "seq": 7}
        # a record that already carries a seq is encoded without it; the writer's seq wins
        assert sequence_line(encode_body(stamp(rec, 99)), i + 1) == codec.encode(rec, i + 1)


def test_stamping_keeps_the_legacy_flag_and_leaves_the_original_alone() -> None:
    rec = attrs.evolve(sample_records(1)[0], legacy=True)
    stamped = stamp(rec, 3)
    assert (stamped.seq, stamped.legacy, rec.seq) == (3, True, None)


@given(lo=st.integers(1, 10**15), count=st.integers(0, 3000))
def test_digit_counts_and_line_sizes_match_the_framed_lines(lo: int, count: int) -> None:
    assert digits_between(lo, lo + count) == sum(len(str(s)) for s in range(lo, lo + count))
    bodies = [encode_body(r) for r in sample_records(3)] * 2
    lines = [sequence_line(b, lo + i) for i, b in enumerate(bodies)]
    assert lines_size(bodies, lo) == sum(map(len, lines))
    assert [line_size(b, lo + i) for i, b in enumerate(bodies)] == list(map(len, lines))


@settings(max_examples=300, deadline=None)
@given(pos=st.integers(0, 400), value=st.integers(0, 255), which=st.integers(0, 11))
def test_the_fast_line_check_agrees_with_the_codec_on_damaged_lines(
    pos: int, value: int, which: int
) -> None:
    rec = sample_records(12)[which]
    line = bytearray(codec.encode(rec, which + 1)[:-1])
    line[pos % len(line)] = value
    status, seq, _through, _info = framing.check_line(bytes(line))
    assert (status, seq) == _codec_verdict(bytes(line))


def _codec_verdict(line: bytes) -> tuple[str, int | None]:
    try:
        decoded = codec.decode(line)
    except codec.DecodeError as exc:
        return exc.kind, None
    if isinstance(decoded, GapRecord):
        return framing.GAP, decoded.seq
    return (framing.LEGACY if decoded.legacy else framing.VALID), decoded.seq


def test_gap_and_legacy_lines_are_classified() -> None:
    gap = codec.encode(GapRecord(seq=3, through=9, reason="retention"))[:-1]
    assert framing.check_line(gap)[:3] == ("gap", 3, 9)
    legacy = (b'{"kind": "event", "system_id": "s", "actor_address": "s:1", '
              b'"event_type": "E", "payload": {}, "timestamp": 1.5}')
    assert framing.check_line(legacy)[0] == "legacy"
    assert framing.check_line(b"")[0] == "invalid_json"
    assert framing.check_line(b"\xff\xfe")[0] == "invalid_utf8"


def _log(records: int) -> bytes:
    return b"".join(codec.encode(r, i + 1) for i, r in enumerate(sample_records(records)))


def test_the_scanner_tells_a_torn_tail_from_mid_file_damage(tmp_path: Path) -> None:
    data = _log(5)
    lines = data.splitlines(keepends=True)
    torn = data + lines[0][:40]
    fd = _fd(tmp_path / "a", torn)
    sc = framing.FileScanner("a").run(fd)
    os.close(fd)
    assert [(a.kind, a.offset, a.length, a.line) for a in sc.anomalies] == [
        ("truncated_tail", len(data), 40, 6)]
    mid = b"".join(lines[:2]) + b"garbage\n" + b"".join(lines[2:])
    fd = _fd(tmp_path / "b", mid)
    sc = framing.FileScanner("b").run(fd)
    os.close(fd)
    assert [(a.kind, a.offset, a.length, a.line) for a in sc.anomalies] == [
        ("invalid_json", len(lines[0]) + len(lines[1]), 8, 3)]
    assert sc.records == 5
    assert sc.last_seq == 5


def test_the_scanner_reports_seq_gaps_and_regressions(tmp_path: Path) -> None:
    recs = sample_records(4)
    data = (codec.encode(recs[0], 1) + codec.encode(recs[1], 2) + codec.encode(recs[2], 5)
            + codec.encode(recs[3], 4))
    fd = _fd(tmp_path / "log", data)
    sc = framing.FileScanner("log").run(fd)
    os.close(fd)
    assert [a.kind for a in sc.anomalies] == ["seq_gap", "seq_regression"]
    assert sc.anomalies[0].line == 3
    assert "3..4" in sc.anomalies[0].detail


def test_a_valid_last_record_without_its_newline_is_missing_trailing_newline(
    tmp_path: Path,
) -> None:
    data = _log(3)[:-1]
    fd = _fd(tmp_path / "log", data)
    sc = framing.FileScanner("log").run(fd)
    os.close(fd)
    assert [a.kind for a in sc.anomalies] == ["missing_trailing_newline"]
    assert sc.records == 3


def test_last_sequenced_skips_a_torn_tail(tmp_path: Path) -> None:
    data = _log(4)
    fd = _fd(tmp_path / "log", data + b'{"v":1,"se')
    try:
        assert framing.last_sequenced(fd, len(data) + 10) == (4, len(data), False)
    finally:
        os.close(fd)


@pytest.mark.parametrize("target", [0, 1, 17, 299, 300, 400])
def test_offset_after_seq_never_skips_a_wanted_record(tmp_path: Path, target: int) -> None:
    recs = sample_records(300)
    data = b"".join(codec.encode(r, i + 1) for i, r in enumerate(recs))
    fd = _fd(tmp_path / "log", data)
    try:
        off = framing.offset_after_seq(fd, len(data), target, window=512)
        seqs = [framing.check_line(ln)[1] for _o, _s, ln, _t in framing.iter_lines(fd, off)
                if isinstance(ln, bytes)]
    finally:
        os.close(fd)
    wanted = [s for s in range(1, 301) if s > target]
    assert seqs[len(seqs) - len(wanted):] == wanted
    assert len(seqs) - len(wanted) <= 10  # it bisected close to the answer

