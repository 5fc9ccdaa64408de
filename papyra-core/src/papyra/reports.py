"""Reports returned by scan, recovery and compaction, and their ``--json`` shapes (DESIGN §9)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal, TypeAlias

import attrs

AnomalyKind: TypeAlias = Literal[
    "truncated_tail",
    "missing_trailing_newline",
    "invalid_json",
    "invalid_utf8",
    "schema_violation",
    "checksum_mismatch",
    "unsupported_version",
    "seq_gap",
    "seq_regression",
    "orphaned_file",
    "foreign_file",
    "unreadable",
    "malformed_entry",
    "missing_group",
    "stale_pending",
]

ANOMALY_KINDS: tuple[str, ...] = AnomalyKind.__args__  # type: ignore[attr-defined]
Severity: TypeAlias = Literal["error", "warning"]

ActionKind: TypeAlias = Literal[
    "truncate", "newline", "drop", "gap", "quarantine", "delete", "move"
]


@attrs.frozen(kw_only=True)
class Anomaly:
    """One finding of a scan. Members that do not apply are None."""

    kind: str = attrs.field(validator=attrs.validators.in_(ANOMALY_KINDS))
    severity: Severity = "error"
    file: str | None = None
    stream: str | None = None
    offset: int | None = None
    length: int | None = None
    line: int | None = None
    entry_id: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    def describe(self) -> str:
        """One human line, e.g. ``checksum_mismatch events.ndjson line 7 (offset 1820, ...)``."""
        where = self.file or self.stream or "store"
        parts = [self.kind, where]
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.entry_id is not None:
            parts.append(f"entry {self.entry_id}")
        if self.offset is not None:
            span = f"offset {self.offset}"
            if self.length is not None:
                span += f", {self.length} bytes"
            parts.append(f"({span})")
        text = " ".join(parts)
        return f"{text}: {self.detail}" if self.detail else text


@attrs.frozen(kw_only=True)
class ScanReport:
    """What a read-only scan found. ``records`` excludes gaps and counts legacy records apart."""

    store: str
    backend: str
    records: int = 0
    legacy_records: int = 0
    bytes: int = 0
    anomalies: tuple[Anomaly, ...] = attrs.field(default=(), converter=tuple)
    exists: bool = True
    first_seq: int | None = None
    last_seq: int | None = None

    @property
    def clean(self) -> bool:
        """No anomaly of severity ``error`` (warnings such as ``foreign_file`` do not count)."""
        return not any(a.severity == "error" for a in self.anomalies)

    @property
    def errors(self) -> tuple[Anomaly, ...]:
        return tuple(a for a in self.anomalies if a.severity == "error")

    def counts_by_kind(self) -> dict[str, int]:
        return dict(Counter(a.kind for a in self.anomalies))

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "backend": self.backend,
            "clean": self.clean,
            "exists": self.exists,
            "records": self.records,
            "legacy_records": self.legacy_records,
            "bytes": self.bytes,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "anomalies": [a.to_dict() for a in self.anomalies],
        }


@attrs.frozen(kw_only=True)
class RecoveryAction:
    """One step of a recovery plan, e.g. ``drop`` bytes 1820..2065 of ``events.ndjson``."""

    action: ActionKind
    file: str | None = None
    offset: int | None = None
    length: int | None = None
    to: str | None = None
    anomaly: Anomaly | None = attrs.field(default=None, eq=False)
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "file": self.file,
            "offset": self.offset,
            "length": self.length,
            "to": self.to,
            "detail": self.detail,
        }


def _action_tuple(actions: Sequence[RecoveryAction]) -> tuple[RecoveryAction, ...]:
    return tuple(actions)


@attrs.frozen(kw_only=True)
class RecoveryReport:
    """The plan, what was done, and the scan before and after (``after`` is None on dry runs)."""

    store: str
    mode: str
    dry_run: bool
    actions: tuple[RecoveryAction, ...] = attrs.field(converter=_action_tuple)
    before: ScanReport
    after: ScanReport | None

    @property
    def clean(self) -> bool:
        final = self.after if self.after is not None else self.before
        return final.clean

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "mode": self.mode,
            "dry_run": self.dry_run,
            "actions": [a.to_dict() for a in self.actions],
            "before": self.before.to_dict(),
            "after": self.after.to_dict() if self.after is not None else None,
            "clean": self.clean,
        }


@attrs.frozen(kw_only=True)
class CompactionReport:
    """What physical retention removed. Counts exclude gap records; bytes are on-disk bytes."""

    store: str
    backend: str
    dry_run: bool = False
    before_records: int
    after_records: int
    before_bytes: int | None
    after_bytes: int | None
    first_kept_seq: int | None = None

    @property
    def removed_records(self) -> int:
        return self.before_records - self.after_records

    @property
    def reclaimed_bytes(self) -> int | None:
        if self.before_bytes is None or self.after_bytes is None:
            return None
        return self.before_bytes - self.after_bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "backend": self.backend,
            "dry_run": self.dry_run,
            "before_records": self.before_records,
            "after_records": self.after_records,
            "before_bytes": self.before_bytes,
            "after_bytes": self.after_bytes,
            "removed_records": self.removed_records,
            "reclaimed_bytes": self.reclaimed_bytes,
            "first_kept_seq": self.first_kept_seq,
        }


@attrs.frozen(kw_only=True)
class StoreStats:
    """Cheap statistics of a store (``papyra inspect summary``, metrics gauges)."""

    records_by_kind: dict[str, int]
    bytes: int | None
    first_seq: int | None
    last_seq: int | None
    oldest_timestamp: float | None
    newest_timestamp: float | None

    @property
    def records(self) -> int:
        return sum(self.records_by_kind.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "records_by_kind": dict(self.records_by_kind),
            "bytes": self.bytes,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "oldest_timestamp": self.oldest_timestamp,
            "newest_timestamp": self.newest_timestamp,
        }


@attrs.frozen(kw_only=True)
class Health:
    """``health()``: can the store be used right now, and if not, why."""

    ok: bool
    reason: str | None = None
    detail: dict[str, Any] = attrs.field(factory=dict)


def merge_anomalies(*groups: Sequence[Anomaly]) -> tuple[Anomaly, ...]:
    """Concatenate anomaly groups in order (helper for multi-file scans)."""
    return tuple(a for g in groups for a in g)
