"""The scanner's batch paths report exactly what feeding every line one by one reports.

``FileScanner.run`` checks the checksums of a whole block at once (``crcs_match``) and then
only parses each line; blocks with damage go line by line. These tests compare ``run`` with
the plain reference (``iter_lines`` + ``feed`` + ``finish``) on damaged logs, with block sizes
that put batch boundaries everywhere.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from papyra import codec
from papyra.filelog import framing
from papyra.records import EventRecord, GapRecord
from papyra.testing import sample_records


def _frame(obj: dict[str, Any]) -> bytes:
    """A line (without newline) with a correct crc for whatever object it carries."""
    return codec.frame(orjson.dumps(obj))[:-1]


def _events(n: int, start: int = 1) -> list[bytes]:
    return [codec.encode(EventRecord(system_id="s", actor_address=f"s:{i}", event_type="E",
                                     payload={"n": i}, id=f"{i:032x}", timestamp=1.5e9 + i),
                         start + i)[:-1] for i in range(n)]


_MIXED = [codec.encode(attrs.evolve(r, id=f"{i:032x}"), i + 1)[:-1]
          for i, r in enumerate(sample_records(60, base_timestamp=1.5e9))]


def _mixed(n: int) -> list[bytes]:
    return _MIXED[:n]


_ALL = frozenset(_MIXED + _events(60) + _events(60, start=2) + _events(60, start=3))


def _state(sc: framing.FileScanner) -> dict[str, Any]:
    return {
        "anomalies": [(a.kind, a.offset, a.length, a.line, a.detail) for a in sc.anomalies],
        "records": sc.records, "legacy": sc.legacy_records, "gaps": sc.gaps,
        "bytes": sc.bytes, "first": sc.first_seq, "last": sc.last_seq,
        "valid_end": sc.last_valid_end, "terminated": sc.terminated, "line": sc.line_no,
        "kinds": {k: v for k, v in sc.kinds.items() if v},
    }


def _reference(fd: int, **kw: Any) -> dict[str, Any]:
    sc = framing.FileScanner("log", **kw)
    for off, size, line, terminated in framing.iter_lines(fd):
        sc.feed(off, size, line, terminated)
    sc.finish()
    return _state(sc)


def _assert_paths_agree(path: Path, data: bytes, blocks: tuple[int, ...] = (64, 333, 1 << 20),
                        **kw: Any) -> dict[str, Any]:
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        expected = _reference(fd, **kw)
        for block in blocks:
            scanner = framing.FileScanner("log", **kw).run(fd, block=block)
            assert _state(scanner) == expected, block
            # the same bytes with the clean stretches known (as after a verbatim copy)
            known = [(x.start, x.end, x) for x in scanner.stretches]
            again = framing.FileScanner("log", known=known, **kw).run(fd, block=block)
            assert _state(again) == expected, ("known", block)
            assert again.stretches == scanner.stretches
    finally:
        os.close(fd)
    return expected


def test_the_comma_constant_turns_a_cut_line_checksum_into_the_body_checksum() -> None:
    for line in [b"", b"{", *_events(3), *_mixed(6)]:
        assert zlib.crc32(line + b"}") == zlib.crc32(line + b",") ^ framing._K_COMMA


def test_crcs_match_accepts_exactly_the_lines_whose_checksum_the_codec_accepts() -> None:
    lines = _mixed(9)
    assert framing.crcs_match(lines)
    assert framing.crcs_match([])
    for i, line in enumerate(lines):
        for pos in range(len(line)):
            for bit in (0, 5):
                bad = bytearray(line)
                bad[pos] ^= 1 << bit
                batch = [*lines[:i], bytes(bad), *lines[i + 1 :]]
                codec_ok = True
                try:
                    codec.decode(bytes(bad))
                except codec.DecodeError as exc:
                    codec_ok = exc.kind != "checksum_mismatch"
                if framing.crcs_match(batch):
                    assert codec_ok, (i, pos, bit)


@pytest.mark.parametrize("line", [
    b"",
    b'"}',
    b',"crc":"00000000"}',
    b'{,"crc":"%08x"}' % zlib.crc32(b"{}"),
])
def test_crcs_match_refuses_short_and_hollow_lines(line: bytes) -> None:
    good = _events(2)
    assert not framing.crcs_match([good[0], line, good[1]]) or line.startswith(b"{,")
    # the last one has a correct crc but is not JSON: the scanner still reports it
    sc_line = framing.check_line(line)
    assert sc_line[0] not in (framing.VALID, framing.GAP)


def test_crcs_match_refuses_upper_case_and_prefixed_hex_digits() -> None:
    line = _events(1)[0]
    digits = line[-10:-2]
    for fake in (digits.upper(), b"0x" + digits[2:], b" " + digits[1:]):
        if fake == digits:
            continue
        forged = line[:-10] + fake + b'"}'
        assert not framing.crcs_match([forged])
    assert framing.crcs_match([line])


def test_crcs_match_refuses_an_overlong_line() -> None:
    assert not framing.crcs_match([_events(1)[0], framing.Overlong(10)])


def test_a_crc_valid_event_whose_payload_is_not_an_object_is_a_schema_violation(
    tmp_path: Path,
) -> None:
    lines = _events(6)
    bad = orjson.loads(lines[3])
    del bad["crc"]
    bad["payload"] = [1, 2]
    lines[3] = _frame(bad)
    data = b"\n".join(lines) + b"\n"
    got = _assert_paths_agree(tmp_path / "log", data)
    assert [a[0] for a in got["anomalies"]] == ["schema_violation"]
    assert got["anomalies"][0][1:4] == (sum(len(x) + 1 for x in lines[:3]), len(lines[3]) + 1, 4)


@pytest.mark.parametrize("change", [
    ("v", True), ("v", 1.0), ("v", 2), ("seq", 4.0), ("seq", True), ("seq", "4"),
    ("id", "x" * 31), ("id", 7), ("kind", "Event"), ("timestamp", "now"),
    ("timestamp", None), ("system_id", 1), ("actor_address", None), ("event_type", []),
    ("payload", None), ("payload", "text"), ("kind", ["event"]), ("kind", {"a": 1}),
    ("kind", "audit"), ("kind", "dead_letter"), ("kind", "gap"), ("kind", None),
])
def test_crc_valid_events_with_wrong_members_are_reported_as_line_by_line(
    tmp_path: Path, change: tuple[str, Any]
) -> None:
    lines = _events(6)
    obj = orjson.loads(lines[3])
    del obj["crc"]
    obj[change[0]] = change[1]
    lines[3] = _frame(obj)
    got = _assert_paths_agree(tmp_path / "log", b"\n".join(lines) + b"\n")
    assert got["anomalies"], change


@pytest.mark.parametrize("which", [1, 2])  # an audit record, a dead letter
@pytest.mark.parametrize("change", [
    ("v", True), ("seq", 2.0), ("id", None), ("kind", ["audit"]), ("timestamp", "x"),
    ("system_id", 3), ("total_actors", -1), ("total_actors", True), ("registry_orphans", {}),
    ("actors", 5), ("message_type", None), ("target", 1), ("expects_reply", 1),
    ("payload", "kept"), ("kind", "event"),
])
def test_crc_valid_audit_and_dead_letter_lines_with_wrong_members_are_reported_alike(
    tmp_path: Path, which: int, change: tuple[str, Any]
) -> None:
    lines = _mixed(9)
    obj = orjson.loads(lines[3 + which])
    del obj["crc"]
    obj[change[0]] = change[1]
    lines[3 + which] = _frame(obj)
    _assert_paths_agree(tmp_path / "log", b"\n".join(lines) + b"\n")


def test_an_integer_timestamp_and_an_extra_member_are_still_valid_records(tmp_path: Path) -> None:
    lines = _events(5)
    for i, (key, value) in enumerate([("timestamp", 12), ("extra", {"a": 1})]):
        obj = orjson.loads(lines[i + 1])
        del obj["crc"]
        obj[key] = value
        lines[i + 1] = _frame(obj)
    got = _assert_paths_agree(tmp_path / "log", b"\n".join(lines) + b"\n")
    assert got["anomalies"] == []
    assert got["records"] == 5


def test_trusted_ranges_give_the_same_report(tmp_path: Path) -> None:
    lines = _mixed(30)
    lines[7] = lines[7][:20]
    data = b"\n".join(lines) + b"\n"
    end = len(data)
    for trusted in ([(0, end)], [(0, 100), (500, 900)], [(300, end)]):
        _assert_paths_agree(tmp_path / "log", data, trusted=trusted)


def test_trusted_ranges_still_check_seqs_and_report_what_they_cover(tmp_path: Path) -> None:
    """Trust only skips checksums: a repeated or skipped seq inside a trusted range is
    still reported, and a damaged line inside one is still damage."""
    lines = [*_events(10), *_events(4, start=5), *_events(3, start=20), b"{broken"]
    lines += _events(3, start=23)
    data = b"\n".join(lines) + b"\n"
    got = _assert_paths_agree(tmp_path / "log", data, blocks=(64, 500, 1 << 20),
                              trusted=[(0, len(data))])
    assert [a[0] for a in got["anomalies"]] == [
        "seq_regression", "seq_regression", "seq_regression", "seq_regression", "seq_gap",
        "invalid_json"]


def test_gaps_legacy_and_other_kinds_between_events(tmp_path: Path) -> None:
    lines = [*_events(4), codec.encode(GapRecord(seq=5, through=9, reason="r"))[:-1]]
    lines += _events(3, start=10)
    lines += [b'{"kind": "event", "system_id": "s", "actor_address": "s:1", '
              b'"event_type": "E", "payload": {}, "timestamp": 1.5}']
    lines += _events(2, start=13) + _mixed(3)
    got = _assert_paths_agree(tmp_path / "log", b"\n".join(lines) + b"\n")
    assert got["gaps"] == 1
    assert got["legacy"] == 1


_DAMAGE = st.sampled_from(["flip", "byte", "cut", "drop", "dup", "swap", "empty", "garbage",
                           "upper", "seq", "gap", "legacy"])
_LEGACY = (b'{"kind": "event", "system_id": "s", "actor_address": "s:1", '
           b'"event_type": "E", "payload": {}, "timestamp": 1.5}')


@st.composite
def damaged_logs(draw: st.DrawFn) -> bytes:
    mixed = draw(st.booleans())
    n = draw(st.integers(0, 50))
    lines = _mixed(n) if mixed else _events(n, start=draw(st.integers(1, 3)))
    for _ in range(draw(st.integers(0, 4))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        kind = draw(_DAMAGE)
        line = bytearray(lines[i])
        if kind == "flip" and line:
            pos = draw(st.integers(0, len(line) - 1))
            line[pos] ^= 1 << draw(st.integers(0, 7))
            if line[pos] == 10:
                line[pos] = 0
            lines[i] = bytes(line)
        elif kind == "byte" and line:
            pos = draw(st.integers(0, len(line) - 1))
            line[pos] = draw(st.integers(0, 255).filter(lambda b: b != 10))
            lines[i] = bytes(line)
        elif kind == "cut":
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        elif kind == "drop":
            del lines[i]
        elif kind == "dup":
            lines.insert(i, lines[i])
        elif kind == "swap" and i + 1 < len(lines):
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
        elif kind == "empty":
            lines.insert(i, b"")
        elif kind == "garbage":
            lines.insert(i, draw(st.binary(max_size=30)).replace(b"\n", b" "))
        elif kind == "gap":
            seq = orjson.loads(lines[i]).get("seq") if lines[i] in _ALL else None
            if type(seq) is int:
                lines[i] = codec.encode(GapRecord(seq=seq, through=seq, reason="r",
                                                  id="f" * 32, timestamp=1.5e9))[:-1]
        elif kind == "legacy":
            lines.insert(i, _LEGACY)
        elif kind == "upper":
            lines[i] = lines[i][:-10] + lines[i][-10:].upper()
        elif kind == "seq":
            try:
                obj = orjson.loads(lines[i])
            except orjson.JSONDecodeError:
                obj = None
            if isinstance(obj, dict) and type(obj.get("seq")) is int:
                obj.pop("crc", None)
                obj["seq"] = draw(st.sampled_from([obj["seq"] + 2, obj["seq"] - 1, 0, -3]))
                lines[i] = _frame(obj)
    data = b"\n".join(lines)
    if lines and draw(st.booleans()):
        data += b"\n"
    return data


@settings(max_examples=300, deadline=None)
@given(data=damaged_logs(), block=st.integers(16, 2000), last_file=st.booleans(),
       expect=st.sampled_from([None, 1, 2, 5]))
def test_the_batch_paths_report_exactly_what_line_by_line_feeding_reports(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, block: int, last_file: bool,
    expect: int | None,
) -> None:
    path = tmp_path_factory.mktemp("scan") / "log"
    _assert_paths_agree(path, data, blocks=(block, 1 << 20), last_file=last_file,
                        expect_seq=expect)


@settings(max_examples=100, deadline=None)
@given(data=damaged_logs(), cut=st.integers(0, 4000))
def test_trusted_ranges_never_change_the_report_of_bytes_that_are_valid(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, cut: int
) -> None:
    """Trusted ranges only cover bytes a previous scan found valid; with those, same report."""
    path = tmp_path_factory.mktemp("scan") / "log"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        first = framing.FileScanner("log").run(fd)
        bad = sorted((a.offset, a.offset + max(a.length, 1)) for a in first.anomalies)
        trusted: list[tuple[int, int]] = []
        pos = 0
        for s, e in bad:
            if s > pos:
                trusted.append((pos, s))
            pos = max(pos, e)
        if first.last_valid_end > pos:
            trusted.append((pos, first.last_valid_end))
        trusted = [(s, e) for s, e in trusted if e > s and s != cut]
        expected = _state(first)
        for block in (64, 1 << 20):
            got = _state(framing.FileScanner("log", trusted=trusted).run(fd, block=block))
            assert got == expected
    finally:
        os.close(fd)


@settings(max_examples=150, deadline=None)
@given(data=damaged_logs(), keep=st.lists(st.booleans(), max_size=12),
       block=st.integers(16, 3000))
def test_known_clean_stretches_are_counted_without_changing_the_report(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, keep: list[bool], block: int
) -> None:
    """A scan's stretches partition its clean lines; handed back as ``known`` ranges of the
    same bytes (what a repair's verbatim copy is), the report is the same."""
    path = tmp_path_factory.mktemp("scan") / "log"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        first = framing.FileScanner("log").run(fd, block=block)
        stretches = first.stretches
        # lines that are anomalies yet still count (a seq_gap, a missing newline) are outside
        assert sum(s.records for s in stretches) <= first.records
        assert sum(s.gaps for s in stretches) <= first.gaps
        assert sum(s.legacy_records for s in stretches) <= first.legacy_records
        if not first.anomalies:
            assert sum(s.records for s in stretches) == first.records
            assert sum(s.lines for s in stretches) == first.line_no
        for a in first.anomalies:
            for s in stretches:
                assert a.offset >= s.end or a.offset + a.length <= s.start, (a, s)
        known = [(s.start, s.end, s) for i, s in enumerate(stretches)
                 if i >= len(keep) or keep[i]]
        again = framing.FileScanner("log", known=known).run(fd, block=block)
        assert _state(again) == _state(first)
        assert again.stretches == first.stretches or known != []
    finally:
        os.close(fd)


def test_a_known_stretch_that_does_not_continue_the_seqs_is_read(tmp_path: Path) -> None:
    lines = _events(10)
    data = b"\n".join(lines) + b"\n"
    path = tmp_path / "log"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        whole = framing.FileScanner("log").run(fd)
        (stretch,) = whole.stretches
        assert (stretch.start, stretch.end, stretch.lines) == (0, len(data), 10)
        assert (stretch.first_seq, stretch.last_seq) == (1, 10)
        # a scanner that expects seq 5 first must report the regression, not skip it
        sc = framing.FileScanner("log", expect_seq=5, known=[(0, len(data), stretch)]).run(fd)
        ref = _reference(fd, expect_seq=5)
        assert _state(sc) == ref
        assert [a[0] for a in ref["anomalies"]][:1] == ["seq_regression"]
        # a known range past the end of the file is never trusted
        sc = framing.FileScanner("log", known=[(0, len(data) + 5, stretch)]).run(fd)
        assert _state(sc) == _reference(fd)
    finally:
        os.close(fd)
