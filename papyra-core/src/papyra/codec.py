"""The one place that turns records into bytes and bytes back into records (format v1).

A v1 line is a JSON object, members in a fixed order, ending with a CRC-32 member::

    {"v":1,"seq":17,"id":"5f0c...","kind":"event","timestamp":1763771234.12,...,"crc":"0a1b2c3d"}

``crc`` is the CRC-32 (zlib) of the line's bytes without the ``,"crc":"..."`` member and without
the newline, as 8 lowercase hex digits. Lines without ``v`` and ``crc`` are *legacy* lines written
by papyra 0.3.0; they decode as records with ``legacy=True`` and no ``seq``.

Values JSON cannot carry go through one hook, :func:`json_default`: dataclasses and attrs
instances become objects, bytes become ``{"__bytes__": "<base64>"}``, sets become sorted arrays,
exceptions become ``"Type: message"`` and anything else its ``repr``. NaN and infinities are
refused (:class:`EncodeError`), because JSON has no spelling for them.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import math
import operator
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import attrs
import orjson

from papyra.records import (
    AuditRecord,
    DeadLetterRecord,
    EventRecord,
    GapRecord,
    Record,
    StoredRecord,
)

FORMAT_VERSION: Final = 1
BYTES_MARKER: Final = "__bytes__"

_OPTIONS: Final = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS
_CRC_PREFIX: Final = b',"crc":"'
_CRC_SUFFIX_LEN: Final = len(_CRC_PREFIX) + 8 + 2  # ,"crc":"xxxxxxxx"}
_find_null: Final = re.compile(b"null").search  # cheaper than ``b"null" in body`` here


class EncodeError(ValueError):
    """A record cannot be written (NaN/Infinity, or a value the hook cannot turn into JSON)."""


class DecodeError(ValueError):
    """A stored line is not a valid record. ``kind`` is the anomaly kind of DESIGN §6."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


# --------------------------------------------------------------------------- encoding


def _check_finite(value: Any) -> None:
    """Refuse NaN/Infinity anywhere in a JSON-native value (cheap for the common shapes)."""
    t = type(value)
    if t is float:
        if not math.isfinite(value):
            raise EncodeError(f"cannot store {value!r}: JSON has no NaN or Infinity")
    elif t is dict:
        for item in value.values():
            if type(item) not in (str, int, bool):
                _check_finite(item)
    elif t is list or t is tuple:
        for item in value:
            if type(item) not in (str, int, bool):
                _check_finite(item)
    elif isinstance(value, float):
        _check_finite(float(value))
    elif isinstance(value, Mapping):
        for item in value.values():
            _check_finite(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_finite(item)


def json_default(obj: Any) -> Any:
    """The codec's one hook for values JSON cannot carry (deterministic for equal values)."""
    out: Any
    if isinstance(obj, float):  # a float subclass (plain floats never reach the hook)
        if not math.isfinite(obj):
            raise EncodeError(f"cannot store {obj!r}: JSON has no NaN or Infinity")
        return float(obj)
    if attrs.has(type(obj)):
        out = attrs.asdict(obj, recurse=False)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    elif isinstance(obj, bytes | bytearray | memoryview):
        return {BYTES_MARKER: base64.b64encode(bytes(obj)).decode("ascii")}
    elif isinstance(obj, set | frozenset):
        out = sorted(obj, key=repr)
    elif isinstance(obj, Mapping):
        out = dict(obj)
    elif isinstance(obj, tuple | list):
        out = list(obj)
    elif isinstance(obj, BaseException):
        return f"{type(obj).__name__}: {obj}"
    else:
        return repr(obj)
    _check_finite(out)
    return out


def decode_bytes(value: Any) -> Any:
    """Undo the bytes marker of :func:`json_default` (``{"__bytes__": ...}`` → ``bytes``)."""
    if isinstance(value, dict) and len(value) == 1 and BYTES_MARKER in value:
        return base64.b64decode(value[BYTES_MARKER])
    return value


def dumps(value: Any) -> bytes:
    """Serialise any value with the codec's options and hook (NaN refused)."""
    _check_finite(value)
    try:
        return orjson.dumps(value, default=json_default, option=_OPTIONS)
    except orjson.JSONEncodeError as exc:
        raise EncodeError(f"cannot encode value: {exc}") from None


def _event_members(r: Any, seq: int | None) -> dict[str, Any]:
    return {"v": 1, "seq": seq, "id": r.id, "kind": "event", "timestamp": r.timestamp,
            "system_id": r.system_id, "actor_address": r.actor_address,
            "event_type": r.event_type, "payload": r.payload}


def _dead_letter_members(r: Any, seq: int | None) -> dict[str, Any]:
    return {"v": 1, "seq": seq, "id": r.id, "kind": "dead_letter", "timestamp": r.timestamp,
            "system_id": r.system_id, "target": r.target, "message_type": r.message_type,
            "payload": r.payload, "expects_reply": r.expects_reply}


def _audit_members(r: Any, seq: int | None) -> dict[str, Any]:
    d = {"v": 1, "seq": seq, "id": r.id, "kind": "audit", "timestamp": r.timestamp,
         "system_id": r.system_id, "total_actors": r.total_actors,
         "alive_actors": r.alive_actors, "stopping_actors": r.stopping_actors,
         "restarting_actors": r.restarting_actors, "registry_size": r.registry_size,
         "registry_orphans": r.registry_orphans, "registry_dead": r.registry_dead,
         "dead_letters_count": r.dead_letters_count}
    if r.actors is not None:
        d["actors"] = r.actors
    return d


def _gap_members(r: Any, seq: int | None) -> dict[str, Any]:
    return {"v": 1, "seq": seq, "id": r.id, "kind": "gap", "timestamp": r.timestamp,
            "through": r.through, "reason": r.reason, "quarantine": r.quarantine}


_MEMBERS: Final[dict[type, Callable[[Any, int | None], dict[str, Any]]]] = {
    EventRecord: _event_members,
    DeadLetterRecord: _dead_letter_members,
    AuditRecord: _audit_members,
    GapRecord: _gap_members,
}


def _members_of(record: StoredRecord) -> Callable[[Any, int | None], dict[str, Any]]:
    try:
        return _MEMBERS[type(record)]
    except KeyError:
        for cls, fn in _MEMBERS.items():
            if isinstance(record, cls):
                return fn
        raise EncodeError(f"not a papyra record: {type(record).__name__}") from None


def record_members(record: StoredRecord, seq: int | None = None) -> dict[str, Any]:
    """The v1 members of a record in their on-disk order (without ``crc``).

    ``seq`` defaults to ``record.seq``; when both are None the member is left out.
    """
    if seq is None:
        seq = record.seq
    d = _members_of(record)(record, seq)
    if seq is None:
        del d["seq"]
    return d


def frame(body: bytes) -> bytes:
    """Add the ``crc`` member and the newline to a JSON object's bytes."""
    return b'%s,"crc":"%08x"}\n' % (body[:-1], zlib.crc32(body))


def _check_record_finite(record: StoredRecord) -> None:
    payload = getattr(record, "payload", None)
    if payload is not None and type(payload) is not str:
        _check_finite(payload)
    actors = getattr(record, "actors", None)
    if actors is not None:
        _check_finite(actors)


def encode(record: StoredRecord, seq: int | None = None) -> bytes:
    """One v1 line, newline included. ``seq`` defaults to ``record.seq`` (None: left out).

    NaN and Infinity are refused. orjson writes them as ``null``, so the payload is walked
    for them only when the encoded bytes contain ``null`` at all (one ``in`` test for the
    common case instead of a second walk of every payload).
    """
    if seq is None:
        seq = record.seq
    body = _dump(record, seq)
    return b'%s,"crc":"%08x"}\n' % (body[:-1], zlib.crc32(body))


def encode_body(record: StoredRecord) -> bytes:
    """The record's v1 object without ``seq`` and ``crc`` (``{"v":1,"id":...}``), unframed.

    What an appender encodes before the seq is known (so an unencodable record fails only its
    own append); :func:`papyra.filelog.writer.sequence_line` adds seq and crc in one pass.
    ``record.seq`` is ignored.
    """
    return _dump(record, None)


def encode_bodies(records: Sequence[StoredRecord]) -> list[bytes]:
    """:func:`encode_body` of every record, faster for a batch (same bytes, same errors).

    Events and dead letters (the bulk of any log) are built without ``seq`` in the first place;
    the NaN check searches the whole batch once and walks only records whose bytes hold
    ``null``.
    """
    try:
        bodies = [
            orjson.dumps(_BODY[type(r)](r), default=json_default, option=_OPTIONS)
            for r in records
        ]
    except (KeyError, orjson.JSONEncodeError):
        return [encode_body(r) for r in records]  # other types; the precise error
    if _find_null(b"".join(bodies)) is not None:
        for r, body in zip(records, bodies, strict=True):
            if _find_null(body) is not None:
                _check_record_finite(r)
    return bodies


def _event_body(r: Any) -> dict[str, Any]:
    return {"v": 1, "id": r.id, "kind": "event", "timestamp": r.timestamp,
            "system_id": r.system_id, "actor_address": r.actor_address,
            "event_type": r.event_type, "payload": r.payload}


def _dead_letter_body(r: Any) -> dict[str, Any]:
    return {"v": 1, "id": r.id, "kind": "dead_letter", "timestamp": r.timestamp,
            "system_id": r.system_id, "target": r.target, "message_type": r.message_type,
            "payload": r.payload, "expects_reply": r.expects_reply}


_BODY: Final[dict[type, Callable[[Any], dict[str, Any]]]] = {
    EventRecord: _event_body,
    DeadLetterRecord: _dead_letter_body,
}


def _dump(record: StoredRecord, seq: int | None) -> bytes:
    members = (_MEMBERS.get(type(record)) or _members_of(record))(record, seq)
    if seq is None:
        del members["seq"]
    try:
        body = orjson.dumps(members, default=json_default, option=_OPTIONS)
    except orjson.JSONEncodeError as exc:
        cause = exc.__cause__
        if isinstance(cause, EncodeError):
            raise EncodeError(f"cannot encode {record.kind} record: {cause}") from None
        raise EncodeError(f"cannot encode {record.kind} record: {exc}") from None
    if _find_null(body) is not None:
        _check_record_finite(record)
    return body


# --------------------------------------------------------------------------- decoding


def _schema(detail: str) -> DecodeError:
    return DecodeError("schema_violation", detail)


def _require(d: Mapping[str, Any], name: str, types: type | tuple[type, ...]) -> Any:
    try:
        value = d[name]
    except KeyError:
        raise _schema(f"missing member {name!r}") from None
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
        raise _schema(f"member {name!r} has the wrong type ({type(value).__name__})")
    return value


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


_NUM = (int, float)


def _legacy_address(value: Any) -> Any:
    # papyra 0.1 wrote addresses as {"system": ..., "actor_id": ...}; 0.3.0 writes "system:id".
    if isinstance(value, dict) and "system" in value and "actor_id" in value:
        return f"{value['system']}:{value['actor_id']}"
    return value


def _build(d: dict[str, Any], *, seq: int | None, rid: str, legacy: bool) -> StoredRecord:
    kind = d.get("kind")
    ts = _require(d, "timestamp", _NUM)
    if legacy and "actor_address" in d:
        d["actor_address"] = _legacy_address(d["actor_address"])
    try:
        if kind == "event":
            payload = d.get("payload", {}) if legacy else _require(d, "payload", dict)
            if not isinstance(payload, dict):
                raise _schema("member 'payload' must be an object")
            return EventRecord(
                system_id=_require(d, "system_id", str),
                actor_address=_require(d, "actor_address", str),
                event_type=_require(d, "event_type", str),
                payload=payload,
                timestamp=ts,
                id=rid,
                seq=seq,
                legacy=legacy,
            )
        if kind == "dead_letter":
            if "payload" not in d:
                raise _schema("missing member 'payload'")
            target = _legacy_address(d.get("target")) if legacy else d.get("target", ...)
            if target is ...:
                raise _schema("missing member 'target'")
            if target is not None and not isinstance(target, str):
                raise _schema("member 'target' must be a string or null")
            expects = d.get("expects_reply", False) if legacy else _require(
                d, "expects_reply", bool
            )
            return DeadLetterRecord(
                system_id=_require(d, "system_id", str),
                target=target,
                message_type=_require(d, "message_type", str),
                payload=d["payload"],
                expects_reply=bool(expects),
                timestamp=ts,
                id=rid,
                seq=seq,
                legacy=legacy,
            )
        if kind == "audit":
            actors = d.get("actors")
            if actors is not None and not isinstance(actors, list):
                raise _schema("member 'actors' must be an array")
            return AuditRecord(
                system_id=_require(d, "system_id", str),
                total_actors=_require(d, "total_actors", int),
                alive_actors=_require(d, "alive_actors", int),
                stopping_actors=_require(d, "stopping_actors", int),
                restarting_actors=_require(d, "restarting_actors", int),
                registry_size=_require(d, "registry_size", int),
                registry_orphans=_require(d, "registry_orphans", list),
                registry_dead=_require(d, "registry_dead", list),
                dead_letters_count=_require(d, "dead_letters_count", int),
                actors=tuple(actors) if actors is not None else None,
                timestamp=ts,
                id=rid,
                seq=seq,
                legacy=legacy,
            )
        if kind == "gap" and not legacy:
            if seq is None:
                raise _schema("a gap record needs a seq")
            q = d.get("quarantine")
            return GapRecord(
                seq=seq,
                through=_require(d, "through", int),
                reason=_require(d, "reason", str),
                quarantine=q if isinstance(q, str) else None,
                timestamp=ts,
                id=rid,
            )
    except (TypeError, ValueError) as exc:
        if isinstance(exc, DecodeError):
            raise
        raise _schema(str(exc)) from None
    raise _schema(f"unknown record kind {kind!r}")


def legacy_id(line: bytes) -> str:
    """The deterministic id given to a legacy line (it has none of its own)."""
    return hashlib.blake2b(line, digest_size=16).hexdigest()


def _loads(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as uexc:
            raise DecodeError("invalid_utf8", f"invalid UTF-8 at byte {uexc.start}") from None
        raise DecodeError("invalid_json", f"invalid JSON: {exc}") from None


# Fast construction for the decode hot path. The codec has already checked every member's type
# (more strictly than the attrs validators: JSON gives exact types, and bools are refused where
# numbers are expected), so the records are built without running the validators again. Lines
# that fail a fast check go through the slow path, which raises the precise DecodeError.


def _fast_constructor(cls: type, expected: tuple[str, ...]) -> Callable[..., Any]:
    names = tuple(a.name for a in attrs.fields(cls))
    if names != expected:  # pragma: no cover - guards edits of records.py
        raise RuntimeError(f"{cls.__name__} fields changed: {names}; update the codec")
    # Each slot's member descriptor sets its value directly (what object.__setattr__ would
    # end up doing for a frozen slotted class, without the attribute lookup per field).
    lines = [f"def make({', '.join(names)}):", "    self = _new(cls)"]
    lines += [f"    _set_{name}(self, {name})" for name in names]
    lines.append("    return self")
    namespace: dict[str, Any] = {"_new": object.__new__, "cls": cls}
    namespace.update({f"_set_{name}": getattr(cls, name).__set__ for name in names})
    exec("\n".join(lines), namespace)
    make: Callable[..., Any] = namespace["make"]
    return make


_BASE = ("system_id", "timestamp", "id", "seq", "legacy")
_new_event = _fast_constructor(EventRecord, (*_BASE, "actor_address", "event_type", "payload"))
_new_audit = _fast_constructor(AuditRecord, (
    *_BASE, "total_actors", "alive_actors", "stopping_actors", "restarting_actors",
    "registry_size", "registry_orphans", "registry_dead", "dead_letters_count", "actors",
))
_new_dead_letter = _fast_constructor(
    DeadLetterRecord, (*_BASE, "target", "message_type", "payload", "expects_reply")
)
_new_gap = _fast_constructor(
    GapRecord, ("seq", "through", "reason", "quarantine", "timestamp", "id")
)


def _fast_event(d: dict[str, Any], seq: int | None, rid: str) -> Any:
    try:
        sid, ts = d["system_id"], d["timestamp"]
        address, event_type, payload = d["actor_address"], d["event_type"], d["payload"]
    except KeyError:
        return None
    if (type(sid) is str and type(address) is str and type(event_type) is str
            and type(payload) is dict and (type(ts) is float or type(ts) is int)):
        return _new_event(sid, ts, rid, seq, False, address, event_type, payload)
    return None


def _count(value: Any) -> bool:
    return type(value) is int and value >= 0


def _fast_audit(d: dict[str, Any], seq: int | None, rid: str) -> Any:
    try:
        sid, ts = d["system_id"], d["timestamp"]
        total, alive, stopping = d["total_actors"], d["alive_actors"], d["stopping_actors"]
        restarting, size, dead_letters = (d["restarting_actors"], d["registry_size"],
                                          d["dead_letters_count"])
        orphans, dead = d["registry_orphans"], d["registry_dead"]
    except KeyError:
        return None
    actors = d.get("actors")
    if (type(sid) is str and (type(ts) is float or type(ts) is int)
            and _count(total) and _count(alive) and _count(stopping) and _count(restarting)
            and _count(size) and _count(dead_letters)
            and type(orphans) is list and type(dead) is list
            and (actors is None or type(actors) is list)):
        return _new_audit(sid, ts, rid, seq, False, total, alive, stopping, restarting, size,
                          tuple(orphans), tuple(dead), dead_letters,
                          None if actors is None else tuple(actors))
    return None


def _fast_dead_letter(d: dict[str, Any], seq: int | None, rid: str) -> Any:
    try:
        sid, ts = d["system_id"], d["timestamp"]
        target, message_type = d["target"], d["message_type"]
        payload, expects = d["payload"], d["expects_reply"]
    except KeyError:
        return None
    if (type(sid) is str and (type(ts) is float or type(ts) is int)
            and (target is None or type(target) is str) and type(message_type) is str
            and type(expects) is bool):
        return _new_dead_letter(sid, ts, rid, seq, False, target, message_type, payload,
                                expects)
    return None


def _fast_gap(d: dict[str, Any], seq: int | None, rid: str) -> Any:
    try:
        ts, through, reason = d["timestamp"], d["through"], d["reason"]
    except KeyError:
        return None
    quarantine = d.get("quarantine")
    if (seq is not None and (type(ts) is float or type(ts) is int)
            and type(through) is int and through >= seq and type(reason) is str
            and (quarantine is None or type(quarantine) is str)):
        return _new_gap(seq, through, reason, quarantine, ts, rid)
    return None


_crc32 = zlib.crc32
_orjson_loads = orjson.loads

_FAST: Final[dict[Any, Callable[[dict[str, Any], int | None, str], Any]]] = {
    "event": _fast_event,
    "audit": _fast_audit,
    "dead_letter": _fast_dead_letter,
    "gap": _fast_gap,
}


_event_items = operator.itemgetter("v", "id", "kind", "seq", "system_id", "timestamp",
                                   "actor_address", "event_type", "payload")


def _decode_fast_or_checked(d: Any) -> StoredRecord:
    """A v1 line's parsed members: the fast builders when every check passes, else the
    checked path (precise errors)."""
    if type(d) is dict:
        v, seq, rid, kind = d.get("v"), d.get("seq"), d.get("id"), d.get("kind")
        if (type(v) is int and v == FORMAT_VERSION and type(rid) is str and len(rid) == 32
                and (seq is None or (type(seq) is int and seq >= 1)) and type(kind) is str):
            fast = _FAST.get(kind)
            if fast is not None:
                rec: StoredRecord | None = fast(d, seq, rid)
                if rec is not None:
                    return rec
    return _decode_v1(d)


def decode(line: bytes) -> StoredRecord:
    """Decode one line (without its newline) or raise :class:`DecodeError`.

    The checksum is verified before the JSON is parsed. Legacy 0.3.0 lines decode with
    ``legacy=True``; a line carrying ``v`` or ``crc`` is never taken for a legacy one.
    """
    n = len(line)
    if n > _CRC_SUFFIX_LEN and line.endswith(b'"}') and line.startswith(_CRC_PREFIX,
                                                                        n - _CRC_SUFFIX_LEN):
        body = line[: n - _CRC_SUFFIX_LEN] + b"}"
        crc_hex = line[n - 10 : n - 2]
        if crc_hex != b"%08x" % _crc32(body):
            raise DecodeError(
                "checksum_mismatch",
                f"crc {bytes(crc_hex).decode('ascii', 'replace')} does not match the line's "
                "bytes",
            )
        try:
            d = _orjson_loads(body)
        except orjson.JSONDecodeError:
            d = _loads(body)
        try:
            v, rid, kind, seq, sid, ts, address, event_type, payload = _event_items(d)
        except (KeyError, TypeError):
            return _decode_fast_or_checked(d)
        if (kind == "event" and type(v) is int and v == FORMAT_VERSION and type(rid) is str
                and len(rid) == 32 and type(seq) is int and seq >= 1 and type(sid) is str
                and type(address) is str and type(event_type) is str and type(payload) is dict
                and (type(ts) is float or type(ts) is int)):
            # the common case (an event with its seq) checked and built inline
            return _new_event(sid, ts, rid, seq, False, address, event_type,  # type: ignore[no-any-return]
                              payload)
        return _decode_fast_or_checked(d)
    if not line:
        raise DecodeError("invalid_json", "empty line")
    d = _loads(line)
    if type(d) is not dict:
        raise _schema("a record must be a JSON object")
    if "v" in d or "crc" in d:
        v = d.get("v")
        if v is not None and v != FORMAT_VERSION:
            raise DecodeError("unsupported_version", f"format version {v!r} is not supported")
        raise _schema("a v1 line must end with its crc member")
    return _build(d, seq=None, rid=legacy_id(line), legacy=True)


def _decode_v1(d: Any) -> StoredRecord:
    """The checked path for a v1 line whose checksum matched: precise errors, attrs validators."""
    if type(d) is not dict:
        raise _schema("a record must be a JSON object")
    v = d.get("v")
    if v != FORMAT_VERSION or type(v) is not int:
        raise DecodeError("unsupported_version", f"format version {v!r} is not supported")
    seq = d.get("seq")
    if seq is not None and (type(seq) is not int or seq < 1):
        raise _schema("member 'seq' must be a positive integer")
    rid = d.get("id")
    if type(rid) is not str or len(rid) != 32:
        raise _schema("member 'id' must be 32 hex digits")
    return _build(d, seq=seq, rid=rid, legacy=False)


def decode_record(line: bytes) -> Record:
    """Like :func:`decode`, but a gap record is a schema violation (for stores without gaps)."""
    rec = decode(line)
    if isinstance(rec, GapRecord):
        raise _schema("gap records are not allowed here")
    return rec


def to_json_dict(record: StoredRecord) -> dict[str, Any]:
    """The record as the JSON object it is stored as (``crc`` excluded), for display."""
    members = record_members(record)
    if record.legacy if not isinstance(record, GapRecord) else False:
        members.pop("v", None)
        members["legacy"] = True
    return members
