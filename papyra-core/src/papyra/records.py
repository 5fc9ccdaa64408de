"""The facts papyra keeps: events, audits, dead letters, and the gap records that explain holes.

Records are frozen attrs classes. Timestamps are Unix epoch seconds taken from the wall clock
(``time.time()``), never from a monotonic clock, so they compare across processes and restarts.
``seq`` is assigned by the backend when a record is appended; ``id`` is a 32-hex-digit identifier
that survives copies, compaction and replication, so consumers can drop duplicates.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, TypeAlias

import attrs

RecordKind: TypeAlias = Literal["event", "audit", "dead_letter"]
ALL_KINDS: tuple[RecordKind, ...] = ("event", "audit", "dead_letter")


def new_record_id() -> str:
    """A fresh record id: 32 lowercase hex digits."""
    return uuid.uuid4().hex


def _now() -> float:
    return time.time()


def _as_tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value)


def _check_timestamp(_inst: Any, _attr: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"timestamp must be a number of epoch seconds, got {type(value).__name__}")
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("timestamp must be finite")


def _check_seq(_inst: Any, _attr: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"seq must be a positive integer, got {value!r}")


_str = attrs.validators.instance_of(str)
_int = attrs.validators.and_(
    attrs.validators.instance_of(int), attrs.validators.ge(0)
)


@attrs.frozen(kw_only=True)
class _RecordBase:
    """Members every stored record has."""

    kind: ClassVar[str]

    system_id: str = attrs.field(validator=_str)
    timestamp: float = attrs.field(factory=_now, validator=_check_timestamp)
    id: str = attrs.field(factory=new_record_id, validator=_str)
    seq: int | None = attrs.field(default=None, validator=_check_seq, eq=False)
    legacy: bool = attrs.field(default=False, eq=False)
    """True when read from a line written by papyra 0.3.0 (no seq, id or checksum)."""

    def with_seq(self, seq: int) -> Any:
        """A copy carrying ``seq`` (what a backend returns after appending)."""
        _check_seq(self, None, seq)  # type: ignore[arg-type]
        return stamp(self, seq)  # type: ignore[arg-type]


@attrs.frozen(kw_only=True)
class EventRecord(_RecordBase):
    """A lifecycle event of one actor (``ActorStarted``, ``ActorCrashed``, ...)."""

    kind: ClassVar[Literal["event"]] = "event"

    actor_address: str = attrs.field(validator=_str)
    event_type: str = attrs.field(validator=_str)
    payload: Mapping[str, Any] = attrs.field(factory=dict)

    @payload.validator
    def _check_payload(self, _attr: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, Mapping):
            raise TypeError("event payload must be a mapping")


@attrs.frozen(kw_only=True)
class AuditRecord(_RecordBase):
    """A point-in-time health snapshot of an actor system."""

    kind: ClassVar[Literal["audit"]] = "audit"

    total_actors: int = attrs.field(validator=_int)
    alive_actors: int = attrs.field(validator=_int)
    stopping_actors: int = attrs.field(validator=_int)
    restarting_actors: int = attrs.field(validator=_int)
    registry_size: int = attrs.field(validator=_int)
    registry_orphans: tuple[str, ...] = attrs.field(factory=tuple, converter=_as_tuple)
    registry_dead: tuple[str, ...] = attrs.field(factory=tuple, converter=_as_tuple)
    dead_letters_count: int = attrs.field(validator=_int)
    actors: tuple[Mapping[str, Any], ...] | None = attrs.field(default=None)


@attrs.frozen(kw_only=True)
class DeadLetterRecord(_RecordBase):
    """A message nobody could take: the target was stopped or unknown."""

    kind: ClassVar[Literal["dead_letter"]] = "dead_letter"

    target: str | None = attrs.field(
        validator=attrs.validators.optional(attrs.validators.instance_of(str))
    )
    message_type: str = attrs.field(validator=_str)
    payload: Any = None
    expects_reply: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))


@attrs.frozen(kw_only=True)
class GapRecord:
    """Stands for seqs ``seq``..``through`` that were removed (by repair or by retention).

    Gap records are not data: reads skip them unless asked, counts exclude them.
    """

    kind: ClassVar[Literal["gap"]] = "gap"

    seq: int = attrs.field(validator=_check_seq)  # type: ignore[assignment]
    through: int = attrs.field()
    reason: str = attrs.field(validator=_str)
    quarantine: str | None = None
    timestamp: float = attrs.field(factory=_now, validator=_check_timestamp)
    id: str = attrs.field(factory=new_record_id, validator=_str)

    @through.validator
    def _check_through(self, _attr: attrs.Attribute[int], value: int) -> None:
        if not isinstance(value, int) or value < self.seq:
            raise ValueError(f"gap must cover at least one seq: {self.seq}..{value}")

    @property
    def count(self) -> int:
        """How many seqs this gap stands for."""
        return self.through - self.seq + 1


Record: TypeAlias = EventRecord | AuditRecord | DeadLetterRecord
StoredRecord: TypeAlias = EventRecord | AuditRecord | DeadLetterRecord | GapRecord

RECORD_TYPES: dict[str, type[Record]] = {
    "event": EventRecord,
    "audit": AuditRecord,
    "dead_letter": DeadLetterRecord,
}


def normalize_kinds(kinds: str | Any | None) -> frozenset[str] | None:
    """Accept ``"event"``, ``["event", "audit"]``, plurals (``"dead-letters"``) or None."""
    if kinds is None:
        return None
    items = [kinds] if isinstance(kinds, str) else list(kinds)
    out: set[str] = set()
    for item in items:
        name = str(item).strip().lower().replace("-", "_")
        name = {"events": "event", "audits": "audit", "dead_letters": "dead_letter"}.get(name, name)
        if name not in RECORD_TYPES:
            expected = ", ".join(ALL_KINDS)
            raise ValueError(f"unknown record kind {item!r}; expected one of {expected}")
        out.add(name)
    return frozenset(out)


# --------------------------------------------------------------------------- fast copies

_STAMPERS: dict[type, Callable[[Any, int | None], Any]] = {}


def _slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    for klass in cls.__mro__:
        member = klass.__dict__.get(name)
        if member is not None and hasattr(member, "__set__"):
            setter: Callable[[Any, Any], None] = member.__set__
            return setter
    return lambda obj, value: object.__setattr__(obj, name, value)  # a subclass without slots


def _make_stamper(cls: type) -> Callable[[Any, int | None], Any]:
    """An unrolled copier for one record class: no loop, no re-validation, each member set
    through its slot's descriptor (found once here, not looked up again on every call)."""
    names = [a.name for a in attrs.fields(cls) if a.name != "seq"]
    body = "".join(f"    set_{name}(n, r.{name})\n" for name in names)
    source = f"def stamp(r, seq):\n    n = _new(cls)\n{body}    set_seq(n, seq)\n    return n\n"
    scope: dict[str, Any] = {"_new": object.__new__, "cls": cls}
    for name in [*names, "seq"]:
        scope[f"set_{name}"] = _slot_setter(cls, name)
    exec(compile(source, f"<papyra stamp {cls.__name__}>", "exec"), scope)
    stamper: Callable[[Any, int | None], Any] = scope["stamp"]
    return stamper


def stamp(record: Record, seq: int | None) -> Record:
    """A copy of ``record`` carrying ``seq`` — what a backend returns after appending.

    Fast (every append copies every record): the members come from a record validated when it
    was built, so they are not validated again, and ``seq`` is not checked either (backends
    assign it); :meth:`with_seq` is the checked form.
    """
    cls = type(record)
    stamper = _STAMPERS.get(cls)
    if stamper is None:
        stamper = _STAMPERS[cls] = _make_stamper(cls)
    result: Record = stamper(record, seq)
    return result
