"""Key names and stream entries.

One system's keys share the hash tag ``{system_id}`` so they live in one Redis Cluster slot
(Lua scripts and pipelines touching several of them are then legal in a cluster)::

    {prefix}:{{system_id}}:events | :audits | :dead_letters   the records, one stream per kind
    {prefix}:{{system_id}}:gaps                                gap records (repair, retention)
    {prefix}:{{system_id}}:seq                                 the seq counter (INCRBY)
    {prefix}:{{system_id}}:quarantine                          entries removed by quarantine
    {prefix}:{{system_id}}:poison                              consumer-group poison entries

An entry has the field ``data`` (the v1 record bytes *without* seq, crc included, no newline)
and the field ``seq`` (decimal). Entries written by papyra 0.3.0 have only ``data`` (legacy JSON).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from papyra import codec
from papyra.codec import DecodeError
from papyra.records import GapRecord, StoredRecord

KIND_STREAMS: dict[str, str] = {"event": "events", "audit": "audits", "dead_letter": "dead_letters"}
DATA_KINDS: tuple[str, ...] = ("event", "audit", "dead_letter")


@attrs.frozen
class Keys:
    prefix: str
    system_id: str

    @property
    def base(self) -> str:
        return f"{self.prefix}:{{{self.system_id}}}"

    def stream(self, kind: str) -> str:
        if kind == "gap":
            return self.gaps
        return f"{self.base}:{KIND_STREAMS[kind]}"

    @property
    def data_streams(self) -> tuple[str, ...]:
        return tuple(self.stream(k) for k in DATA_KINDS)

    @property
    def gaps(self) -> str:
        return f"{self.base}:gaps"

    @property
    def seq(self) -> str:
        return f"{self.base}:seq"

    @property
    def quarantine(self) -> str:
        return f"{self.base}:quarantine"

    @property
    def poison(self) -> str:
        return f"{self.base}:poison"

    def kind_of(self, stream: str) -> str:
        for kind in (*DATA_KINDS, "gap"):
            if self.stream(kind) == stream:
                return kind
        raise KeyError(stream)


def text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def parse_id(entry_id: Any) -> tuple[int, int]:
    ms, _, sq = text(entry_id).partition("-")
    return int(ms), int(sq or 0)


def next_id(entry_id: Any) -> str:
    """The smallest id greater than ``entry_id`` (for exclusive MINID bounds)."""
    ms, sq = parse_id(entry_id)
    return f"{ms}-{sq + 1}"


class Entry:
    """One decoded stream entry. ``key`` orders entries of all streams in log order.

    A plain slotted class (not attrs): reads build one per record, so it is kept cheap.
    """

    __slots__ = ("entry_id", "key", "record", "seq", "size", "stream_kind")

    def __init__(self, stream_kind: str, entry_id: str, seq: int | None, record: StoredRecord,
                 size: int) -> None:
        self.stream_kind = stream_kind
        self.entry_id = entry_id
        self.seq = seq
        self.record = record
        self.size = size
        self.key = order_key(seq, entry_id)

    def __repr__(self) -> str:
        return f"Entry({self.stream_kind}, {self.entry_id}, seq={self.seq})"


def order_key(seq: int | None, entry_id: str) -> tuple[int, ...]:
    """Log order: legacy entries (no seq) first by entry id, then papyra's by seq."""
    if seq is None:
        return (0, *parse_id(entry_id))
    return (1, seq)


def decode_entry(stream_kind: str, entry_id: Any, fields: Mapping[Any, Any] | None) -> Entry:
    """Decode one entry or raise :class:`DecodeError` (kind ``malformed_entry``,
    ``checksum_mismatch`` or ``unsupported_version``)."""
    eid = entry_id.decode() if type(entry_id) is bytes else str(entry_id)
    if not fields:
        raise DecodeError("malformed_entry", "entry has no fields (deleted or trimmed)")
    data = fields.get(b"data")
    if data is None:
        data = fields.get("data")
    if data is None:
        names = ", ".join(sorted(text(k) for k in fields))
        raise DecodeError("malformed_entry", f"entry has no 'data' field (fields: {names})")
    if isinstance(data, str):
        data = data.encode("utf-8")
    raw_seq = fields.get(b"seq")
    if raw_seq is None:
        raw_seq = fields.get("seq")
    seq: int | None = None
    if raw_seq is not None:
        try:
            seq = int(raw_seq)
        except ValueError:
            seq = None
        if seq is None or seq < 1:
            raise DecodeError("malformed_entry", f"field 'seq' is not a positive integer: "
                              f"{text(raw_seq)[:40]!r}")
    try:
        record = codec.decode(data)
    except DecodeError as exc:
        kind = exc.kind if exc.kind in ("checksum_mismatch", "unsupported_version") else (
            "malformed_entry")
        detail = exc.detail if kind != "malformed_entry" else f"{exc.kind}: {exc.detail}"
        raise DecodeError(kind, detail) from None
    if isinstance(record, GapRecord):
        if stream_kind != "gap":
            raise DecodeError("malformed_entry", "a gap record in a data stream")
        if seq is not None and seq != record.seq:
            raise DecodeError("malformed_entry", "field 'seq' differs from the gap's seq")
        return Entry(stream_kind, eid, record.seq, record, len(data))
    if record.kind != stream_kind:
        raise DecodeError("malformed_entry",
                          f"a {record.kind} record in the {stream_kind} stream")
    if seq is None and not record.legacy:
        raise DecodeError("malformed_entry", "a v1 record without a 'seq' field")
    if seq is not None:
        # the record was just decoded and nobody else holds it: set its seq in place instead
        # of attrs.evolve, which validates every field again (reads of the newest N are hot)
        object.__setattr__(record, "seq", seq)
    return Entry(stream_kind, eid, seq, record, len(data))


def encode_fields(record: StoredRecord, seq: int) -> dict[str, bytes | str]:
    return {"data": codec.encode(record, seq=None)[:-1], "seq": str(seq)}
