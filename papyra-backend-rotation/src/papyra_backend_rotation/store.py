"""The rotation store: a directory of NDJSON segments with bounded disk use (DESIGN §10)."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections import Counter
from collections.abc import AsyncIterator, Generator, Sequence
from pathlib import Path
from typing import Any

from papyra import codec
from papyra.errors import (
    ConfigError,
    StoreUnhealthyError,
    UnsupportedOperationError,
)
from papyra.filelog import migrate
from papyra.filelog.locking import LogLock
from papyra.filelog.writer import FSYNC_POLICIES, GroupCommitWriter, encode_batch, stamp_batch
from papyra.records import GapRecord, Record, StoredRecord
from papyra.reports import CompactionReport, Health, RecoveryReport, ScanReport, StoreStats
from papyra.retention import RetentionPolicy, RetentionWalk
from papyra.store import Capabilities, ReadQuery, Store

from papyra_backend_rotation import compaction, reading, repair
from papyra_backend_rotation.layout import LOCK_NAME
from papyra_backend_rotation.policy import RotationPolicy
from papyra_backend_rotation.scan import ScanResult, load_layout, scan_directory
from papyra_backend_rotation.segments import ReadLayouts, TailCache
from papyra_backend_rotation.writer import SegmentWriter

_READ_BATCH = 512


class RotationStore(Store):
    """Records in ``segment-<first seq>.ndjson`` files of one directory."""

    backend_name = "rotation"
    capabilities = Capabilities(multi_process=True)

    def __init__(
        self,
        directory: str | Path,
        *,
        url: str | None = None,
        fsync: str = "always",
        fsync_interval_ms: float = 1000,
        max_segment_bytes: int | None = None,
        max_segment_age_seconds: float | None = None,
        max_segments: int | None = None,
        max_total_bytes: int | None = None,
        lock_timeout: float = 10.0,
        max_record_bytes: int | None = None,
        torn_tail: str = "newline",
        quarantine_dir: str | Path | None = None,
        **options: Any,
    ) -> None:
        self.directory = Path(directory).expanduser().absolute()
        super().__init__(url=url or f"rotation://{self.directory}", **options)
        if fsync not in FSYNC_POLICIES:
            raise ConfigError(f"fsync must be one of {', '.join(FSYNC_POLICIES)}, got {fsync!r}")
        self.fsync = fsync
        self.fsync_interval = float(fsync_interval_ms) / 1000.0
        self.policy = RotationPolicy.from_options({
            "max_segment_bytes": max_segment_bytes,
            "max_segment_age_seconds": max_segment_age_seconds,
            "max_segments": max_segments,
            "max_total_bytes": max_total_bytes,
        })
        self.max_record_bytes = max_record_bytes
        if torn_tail not in ("newline", "fail"):
            raise ConfigError(f"torn_tail must be 'newline' or 'fail', got {torn_tail!r}")
        self.torn_tail = torn_tail
        self.default_quarantine_dir = (
            Path(quarantine_dir).expanduser().absolute() if quarantine_dir is not None
            else self.directory.with_name(self.directory.name + ".quarantine"))
        self.lock = LogLock(self.directory / LOCK_NAME, timeout=lock_timeout)
        self.tails = TailCache()
        self._read_layouts = ReadLayouts(
            self.directory, self.tails, lambda: load_layout(self.directory, self.tails))
        self._segment_writer: SegmentWriter | None = None
        self._writer: GroupCommitWriter | None = None

    # ------------------------------------------------------------------ writing

    def _get_writer(self) -> GroupCommitWriter:
        if self._writer is None:
            self._segment_writer = SegmentWriter(
                self.directory, self.lock, self.policy, self.tails,
                seal_fsync=self.fsync != "never", torn_tail=self.torn_tail,
                on_fsync=lambda: self.metrics.add("fsyncs"),
                on_retention_drop=lambda n: self.metrics.records_dropped.inc("retention", n),
            )
            self._writer = GroupCommitWriter(self._segment_writer, policy=self.fsync,
                                             interval=self.fsync_interval,
                                             name="papyra-rotation-writer")
        return self._writer

    async def _append(self, records: Sequence[Record]) -> tuple[list[Record], Counter[str]]:
        # EncodeError / RecordTooLargeError: nothing of the batch written
        bodies = encode_batch(records, self.max_record_bytes, self.directory)
        writer = self._get_writer()
        try:
            first = await writer.append(bodies)
        except StoreUnhealthyError as exc:
            self.unhealthy_reason = str(exc)  # a failed fsync is never retried
            raise
        return stamp_batch(records, bodies, first)

    async def _aclose(self) -> None:
        if self._writer is not None:
            await asyncio.to_thread(self._writer.close)
        self.lock.close()

    # ------------------------------------------------------------------ reading

    def _read(self, query: ReadQuery) -> AsyncIterator[StoredRecord]:
        return self._read_async(query)

    async def _read_async(self, query: ReadQuery) -> AsyncIterator[StoredRecord]:
        if query.newest_limit or (query.newest_first and query.limit is None):
            # a newest-first walk collects what it picks anyway: one thread hop, like one file
            for rec in await asyncio.to_thread(self._read_newest, query):
                yield rec
            return
        gen = self._iter_forward(query)

        def next_batch() -> list[StoredRecord]:
            return list(itertools.islice(gen, _READ_BATCH))

        try:
            while True:
                batch = await asyncio.to_thread(next_batch)
                for rec in batch:
                    yield rec
                if len(batch) < _READ_BATCH:
                    break
        finally:
            gen.close()

    def _policy(self, query: ReadQuery) -> RetentionPolicy:
        return self.retention if query.apply_retention else RetentionPolicy()

    def _iter_forward(self, query: ReadQuery) -> Generator[StoredRecord, None, None]:
        """Oldest first from the retention cut (or ``after_seq``); ``newest_first`` with a
        ``limit`` and ``after_seq`` (the first N after a seq, given newest first) collects."""
        try:
            layout = self._read_layouts.current()
        except FileNotFoundError:
            return  # a store nobody wrote to yet reads as empty (the CLI checks exists())
        policy = self._policy(query)
        start: reading.Position = (0, 0)
        if not policy.unbounded:
            pos, _seq = reading.retention_cutoff(layout, policy, self.retention_rules())
            if pos is not None:
                start = pos
        if query.after_seq is not None:
            start = max(start, self._position_after(layout, query.after_seq))
        out: list[StoredRecord] = []
        taken = 0
        for _pos, _size, line in reading.lines_forward(layout, start):
            rec = reading.decode(line)
            if rec is None or not query.matches(rec):
                continue
            if query.newest_first:
                out.append(rec)
            else:
                yield rec
            taken += 1
            if query.limit is not None and taken >= query.limit:
                break
        if query.newest_first:
            yield from reversed(out)

    @staticmethod
    def _position_after(layout: Any, after_seq: int) -> reading.Position:
        """The segment that may hold ``after_seq + 1`` (names are first seqs)."""
        idx = 0
        for i, seg in enumerate(layout.live):
            if seg.first_seq <= after_seq + 1:
                idx = i
        return (idx, 0)

    def _read_newest(self, query: ReadQuery) -> list[StoredRecord]:
        """Newest-first walk from the end of the newest segment: O(records visited)."""
        if query.limit == 0:
            return []
        try:
            layout = self._read_layouts.current()
        except FileNotFoundError:
            return []  # a store nobody wrote to yet reads as empty
        policy = self._policy(query)
        keep = None
        if not policy.unbounded:
            walk = RetentionWalk(policy, self.retention_rules())
            keep = None if walk.unbounded else walk.keep
        after = query.after_seq
        limit = query.limit
        picked: list[StoredRecord] = []
        decode, decode_error = codec.decode, codec.DecodeError
        # segment by segment, straight over framing's lines (this is the hot path of
        # "newest N"; one generator layer less than reading.lines_backward)
        for _i, lines in reading.segments_backward(layout):
            for _off, size, line, _term in lines:
                if not line:
                    continue
                try:
                    rec = decode(line)
                except decode_error:
                    continue  # a record being written right now, or damage (scan reports it)
                if type(rec) is not GapRecord:
                    if keep is not None and not keep(rec.seq, rec.timestamp, size):
                        break
                    if after is not None and rec.seq is not None and rec.seq <= after:
                        break
                if query.matches(rec):
                    picked.append(rec)
                    if limit is not None and len(picked) >= limit:
                        break
            else:
                continue
            break  # a limit or a rule ended the walk inside this segment
        if not query.newest_first:
            picked.reverse()
        return picked

    # ------------------------------------------------------------------ maintenance

    def _scan_blocking(self) -> ScanResult:
        return scan_directory(self.directory, self.tails, url=self.url,
                              backend=self.backend_name)

    async def _scan(self) -> ScanReport:
        result = await asyncio.to_thread(self._scan_blocking)
        return result.report

    def _quarantine_dir(self, requested: str | None) -> str | None:
        qdir = Path(requested).expanduser().absolute() if requested else \
            self.default_quarantine_dir
        return str(repair.check_quarantine_dir(qdir, self.directory))

    async def _recover(
        self, strategy: Any, *, quarantine_dir: str | None, dry_run: bool
    ) -> RecoveryReport:
        qdir = (await asyncio.to_thread(self._quarantine_dir, quarantine_dir)
                if strategy.name == "quarantine" else None)
        before = await self.scan()
        plan = list(strategy.plan(before, quarantine_dir=qdir))
        if dry_run or not plan:
            return RecoveryReport(store=self.url, mode=strategy.name, dry_run=dry_run,
                                  actions=plan if dry_run else [], before=before,
                                  after=None if dry_run else before)

        def run() -> list[Any]:
            with self.lock.held():
                # re-scan under the lock: writers may have appended since ``before``
                fresh = self._scan_blocking()
                fresh_plan = list(strategy.plan(fresh.report, quarantine_dir=qdir))
                return repair.execute(self.directory, self.lock, fresh, fresh_plan,
                                      Path(qdir) if qdir else None)

        done = await asyncio.to_thread(run)
        dropped = sum(1 for a in done if a.action == "drop")
        if dropped:
            self.metrics.records_dropped.inc("repair", dropped)
        q = sum(1 for a in done if a.action == "quarantine")
        if q:
            self.metrics.add("records_quarantined", q)
        after = await self.scan()
        return RecoveryReport(store=self.url, mode=strategy.name, dry_run=False, actions=done,
                              before=before, after=after)

    async def _compact(self, policy: RetentionPolicy, *, dry_run: bool) -> CompactionReport:
        rules = dict(self.retention_rules())
        return await asyncio.to_thread(
            compaction.compact, self.directory, self.lock, self.tails, policy, rules,
            dry_run=dry_run, url=self.url, backend=self.backend_name)

    async def _stats(self) -> StoreStats:
        return await asyncio.to_thread(self._stats_blocking)

    def _stats_blocking(self) -> StoreStats:
        layout = load_layout(self.directory, self.tails)
        start: reading.Position = (0, 0)
        if not self.retention.unbounded:
            pos, _ = reading.retention_cutoff(layout, self.retention, self.retention_rules())
            if pos is not None:
                start = pos
        kinds: Counter[str] = Counter()
        size = 0
        first = last = None
        oldest = newest = None
        for _pos, n, line in reading.lines_forward(layout, start):
            head = reading.header(line)
            if head is None:
                continue
            size += n
            seq, kind, ts = head
            if kind == "gap":
                rec = reading.decode(line)
                if isinstance(rec, GapRecord):
                    last = rec.through
                continue
            kinds[kind] += 1
            if seq is not None:
                if first is None:
                    first = seq
                last = seq
            oldest = ts if oldest is None else min(oldest, ts)
            newest = ts if newest is None else max(newest, ts)
        return StoreStats(records_by_kind=dict(kinds), bytes=size, first_seq=first,
                          last_seq=last, oldest_timestamp=oldest, newest_timestamp=newest)

    async def exists(self) -> bool:
        return await asyncio.to_thread(self.directory.is_dir)

    async def _health(self) -> Health:
        def check() -> Health:
            detail: dict[str, Any] = {"directory": str(self.directory), "fsync": self.fsync}
            if self._segment_writer is not None and self._segment_writer.broken:
                return Health(ok=False, reason=self._segment_writer.broken, detail=detail)
            target = self.directory
            if not target.exists():
                target = next((p for p in self.directory.parents if p.exists()), Path("/"))
                detail["exists"] = False
            if not target.is_dir():
                return Health(ok=False, reason=f"{target} is not a directory", detail=detail)
            if not os.access(target, os.W_OK | os.X_OK):
                return Health(ok=False, reason=f"directory {target} is not writable",
                              detail=detail)
            return Health(ok=True, detail=detail)

        return await asyncio.to_thread(check)

    # ------------------------------------------------------------------ migration

    async def migrate_from(self, legacy_path: str | Path, *, batch: int = 1000) -> int:
        """Append every record of a legacy 0.3.0 file or rotating set (``path``, ``path.1`` …
        ``path.N``, oldest first), keeping ids and timestamps. Returns the number appended.

        Damaged lines raise :class:`~papyra.errors.AnomaliesFoundError` before anything of
        that line's batch is written (recover the legacy files first).
        """
        self._check_open()
        files = await asyncio.to_thread(migrate.legacy_set_files, Path(legacy_path))
        gen = migrate.iter_legacy_records(files)

        def next_batch() -> list[Record]:
            out: list[Record] = []
            for rec in itertools.islice(gen, batch):
                if not isinstance(rec, GapRecord):
                    out.append(migrate.as_new_record(rec))
            return out

        total = 0
        while True:
            records = await asyncio.to_thread(next_batch)
            if not records:
                return total
            await self.append(records)
            total += len(records)

    async def migrate(self) -> migrate.MigrationResult:
        """In-place migration: a segment directory is always written as v1 by papyra 0.4, so
        there is nothing to rewrite; legacy lines found in segments are reported, not renumbered
        (copy them with :meth:`migrate_from` instead)."""
        self._check_open()
        report = await self.scan()
        if report.legacy_records:
            raise UnsupportedOperationError(
                f"{report.legacy_records} legacy lines inside segments of {self.url}: move the "
                "files out of the directory and run `papyra persistence migrate --path OLD "
                f"--to {self.url}`")
        return migrate.MigrationResult(records=report.records, legacy_records=0, changed=False,
                                       last_seq=report.last_seq or 0)


def create(url: Any, **options: Any) -> RotationStore:
    """Factory registered for ``rotation://`` URLs (options override URL query values)."""
    query = dict(url.query)
    options.setdefault("system_id", query.pop("system_id", "local"))
    for key in ("max_segment_bytes", "max_segments", "max_total_bytes", "max_record_bytes"):
        if key in query:
            options.setdefault(key, _int(key, query.pop(key)))
    for key in ("max_segment_age_seconds", "fsync_interval_ms", "lock_timeout"):
        if key in query:
            options.setdefault(key, _float(key, query.pop(key)))
    for key in ("fsync", "torn_tail", "quarantine_dir"):
        if key in query:
            options.setdefault(key, query.pop(key))
    try:
        return RotationStore(url.file_path(), url=url.redacted, **options)
    except TypeError as exc:
        raise ConfigError(f"bad option for the rotation backend: {exc}") from None


def _int(key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{key} must be an integer, got {value!r}") from None


def _float(key: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{key} must be a number, got {value!r}") from None
