"""The v1 codec: every record round-trips, every single-byte change is detected, legacy 0.3.0
lines parse, values JSON cannot carry encode deterministically, NaN and Infinity are refused."""

from __future__ import annotations

import dataclasses
import json
import math
import zlib
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from papyra import codec
from papyra.codec import DecodeError, EncodeError
from papyra.records import (
    AuditRecord,
    DeadLetterRecord,
    EventRecord,
    GapRecord,
    StoredRecord,
    new_record_id,
)

# Enough examples to find the interesting cases, few enough for a shared 2-core machine; no
# deadline, because load from other processes must not turn a slow example into a failure.
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- strategies

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
floats = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | ints | floats | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
json_objects = st.dictionaries(text, json_values, max_size=5)
timestamps = st.floats(min_value=0, max_value=4e9, allow_nan=False)
counts = st.integers(min_value=0, max_value=2**31)
record_ids = st.builds(new_record_id)

events = st.builds(
    EventRecord, system_id=text, actor_address=text, event_type=text, payload=json_objects,
    timestamp=timestamps, id=record_ids,
)
audits = st.builds(
    AuditRecord, system_id=text, total_actors=counts, alive_actors=counts,
    stopping_actors=counts, restarting_actors=counts, registry_size=counts,
    registry_orphans=st.lists(text, max_size=3), registry_dead=st.lists(text, max_size=3),
    dead_letters_count=counts,
    actors=st.none() | st.lists(json_objects, max_size=3).map(tuple),
    timestamp=timestamps, id=record_ids,
)
dead_letters = st.builds(
    DeadLetterRecord, system_id=text, target=st.none() | text, message_type=text,
    payload=json_values, expects_reply=st.booleans(), timestamp=timestamps, id=record_ids,
)
records = events | audits | dead_letters
seqs = st.integers(min_value=1, max_value=2**63 - 1)


@st.composite
def gaps(draw: st.DrawFn) -> GapRecord:
    seq = draw(seqs)
    return GapRecord(seq=seq, through=draw(st.integers(min_value=seq, max_value=2**63 - 1)),
                     reason=draw(st.sampled_from(["retention", "repair"])),
                     quarantine=draw(st.none() | text), timestamp=draw(timestamps))


def same(a: StoredRecord, b: StoredRecord) -> bool:
    return a == b and a.seq == b.seq and type(a) is type(b)


# --------------------------------------------------------------------------- round trips


@given(records, seqs)
@FAST
def test_any_record_round_trips_with_its_seq(record: Any, seq: int) -> None:
    line = codec.encode(record, seq)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    back = codec.decode(line[:-1])
    assert back == record
    assert back.seq == seq
    assert not back.legacy


@given(gaps())
@FAST
def test_any_gap_record_round_trips(gap: GapRecord) -> None:
    assert same(codec.decode(codec.encode(gap)[:-1]), gap)


@given(records, seqs)
@FAST
def test_the_crc_is_the_last_member_and_covers_the_line_without_it(record: Any, seq: int) -> None:
    line = codec.encode(record, seq)[:-1]
    body, _, tail = line.rpartition(b',"crc":"')
    assert tail.endswith(b'"}')
    crc = tail[:-2].decode()
    assert crc == f"{zlib.crc32(body + b'}'):08x}"
    members = list(orjson.loads(line))
    assert members[:5] == ["v", "seq", "id", "kind", "timestamp"]
    assert members[-1] == "crc"


@given(records, seqs, st.data())
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_single_byte_change_inside_a_v1_line_is_detected(
    record: Any, seq: int, data: st.DataObject
) -> None:
    line = bytearray(codec.encode(record, seq)[:-1])
    pos = data.draw(st.integers(min_value=0, max_value=len(line) - 1), label="position")
    new = data.draw(st.integers(min_value=0, max_value=255), label="byte")
    assume(new != line[pos])
    line[pos] = new
    with pytest.raises(DecodeError):
        codec.decode(bytes(line))


def test_every_single_byte_change_of_one_line_is_detected_exhaustively() -> None:
    line = codec.encode(EventRecord(system_id="s", actor_address="s:1", event_type="E",
                                    payload={"é": [1, 2.5, None]}), 3)[:-1]
    for pos in range(len(line)):
        for new in range(256):
            if new == line[pos]:
                continue
            damaged = line[:pos] + bytes([new]) + line[pos + 1:]
            with pytest.raises(DecodeError):
                codec.decode(damaged)


@given(records, seqs)
@settings(max_examples=15, deadline=None)
def test_a_line_cut_short_is_detected(record: Any, seq: int) -> None:
    line = codec.encode(record, seq)[:-1]
    for cut in range(len(line)):
        with pytest.raises(DecodeError):
            codec.decode(line[:cut])


# --------------------------------------------------------------------------- decode errors


def test_decode_errors_carry_the_anomaly_kind() -> None:
    good = codec.encode(EventRecord(system_id="s", actor_address="a", event_type="E"), 1)[:-1]
    cases = {
        b"": "invalid_json",
        b"{not json": "invalid_json",
        b'{"kind": "event", "x": "\xff\xfe"}': "invalid_utf8",
        b"[1, 2]": "schema_violation",
        b'{"kind": "metric", "timestamp": 1}': "schema_violation",
        # the crc's last hex digit changed (to a digit it is not: random ids and times)
        good[:-3] + (b'1"}' if good[-3:-2] == b"0" else b'0"}'): "checksum_mismatch",
        good.replace(b'"seq":1', b'"seq":0'): "checksum_mismatch",
    }
    for line, kind in cases.items():
        with pytest.raises(DecodeError) as info:
            codec.decode(line)
        assert info.value.kind == kind, line


def reframe(members: dict[str, Any]) -> bytes:
    return codec.frame(orjson.dumps(members))[:-1]


def test_a_newer_format_version_is_unsupported_not_corrupt() -> None:
    members = codec.record_members(EventRecord(system_id="s", actor_address="a", event_type="E"),
                                   4)
    members["v"] = 2
    with pytest.raises(DecodeError) as info:
        codec.decode(reframe(members))
    assert info.value.kind == "unsupported_version"


@pytest.mark.parametrize(("change", "kind"), [
    ({"seq": 0}, "schema_violation"),
    ({"seq": "3"}, "schema_violation"),
    ({"id": "short"}, "schema_violation"),
    ({"timestamp": "now"}, "schema_violation"),
    ({"payload": [1]}, "schema_violation"),
    ({"actor_address": None}, "schema_violation"),
    ({"kind": "nope"}, "schema_violation"),
])
def test_a_v1_line_with_a_valid_crc_but_bad_members_is_a_schema_violation(
    change: dict[str, Any], kind: str
) -> None:
    members = codec.record_members(EventRecord(system_id="s", actor_address="a", event_type="E"),
                                   4)
    members.update(change)
    with pytest.raises(DecodeError) as info:
        codec.decode(reframe(members))
    assert info.value.kind == kind


def test_a_line_with_v_but_no_crc_is_never_taken_for_a_legacy_line() -> None:
    line = b'{"v":1,"seq":1,"kind":"event","system_id":"s","actor_address":"a",' \
           b'"event_type":"E","payload":{},"timestamp":1.0}'
    with pytest.raises(DecodeError) as info:
        codec.decode(line)
    assert info.value.kind == "schema_violation"
    with pytest.raises(DecodeError):
        codec.decode(line.replace(b'"v":1', b'"crc":"00000000"'))


def test_decode_record_refuses_gap_records() -> None:
    line = codec.encode(GapRecord(seq=1, through=2, reason="repair"))[:-1]
    assert isinstance(codec.decode(line), GapRecord)
    with pytest.raises(DecodeError, match="gap"):
        codec.decode_record(line)


# --------------------------------------------------------------------------- legacy lines

legacy_events = st.fixed_dictionaries({
    "kind": st.just("event"), "system_id": text, "actor_address": text, "event_type": text,
    "payload": json_objects, "timestamp": timestamps,
})
legacy_audits = st.fixed_dictionaries({
    "kind": st.just("audit"), "system_id": text, "timestamp": timestamps,
    "total_actors": counts, "alive_actors": counts, "stopping_actors": counts,
    "restarting_actors": counts, "registry_size": counts,
    "registry_orphans": st.lists(text, max_size=3), "registry_dead": st.lists(text, max_size=3),
    "dead_letters_count": counts,
})
legacy_dead_letters = st.fixed_dictionaries({
    "kind": st.just("dead_letter"), "system_id": text, "target": st.none() | text,
    "message_type": text, "payload": json_values, "timestamp": timestamps,
})


@given(legacy_events | legacy_audits | legacy_dead_letters, st.booleans(), st.randoms())
@FAST
def test_legacy_lines_parse_in_any_key_order_and_either_ascii_mode(
    obj: dict[str, Any], ensure_ascii: bool, rnd: Any
) -> None:
    keys = list(obj)
    rnd.shuffle(keys)
    line = json.dumps({k: obj[k] for k in keys}, ensure_ascii=ensure_ascii).encode()
    rec = codec.decode(line)
    assert rec.legacy
    assert rec.seq is None
    assert rec.kind == obj["kind"]
    for key, value in obj.items():
        if key == "kind":
            continue
        got = getattr(rec, key)
        assert (list(got) if isinstance(got, tuple) else got) == value, key
    assert rec.id == codec.legacy_id(line)
    assert codec.decode(line).id == rec.id


def test_real_papyra_030_lines_parse_as_legacy_records() -> None:
    lines = [
        b'{"kind": "event", "system_id": "demo", "actor_address": "demo:1", "event_type": '
        b'"ActorCrashed", "payload": {"error": "ValueError: kaboom", "reason": '
        b'"ValueError: kaboom"}, "timestamp": 244.834392987}',
        b'{"kind": "dead_letter", "system_id": "demo", "target": "demo:2", "message_type": '
        b'"str", "payload": "are you there?", "timestamp": 244.88690829}',
        b'{"kind": "audit", "system_id": "demo", "timestamp": 244.887027777, "total_actors": 4, '
        b'"alive_actors": 3, "stopping_actors": 1, "restarting_actors": 0, "registry_size": 2, '
        b'"registry_orphans": [], "registry_dead": [], "dead_letters_count": 2}',
        b'{"system_id": "s", "target": "s:1", "message_type": "str", "payload": '
        b'"h\\u00e9llo \\u2713", "timestamp": 1.5, "kind": "dead_letter"}',
        b'{"system_id": "s", "actor_address": "s:1", "event_type": "E000", "payload": '
        b'{"i": 0}, "timestamp": 1000.0, "kind": "event"}',
    ]
    decoded = [codec.decode(line) for line in lines]
    assert [r.kind for r in decoded] == ["event", "dead_letter", "audit", "dead_letter", "event"]
    assert all(r.legacy for r in decoded)
    dl = decoded[3]
    assert isinstance(dl, DeadLetterRecord)
    assert dl.payload == "héllo ✓"
    assert dl.expects_reply is False
    assert isinstance(decoded[2], AuditRecord)
    assert decoded[2].dead_letters_count == 2


def test_legacy_01_addresses_become_strings() -> None:
    line = (b'{"kind": "event", "system_id": "s", "actor_address": {"system": "s", '
            b'"actor_id": 7}, "event_type": "E", "payload": {}, "timestamp": 1.0}')
    rec = codec.decode(line)
    assert isinstance(rec, EventRecord)
    assert rec.actor_address == "s:7"


def test_a_legacy_line_missing_a_member_is_a_schema_violation() -> None:
    with pytest.raises(DecodeError) as info:
        codec.decode(b'{"kind": "event", "system_id": "s", "timestamp": 1.0}')
    assert info.value.kind == "schema_violation"


def test_to_json_dict_marks_legacy_records() -> None:
    rec = codec.decode(b'{"kind": "event", "system_id": "s", "actor_address": "a", '
                       b'"event_type": "E", "payload": {}, "timestamp": 1.0}')
    shown = codec.to_json_dict(rec)
    assert shown["legacy"] is True
    assert "v" not in shown


# --------------------------------------------------------------------------- the default hook


@dataclasses.dataclass
class Point:
    x: int
    y: Any


@attrs.define
class Box:
    label: str
    items: Any


class Opaque:
    def __repr__(self) -> str:
        return "<Opaque>"


def event_with(payload: dict[str, Any]) -> EventRecord:
    return EventRecord(system_id="s", actor_address="a", event_type="E", payload=payload,
                       timestamp=1.0, id="0" * 32)


@given(st.lists(st.one_of(ints, text), max_size=8, unique=True), st.randoms())
@FAST
def test_sets_encode_the_same_whatever_their_insertion_order(items: list[Any], rnd: Any) -> None:
    shuffled = list(items)
    rnd.shuffle(shuffled)
    a = codec.encode(event_with({"s": set(items), "f": frozenset(items)}), 1)
    b = codec.encode(event_with({"s": set(shuffled), "f": frozenset(shuffled)}), 1)
    assert a == b


def test_values_json_cannot_carry_encode_deterministically() -> None:
    def payload() -> dict[str, Any]:
        return {
            "bytes": b"\x00\xffdata", "bytearray": bytearray(b"ab"), "memoryview": memoryview(b"c"),
            "tuple": (1, (2, 3)), "set": {"b", "a"}, "dataclass": Point(1, {"deep": b"x"}),
            "attrs": Box("l", [Point(2, None)]), "error": ValueError("boom"),
            "other": Opaque(), 3: "int key",
        }

    first = codec.encode(event_with(payload()), 1)
    assert first == codec.encode(event_with(payload()), 1)
    back = codec.decode(first[:-1])
    assert isinstance(back, EventRecord)
    assert back.payload == {
        "bytes": {"__bytes__": "AP9kYXRh"}, "bytearray": {"__bytes__": "YWI="},
        "memoryview": {"__bytes__": "Yw=="}, "tuple": [1, [2, 3]], "set": ["a", "b"],
        "dataclass": {"x": 1, "y": {"deep": {"__bytes__": "eA=="}}},
        "attrs": {"label": "l", "items": [{"x": 2, "y": None}]},
        "error": "ValueError: boom", "other": "<Opaque>", "3": "int key",
    }
    assert codec.decode_bytes(back.payload["bytes"]) == b"\x00\xffdata"
    assert codec.decode_bytes("plain") == "plain"


def test_dumps_uses_the_same_hook() -> None:
    assert codec.dumps({"b": b"\x01", "p": Point(1, 2)}) == \
        b'{"b":{"__bytes__":"AQ=="},"p":{"x":1,"y":2}}'


nonfinite = st.sampled_from([math.nan, math.inf, -math.inf])


@st.composite
def payload_hiding(draw: st.DrawFn, bad: st.SearchStrategy[float]) -> Any:
    """A JSON-ish value with one non-finite float somewhere inside it."""
    value: Any = draw(bad)
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        wrapper = draw(st.sampled_from(["list", "dict", "tuple", "dataclass", "attrs", "set"]))
        if wrapper == "list":
            value = [*draw(st.lists(ints, max_size=2)), value]
        elif wrapper == "dict":
            value = {**draw(st.dictionaries(text, ints, max_size=2)), "bad": value}
        elif wrapper == "tuple":
            value = (value, 1)
        elif wrapper == "dataclass":
            value = Point(1, value)
        elif wrapper == "attrs":
            value = Box("b", value)
        elif isinstance(value, float):
            value = {value}
    return value


@given(payload_hiding(nonfinite))
@FAST
def test_nan_and_infinity_are_refused_wherever_they_hide(value: Any) -> None:
    with pytest.raises(EncodeError):
        codec.encode(event_with({"x": value}), 1)
    with pytest.raises(EncodeError):
        codec.encode(DeadLetterRecord(system_id="s", target=None, message_type="m",
                                      payload=value), 1)
    with pytest.raises(EncodeError):
        codec.dumps(value)


def test_nan_in_audit_actor_details_is_refused() -> None:
    audit = AuditRecord(system_id="s", total_actors=1, alive_actors=1, stopping_actors=0,
                        restarting_actors=0, registry_size=1, dead_letters_count=0,
                        actors=({"load": math.nan},))
    with pytest.raises(EncodeError):
        codec.encode(audit, 1)


def test_a_nan_timestamp_cannot_even_be_built() -> None:
    with pytest.raises(ValueError, match="finite"):
        EventRecord(system_id="s", actor_address="a", event_type="E", timestamp=math.nan)


def test_values_orjson_refuses_become_encode_errors() -> None:
    with pytest.raises(EncodeError):
        codec.encode(event_with({"big": 2**70}), 1)
    with pytest.raises(EncodeError):
        codec.encode(event_with({"s": "\ud800"}), 1)


@given(records)
@FAST
def test_encoding_without_a_seq_omits_it(record: Any) -> None:
    line = codec.encode(record)
    assert b'"seq"' not in line.split(b'"id"')[0]
    back = codec.decode(line[:-1])
    assert back.seq is None


@given(st.lists(records | gaps(), max_size=6))
@FAST
def test_batch_encoding_gives_exactly_the_bodies_of_one_by_one_encoding(batch: list[Any]) -> None:
    assert codec.encode_bodies(batch) == [codec.encode_body(r) for r in batch]
    for r, body in zip(batch, codec.encode_bodies(batch), strict=True):
        assert codec.frame(body.replace(b'{"v":1,', b'{"v":1,"seq":5,', 1)) == codec.encode(r, 5)


@given(payload_hiding(nonfinite), st.integers(0, 3))
@FAST
def test_batch_encoding_refuses_nan_in_any_record_of_the_batch(value: Any, where: int) -> None:
    batch: list[Any] = [event_with({"n": None, "i": i}) for i in range(4)]
    batch[where] = DeadLetterRecord(system_id="s", target=None, message_type="m",
                                    payload={"x": value})
    with pytest.raises(EncodeError):
        codec.encode_bodies(batch)
    batch[where] = event_with({"x": value})
    with pytest.raises(EncodeError):
        codec.encode_bodies(batch)


def test_batch_encoding_reports_the_precise_error_of_an_unencodable_record() -> None:
    batch = [event_with({"i": 1}), event_with({"big": 2**70})]
    with pytest.raises(EncodeError, match="cannot encode event record"):
        codec.encode_bodies(batch)


# --------------------------------------------------------------------------- fast path


member_values = st.none() | st.booleans() | st.integers(-3, 3) | st.floats(-2, 2) | text | \
    st.lists(st.integers(0, 2), max_size=2) | st.dictionaries(text, st.integers(-5, 5), max_size=2)


@given(records, seqs, st.data())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_fast_decode_path_accepts_exactly_what_the_checked_path_accepts(
    record: Any, seq: int, data: st.DataObject
) -> None:
    members = codec.record_members(record, seq)
    for name in data.draw(st.lists(st.sampled_from(sorted(members)), max_size=3), label="bad"):
        members[name] = data.draw(member_values, label=name)
    if data.draw(st.booleans(), label="drop one"):
        members.pop(data.draw(st.sampled_from(sorted(members)), label="dropped"))
    line = codec.frame(orjson.dumps(members))[:-1]
    try:
        expected: Any = codec._decode_v1(orjson.loads(line))
    except DecodeError as exc:
        expected = exc.kind
    try:
        got: Any = codec.decode(line)
    except DecodeError as exc:
        got = exc.kind
    assert got == expected
    if not isinstance(got, str):
        assert got.seq == expected.seq
        assert type(got) is type(expected)


def test_records_built_by_the_fast_path_are_ordinary_frozen_records() -> None:
    rec = EventRecord(system_id="s", actor_address="a", event_type="E", timestamp=1.0)
    back = codec.decode(codec.encode(rec, 1)[:-1])
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        back.system_id = "other"  # type: ignore[misc]
    assert back == rec
    assert not back.legacy
    assert attrs.evolve(back, seq=2).seq == 2
