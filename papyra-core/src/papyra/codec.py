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
import zlib
from collections.abc import Mapping
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
_HEX: Final = frozenset(b"0123456789abcdef")


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


def record_members(record: StoredRecord, seq: int | None = None) -> dict[str, Any]:
    """The v1 members of a record in their on-disk order (without ``crc``)."""
    if seq is None:
        seq = record.seq
    d: dict[str, Any] = {"v": FORMAT_VERSION}
    if seq is not None:
        d["seq"] = seq
    d["id"] = record.id
    d["kind"] = record.kind
    d["timestamp"] = record.timestamp
    if isinstance(record, EventRecord):
        d["system_id"] = record.system_id
        d["actor_address"] = record.actor_address
        d["event_type"] = record.event_type
        d["payload"] = record.payload
    elif isinstance(record, DeadLetterRecord):
        d["system_id"] = record.system_id
        d["target"] = record.target
        d["message_type"] = record.message_type
        d["payload"] = record.payload
        d["expects_reply"] = record.expects_reply
    elif isinstance(record, AuditRecord):
        d["system_id"] = record.system_id
        d["total_actors"] = record.total_actors
        d["alive_actors"] = record.alive_actors
        d["stopping_actors"] = record.stopping_actors
        d["restarting_actors"] = record.restarting_actors
        d["registry_size"] = record.registry_size
        d["registry_orphans"] = record.registry_orphans
        d["registry_dead"] = record.registry_dead
        d["dead_letters_count"] = record.dead_letters_count
        if record.actors is not None:
            d["actors"] = record.actors
    elif isinstance(record, GapRecord):
        d["through"] = record.through
        d["reason"] = record.reason
        d["quarantine"] = record.quarantine
    else:  # pragma: no cover - guarded by typing
        raise EncodeError(f"not a papyra record: {type(record).__name__}")
    return d


def frame(body: bytes) -> bytes:
    """Add the ``crc`` member and the newline to a JSON object's bytes."""
    crc = zlib.crc32(body)
    return b"%s,\"crc\":\"%08x\"}\n" % (body[:-1], crc)


def encode(record: StoredRecord, seq: int | None = None) -> bytes:
    """One v1 line, newline included. ``seq`` overrides ``record.seq`` (None omits it)."""
    members = record_members(record, seq)
    payload = members.get("payload")
    if payload is not None and type(payload) is not str:
        _check_finite(payload)
    if isinstance(record, AuditRecord) and record.actors is not None:
        _check_finite(record.actors)
    try:
        body = orjson.dumps(members, default=json_default, option=_OPTIONS)
    except orjson.JSONEncodeError as exc:
        raise EncodeError(f"cannot encode {record.kind} record: {exc}") from None
    return frame(body)


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


def decode(line: bytes) -> StoredRecord:
    """Decode one line (without its newline) or raise :class:`DecodeError`.

    The checksum is verified before the JSON is parsed. Legacy 0.3.0 lines decode with
    ``legacy=True``; a line carrying ``v`` or ``crc`` is never taken for a legacy one.
    """
    if not line:
        raise DecodeError("invalid_json", "empty line")
    n = len(line)
    if (
        n > _CRC_SUFFIX_LEN
        and line[n - 2 :] == b'"}'
        and line[n - _CRC_SUFFIX_LEN : n - 10] == _CRC_PREFIX
    ):
        crc_hex = line[n - 10 : n - 2]
        body = line[: n - _CRC_SUFFIX_LEN] + b"}"
        if not _HEX.issuperset(crc_hex) or int(crc_hex, 16) != zlib.crc32(body):
            raise DecodeError(
                "checksum_mismatch",
                f"crc {crc_hex.decode('ascii', 'replace')} does not match the line's bytes",
            )
        d = _loads(body)
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
    d = _loads(line)
    if type(d) is not dict:
        raise _schema("a record must be a JSON object")
    if "v" in d or "crc" in d:
        v = d.get("v")
        if v is not None and v != FORMAT_VERSION:
            raise DecodeError("unsupported_version", f"format version {v!r} is not supported")
        raise _schema("a v1 line must end with its crc member")
    return _build(d, seq=None, rid=legacy_id(line), legacy=True)


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
