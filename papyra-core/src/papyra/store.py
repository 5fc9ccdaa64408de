"""The backend contract (DESIGN §4): what every store does, whoever wrote it.

A backend subclasses :class:`Store` and implements the underscore methods. The public methods
wrap them with what must be the same everywhere: argument checks, metrics, observer hooks, the
recovery planning (strategies are plugins), closed-store errors. Backends are built by
:func:`papyra.open_store` from a URL; constructors do no I/O.
"""

from __future__ import annotations

import abc
import asyncio
import operator
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Self

import attrs

from papyra.errors import ConfigError, StoreClosedError, UnsupportedOperationError
from papyra.metrics import StoreMetrics
from papyra.records import (
    AuditRecord,
    DeadLetterRecord,
    EventRecord,
    GapRecord,
    Record,
    StoredRecord,
    normalize_kinds,
)
from papyra.reports import CompactionReport, Health, RecoveryAction, RecoveryReport, ScanReport
from papyra.retention import RetentionPolicy, RetentionRule

if TYPE_CHECKING:
    from papyra.plugin_manager import PluginManager

FSYNC_POLICIES = ("always", "interval", "never")
_APPENDABLE = (EventRecord, AuditRecord, DeadLetterRecord)
_kind_of = operator.attrgetter("kind")


@attrs.frozen(kw_only=True)
class Capabilities:
    """What a backend can do; front ends consult this instead of guessing."""

    scan: bool = True
    recover: bool = True
    compact: bool = True
    durable: bool = True
    """Records survive a process restart."""
    multi_process: bool = False
    """Several processes may append to the same store."""
    follow: bool = True
    """``read(after_seq=...)`` can be polled to follow new records."""
    consumer_groups: bool = False

    def to_dict(self) -> dict[str, bool]:
        return attrs.asdict(self)


@attrs.frozen(kw_only=True)
class ReadQuery:
    """Normalised arguments of :meth:`Store.read`."""

    kinds: frozenset[str] | None = None
    since: float | None = None
    until: float | None = None
    limit: int | None = None
    newest_first: bool = False
    after_seq: int | None = None
    include_gaps: bool = False
    apply_retention: bool = True

    def matches(self, record: StoredRecord) -> bool:
        """Kind and time filters (not limit, not retention)."""
        if isinstance(record, GapRecord):
            return self.include_gaps
        if self.kinds is not None and record.kind not in self.kinds:
            return False
        if self.since is not None and record.timestamp < self.since:
            return False
        if self.until is not None and record.timestamp > self.until:
            return False
        return not (
            self.after_seq is not None and (record.seq is None or record.seq <= self.after_seq)
        )

    @property
    def newest_limit(self) -> bool:
        """``limit`` picks the newest N (True) or, when paging with ``after_seq``, the first N."""
        return self.limit is not None and self.after_seq is None


class Store(abc.ABC):
    """Base class of every papyra backend."""

    backend_name: ClassVar[str] = "store"
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(
        self,
        *,
        url: str,
        system_id: str = "local",
        retention: RetentionPolicy | Mapping[str, Any] | None = None,
        metrics: StoreMetrics | None = None,
        plugins: PluginManager | None = None,
    ) -> None:
        from papyra.urls import redact

        self.url = redact(url)
        self.system_id = system_id
        if isinstance(retention, Mapping):
            retention = RetentionPolicy.from_mapping(retention)
        self.retention: RetentionPolicy = retention or RetentionPolicy()
        self.metrics = metrics or StoreMetrics(self.backend_name)
        self.plugins: PluginManager | None = plugins
        self.closed = False
        self.unhealthy_reason: str | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> Self:
        """Prepare for use (optional: every operation opens lazily)."""
        return self

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Flush everything pending, then release resources. Idempotent."""
        if self.closed:
            return
        try:
            await self._aclose()
        finally:
            self.closed = True

    def _check_open(self) -> None:
        if self.closed:
            raise StoreClosedError(f"store {self.url} is closed")

    # ------------------------------------------------------------------ plugins

    def _plugins(self) -> PluginManager:
        if self.plugins is None:
            from papyra.plugin_manager import get_plugin_manager

            self.plugins = get_plugin_manager()
        return self.plugins

    def retention_rules(self) -> Mapping[str, RetentionRule]:
        """Rules in force: the built-ins, plus plugins' when a plugin manager is attached."""
        if self.plugins is None:
            from papyra.retention import builtin_rules

            if set(self.retention.extra) - set(builtin_rules()):
                return self._plugins().retention_rules()
            return builtin_rules()
        return self.plugins.retention_rules()

    def _notify(self, hook: str, report: Any) -> None:
        if self.plugins is not None:
            self.plugins.notify(hook, report)

    # ------------------------------------------------------------------ writing

    async def append(self, records: Sequence[Record]) -> list[Record]:
        """Append a batch; returns the records with their ``seq``. Durable per fsync policy."""
        self._check_open()
        if not records:
            return []
        for r in records:
            if type(r) not in _APPENDABLE and not isinstance(r, _APPENDABLE):
                raise TypeError(f"cannot append {type(r).__name__}; expected a papyra record")
        start = time.perf_counter()
        try:
            stored, sizes = await self._append(records)
        except Exception:
            self.metrics.add("write_errors")
            raise
        kinds: Counter[str] = Counter(map(_kind_of, stored))
        self.metrics.observe_append(kinds, sizes, time.perf_counter() - start)
        return stored

    async def record_event(self, **fields: Any) -> EventRecord:
        fields.setdefault("system_id", self.system_id)
        rec = (await self.append([EventRecord(**fields)]))[0]
        assert isinstance(rec, EventRecord)
        return rec

    async def record_audit(self, **fields: Any) -> AuditRecord:
        fields.setdefault("system_id", self.system_id)
        rec = (await self.append([AuditRecord(**fields)]))[0]
        assert isinstance(rec, AuditRecord)
        return rec

    async def record_dead_letter(self, **fields: Any) -> DeadLetterRecord:
        fields.setdefault("system_id", self.system_id)
        rec = (await self.append([DeadLetterRecord(**fields)]))[0]
        assert isinstance(rec, DeadLetterRecord)
        return rec

    # ------------------------------------------------------------------ reading

    def read(
        self,
        *,
        kinds: str | Iterable[str] | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
        newest_first: bool = False,
        after_seq: int | None = None,
        include_gaps: bool = False,
        apply_retention: bool = True,
    ) -> AsyncIterator[StoredRecord]:
        """Records in log order (``newest_first`` reverses it).

        ``limit=N`` selects the newest N matching records (cost O(N), not O(log size)); with
        ``after_seq`` it selects the first N after that seq instead (paging forward). Retention
        is applied logically unless ``apply_retention=False``; gap records only with
        ``include_gaps=True``.
        """
        self._check_open()
        if limit is not None and (isinstance(limit, bool) or limit < 0):
            raise ConfigError(f"limit must be a non-negative integer, got {limit!r}")
        query = ReadQuery(
            kinds=normalize_kinds(kinds), since=since, until=until, limit=limit,
            newest_first=newest_first, after_seq=after_seq, include_gaps=include_gaps,
            apply_retention=apply_retention,
        )
        return self._counted(self._read(query))

    async def _counted(self, it: AsyncIterator[StoredRecord]) -> AsyncIterator[StoredRecord]:
        counts: Counter[str] = Counter()
        try:
            async for rec in it:
                counts[rec.kind] += 1
                yield rec
        finally:
            for kind, n in counts.items():
                self.metrics.records_read.inc(kind, n)

    async def read_all(self, **query: Any) -> list[StoredRecord]:
        """``read()`` collected into a list (convenience for tests and small logs)."""
        return [r async for r in self.read(**query)]

    # ------------------------------------------------------------------ maintenance

    async def scan(self) -> ScanReport:
        """Read-only check of the whole store; never changes a byte."""
        self._check_open()
        report = await self._scan()
        self.metrics.observe_scan(report)
        self._notify("papyra_on_scan", report)
        return report

    async def recover(
        self,
        mode: str = "repair",
        *,
        quarantine_dir: str | None = None,
        dry_run: bool = False,
    ) -> RecoveryReport:
        """Plan with the recovery strategy ``mode`` and, unless ``dry_run``, carry the plan out."""
        self._check_open()
        if not self.capabilities.recover:
            raise UnsupportedOperationError(f"backend {self.backend_name!r} cannot recover")
        strategy = self._plugins().recovery_strategy(mode)
        report = await self._recover(strategy, quarantine_dir=quarantine_dir, dry_run=dry_run)
        self.metrics.recoveries.inc(strategy.name)
        self._notify("papyra_on_recovery", report)
        return report

    async def _recover(
        self, strategy: Any, *, quarantine_dir: str | None, dry_run: bool
    ) -> RecoveryReport:
        """Default recovery: scan, plan, execute, re-scan. Backends override ``_execute``."""
        before = await self.scan()
        qdir = self._quarantine_dir(quarantine_dir) if strategy.name == "quarantine" else None
        plan: list[RecoveryAction] = list(strategy.plan(before, quarantine_dir=qdir))
        if dry_run:
            return RecoveryReport(store=self.url, mode=strategy.name, dry_run=True,
                                  actions=plan, before=before, after=None)
        done = await self._execute(plan, before, quarantine_dir=qdir) if plan else []
        after = await self.scan() if plan else before
        return RecoveryReport(store=self.url, mode=strategy.name, dry_run=False,
                              actions=done, before=before, after=after)

    def _quarantine_dir(self, requested: str | None) -> str | None:
        return requested

    async def _execute(
        self, plan: list[RecoveryAction], before: ScanReport, *, quarantine_dir: str | None
    ) -> list[RecoveryAction]:
        raise UnsupportedOperationError(f"backend {self.backend_name!r} cannot carry out repairs")

    async def compact(
        self, retention: RetentionPolicy | None = None, *, dry_run: bool = False
    ) -> CompactionReport:
        """Apply retention physically (the only thing that deletes records)."""
        self._check_open()
        if not self.capabilities.compact:
            raise UnsupportedOperationError(f"backend {self.backend_name!r} cannot compact")
        policy = self.retention.merged(retention)
        report = await self._compact(policy, dry_run=dry_run)
        if not dry_run:
            self.metrics.add("compactions")
            self.metrics.records_dropped.inc("retention", report.removed_records)
            if report.reclaimed_bytes:
                self.metrics.add("reclaimed_bytes", report.reclaimed_bytes)
        self._notify("papyra_on_compaction", report)
        return report

    async def stats(self) -> Any:
        """Records by kind, bytes, first/last seq, oldest/newest timestamp."""
        self._check_open()
        return await self._stats()

    async def health(self) -> Health:
        """Whether the store is usable now (not whether it is clean: that is ``scan``)."""
        if self.closed:
            return Health(ok=False, reason="closed")
        if self.unhealthy_reason is not None:
            return Health(ok=False, reason=self.unhealthy_reason)
        return await self._health()

    async def exists(self) -> bool:
        """Whether the store holds a log at all (False on a first boot)."""
        return True

    # ------------------------------------------------------------------ for subclasses

    @abc.abstractmethod
    async def _append(self, records: Sequence[Record]) -> tuple[list[Record], Counter[str]]:
        """Write the batch; return the stored records and bytes written per kind."""

    @abc.abstractmethod
    def _read(self, query: ReadQuery) -> AsyncIterator[StoredRecord]:
        """Yield records for ``query`` (filters, limit, retention, order)."""

    @abc.abstractmethod
    async def _scan(self) -> ScanReport: ...

    @abc.abstractmethod
    async def _compact(self, policy: RetentionPolicy, *, dry_run: bool) -> CompactionReport: ...

    @abc.abstractmethod
    async def _stats(self) -> Any: ...

    async def _health(self) -> Health:
        return Health(ok=True)

    async def _aclose(self) -> None:
        return None


async def gather_records(it: AsyncIterator[StoredRecord]) -> list[StoredRecord]:
    """Collect an async iterator of records (small helper shared by tests and tools)."""
    return [r async for r in it]


def run_blocking(func: Any, /, *args: Any) -> Any:
    """Run blocking file work off the event loop (one hop per call)."""
    return asyncio.to_thread(func, *args)
