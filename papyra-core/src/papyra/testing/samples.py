"""Sample records for tests: every kind, distinct timestamps, payloads worth round-tripping."""

from __future__ import annotations

import time
from collections.abc import Sequence

from papyra.records import AuditRecord, DeadLetterRecord, EventRecord, Record

SYSTEM_ID = "conformance"


def sample_event(i: int = 0, *, timestamp: float | None = None, tag: str = "") -> EventRecord:
    """An event whose payload carries nested values and non-ASCII text."""
    return EventRecord(
        system_id=SYSTEM_ID,
        actor_address=f"{SYSTEM_ID}:{i % 7}",
        event_type=("ActorStarted", "ActorCrashed", "ActorRestarted", "ActorStopped")[i % 4],
        payload={"i": i, "tag": tag, "error": "ValueError: héllo ✓", "nested": {"n": [1, 2.5]}},
        timestamp=time.time() if timestamp is None else timestamp,
    )


def sample_audit(i: int = 0, *, timestamp: float | None = None, tag: str = "") -> AuditRecord:
    """An audit snapshot with orphans and per-actor details."""
    return AuditRecord(
        system_id=SYSTEM_ID,
        total_actors=i + 3,
        alive_actors=i + 2,
        stopping_actors=1,
        restarting_actors=0,
        registry_size=i + 3,
        registry_orphans=(f"orphan-{i}",),
        registry_dead=(),
        dead_letters_count=i,
        actors=({"address": f"{SYSTEM_ID}:{i}", "alive": True, "tag": tag},),
        timestamp=time.time() if timestamp is None else timestamp,
    )


def sample_dead_letter(
    i: int = 0, *, timestamp: float | None = None, tag: str = ""
) -> DeadLetterRecord:
    """A dead letter; every other one has no target and a string payload."""
    return DeadLetterRecord(
        system_id=SYSTEM_ID,
        target=f"{SYSTEM_ID}:{i}" if i % 2 == 0 else None,
        message_type="dict" if i % 2 == 0 else "str",
        payload={"msg": "to-dead", "n": i, "tag": tag} if i % 2 == 0 else f"are you there? {tag}",
        expects_reply=i % 3 == 0,
        timestamp=time.time() if timestamp is None else timestamp,
    )


def sample_records(
    n: int,
    *,
    start: int = 0,
    base_timestamp: float | None = None,
    step: float = 1.0,
    tag: str = "",
) -> list[Record]:
    """``n`` records cycling event, audit, dead letter, with increasing timestamps.

    Timestamps are ``base_timestamp + k * step`` (``base_timestamp`` defaults to an hour ago,
    so none of them is in the future and none is older than a day).
    """
    base = time.time() - 3600 if base_timestamp is None else base_timestamp
    makers = (sample_event, sample_audit, sample_dead_letter)
    out: list[Record] = []
    for k in range(start, start + n):
        out.append(makers[k % 3](k, timestamp=base + k * step, tag=tag))
    return out


def ids(records: Sequence[object]) -> list[str]:
    """The ``id`` of each record, in order."""
    return [r.id for r in records]  # type: ignore[attr-defined]


def seqs(records: Sequence[object]) -> list[int]:
    """The ``seq`` of each record, in order."""
    return [r.seq for r in records]  # type: ignore[attr-defined]
