"""``JsonStore``: one NDJSON file, many writers, checkable and repairable (DESIGN §3-§6).

Built on :mod:`papyra.filelog`: appends go through a group-commit writer thread under the
``flock`` of ``<log>.lock``; reads, scans, repairs and compactions run in worker threads so the
event loop never blocks on file I/O.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections import Counter
from collections.abc import AsyncIterator, Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from papyra import codec
from papyra.errors import (
    ConfigError,
    StoreNotFoundError,
    StoreUnavailableError,
    StoreUnhealthyError,
)
from papyra.filelog import compaction, framing, migrate, repair
from papyra.filelog.fsio import file_identity, open_read, open_read_sized, unavailable
from papyra.filelog.locking import LogLock, lock_path_for
from papyra.filelog.rewrite import leftovers
from papyra.filelog.writer import (
    FSYNC_POLICIES,
    AppendFile,
    GroupCommitWriter,
    encode_batch,
    stamp_batch,
)
from papyra.records import GapRecord, Record, StoredRecord
from papyra.reports import (
    Anomaly,
    CompactionReport,
    Health,
    RecoveryAction,
    ScanReport,
    StoreStats,
)
from papyra.retention import RetentionPolicy, RetentionWalk
from papyra.store import Capabilities, ReadQuery, Store
from papyra.urls import StoreURL

DEFAULT_MAX_RECORD_BYTES = 1 << 20
_CHUNK_RECORDS = 2000


def _policy(value: Any) -> str:
    policy = str(value).strip().lower()
    if policy not in FSYNC_POLICIES:
        raise ConfigError(
            f"fsync must be one of {', '.join(FSYNC_POLICIES)}, got {value!r}"
        )
    return policy


def _positive(name: str, value: Any, *, allow_zero: bool = False, kind: type = int) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or number < 0 or (number == 0 and not allow_zero):
        raise ConfigError(f"{name} must be {'non-negative' if allow_zero else 'positive'}, "
                          f"got {value!r}")
    return number


class JsonStore(Store):
    """A single NDJSON file (``json:///path/to/log.ndjson``)."""

    backend_name = "json"
    capabilities = Capabilities(multi_process=True)

    def __init__(
        self,
        url: str,
        *,
        path: str | os.PathLike[str],
        fsync: str = "always",
        fsync_interval_ms: float = 1000,
        max_record_bytes: int | None = DEFAULT_MAX_RECORD_BYTES,
        lock_timeout: float = 10.0,
        torn_tail: str = "newline",
        quarantine_dir: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(url=url, **options)
        self.path = Path(path)
        self.fsync = _policy(fsync)
        self.fsync_interval = _positive("fsync_interval_ms", fsync_interval_ms,
                                        kind=float) / 1000.0
        self.max_record_bytes = (None if max_record_bytes is None
                                 else _positive("max_record_bytes", max_record_bytes))
        self.lock_timeout = _positive("lock_timeout", lock_timeout, allow_zero=True, kind=float)
        if torn_tail not in ("newline", "fail"):
            raise ConfigError(f"torn_tail must be 'newline' or 'fail', got {torn_tail!r}")
        self.torn_tail = torn_tail
        self.default_quarantine_dir = (Path(quarantine_dir) if quarantine_dir is not None
                                       else self.path.with_name(self.path.name + ".quarantine"))
        self._writer: GroupCommitWriter | None = None
        self._append_file: AppendFile | None = None
        self._scanned_identity: tuple[int, int] | None = None
        self._verified_hint: tuple[tuple[int, int], list[tuple[int, int]],
                                   list[tuple[int, int, framing.Stretch]]] | None = None
        self._scanned_stretches: list[framing.Stretch] = []

    # ------------------------------------------------------------------ helpers

    @property
    def lock_path(self) -> Path:
        return lock_path_for(self.path)

    def _lock(self) -> LogLock:
        """A fresh lock object: conflicts with this store's own writer thread, as it must."""
        return LogLock(self.lock_path, timeout=self.lock_timeout)

    @contextmanager
    def _maintenance_lock(self) -> Iterator[LogLock]:
        lock = self._lock()
        try:
            yield lock
        finally:
            lock.close()

    def _ensure_writer(self) -> GroupCommitWriter:
        if self._writer is None:
            self._append_file = AppendFile(self.path, self._lock(), torn_tail=self.torn_tail)
            self._writer = GroupCommitWriter(self._append_file, policy=self.fsync,
                                             interval=self.fsync_interval,
                                             name=f"papyra-json-writer:{self.path.name}")
        return self._writer

    def _open_existing(self) -> int:
        return open_read(self.path)

    # ------------------------------------------------------------------ writing

    async def _append(self, records: Sequence[Record]) -> tuple[list[Record], Counter[str]]:
        bodies = encode_batch(records, self.max_record_bytes, self.path)
        writer = self._ensure_writer()
        try:
            first = await writer.append(bodies)
        except StoreUnhealthyError as exc:
            self.unhealthy_reason = str(exc)
            raise
        stored, sizes = stamp_batch(records, bodies, first)
        if self._append_file is not None:
            self.metrics.fsyncs = self._append_file.fsyncs
        return stored, sizes

    async def _aclose(self) -> None:
        writer = self._writer
        if writer is not None:
            await asyncio.to_thread(writer.close)
            if writer.broken is not None:
                self.unhealthy_reason = writer.broken
            if self._append_file is not None:
                self.metrics.fsyncs = self._append_file.fsyncs

    async def flush(self) -> None:
        """Wait until every append so far is written (and fsynced per the policy)."""
        if self._writer is not None:
            await asyncio.to_thread(self._writer.flush)

    # ------------------------------------------------------------------ reading

    def _retention_walk(self, query: ReadQuery) -> RetentionWalk | None:
        if not query.apply_retention or self.retention.unbounded:
            return None
        return RetentionWalk(self.retention, self.retention_rules())

    def _read_newest(self, query: ReadQuery) -> list[StoredRecord]:
        """Newest-first walk from the end: O(records visited), never the whole file."""
        walk = self._retention_walk(query)
        limit = query.limit
        picked: list[StoredRecord] = []
        if limit == 0:
            return picked
        fd, end = open_read_sized(self.path)
        try:
            for _off, size, line, terminated in framing.iter_lines_reverse(fd, end):
                if not terminated or not line:
                    continue  # a record being written right now, or a torn tail
                try:
                    rec = codec.decode(line)
                except codec.DecodeError:
                    continue
                if walk is not None and not isinstance(rec, GapRecord) and not walk.keep(
                    rec.seq, rec.timestamp, size
                ):
                    break
                if query.matches(rec):
                    picked.append(rec)
                    if limit is not None and len(picked) >= limit:
                        break
        finally:
            os.close(fd)
        if not query.newest_first:
            picked.reverse()
        return picked

    def _forward(self, query: ReadQuery) -> Generator[list[StoredRecord], None, None]:
        fd = self._open_existing()
        try:
            end = os.fstat(fd).st_size
            start = 0
            if query.apply_retention and not self.retention.unbounded:
                cut = compaction.find_cut(fd, end, self.retention, self.retention_rules())
                if cut is not None:
                    start = cut.offset
            if query.after_seq is not None:
                start = max(start, framing.offset_after_seq(fd, end, query.after_seq))
            remaining = query.limit
            batch: list[StoredRecord] = []
            for _off, _size, line, terminated in framing.iter_lines(fd, start, end):
                if not terminated or not isinstance(line, bytes) or not line:
                    continue
                try:
                    rec = codec.decode(line)
                except codec.DecodeError:
                    continue
                if not query.matches(rec):
                    continue
                batch.append(rec)
                if remaining is not None:
                    remaining -= 1
                    if remaining <= 0:
                        break
                if len(batch) >= _CHUNK_RECORDS:
                    yield batch
                    batch = []
            if batch:
                yield batch
        finally:
            os.close(fd)

    def _read_newest_or_empty(self, query: ReadQuery) -> list[StoredRecord]:
        try:
            return self._read_newest(query)
        except StoreNotFoundError:
            return []

    async def _read(self, query: ReadQuery) -> AsyncIterator[StoredRecord]:
        # a store nobody wrote to yet reads as empty (conformance suite)
        if query.limit == 0:
            return
        if query.after_seq is None and (query.limit is not None or query.newest_first):
            for rec in await asyncio.to_thread(self._read_newest_or_empty, query):
                yield rec
            return
        if not await self.exists():
            return
        chunks = self._forward(query)
        collected: list[StoredRecord] = []
        try:
            while True:
                batch = await asyncio.to_thread(next, chunks, None)
                if batch is None:
                    break
                if query.newest_first:
                    collected.extend(batch)
                    continue
                for rec in batch:
                    yield rec
        finally:
            await asyncio.to_thread(chunks.close)
        for rec in reversed(collected):
            yield rec

    # ------------------------------------------------------------------ scan

    def _scan_sync(self) -> ScanReport:
        hint, self._verified_hint = self._verified_hint, None
        fd = self._open_existing()
        try:
            st = os.fstat(fd)
            self._scanned_identity = file_identity(st)
            if hint is not None and hint[0] == self._scanned_identity:
                scanner = framing.FileScanner(str(self.path), trusted=hint[1], known=hint[2])
            else:
                scanner = framing.FileScanner(str(self.path))
            scanner.run(fd)
            self._scanned_stretches = scanner.stretches
        except OSError as exc:
            raise unavailable(self.path, exc, "scan") from None
        finally:
            os.close(fd)
        anomalies = list(scanner.anomalies)
        for left in leftovers(self.path):
            try:
                size = os.lstat(left).st_size
            except OSError:
                continue
            anomalies.append(Anomaly(kind="orphaned_file", file=str(left), offset=0,
                                     length=size,
                                     detail="temp file left by an interrupted rewrite"))
        return ScanReport(store=self.url, backend=self.backend_name, records=scanner.records,
                          legacy_records=scanner.legacy_records, bytes=scanner.bytes,
                          anomalies=cast(Any, anomalies), first_seq=scanner.first_seq,
                          last_seq=scanner.last_seq)

    async def _scan(self) -> ScanReport:
        return await asyncio.to_thread(self._scan_sync)

    # ------------------------------------------------------------------ recovery

    def _quarantine_dir(self, requested: str | None) -> str | None:
        directory = Path(requested) if requested else self.default_quarantine_dir
        try:
            if stat.S_ISLNK(os.lstat(directory).st_mode):
                raise ConfigError(
                    f"quarantine directory {directory} is a symbolic link; refusing to write there"
                )
        except FileNotFoundError:
            pass
        return str(directory)

    async def _execute(
        self, plan: list[RecoveryAction], before: ScanReport, *, quarantine_dir: str | None
    ) -> list[RecoveryAction]:
        qdir = Path(quarantine_dir) if quarantine_dir else None
        needs_dir = any(a.action in ("quarantine", "move") for a in plan)

        untrusted = [(a.offset, a.offset + max(a.length or 0, 1)) for a in before.anomalies
                     if a.offset is not None and a.file == str(self.path)]
        # what the scan before found clean, for the post-scan to count without reading it
        verified = repair.Verified(self._scanned_stretches)

        def run() -> list[RecoveryAction]:
            if qdir is not None and needs_dir:
                repair.prepare_quarantine_dir(qdir)
            with self._maintenance_lock() as lock:
                return repair.execute_plan(self.path, lock, plan,
                                           quarantine_dir=qdir if needs_dir else None,
                                           label=str(self.path),
                                           expect_identity=self._scanned_identity,
                                           untrusted=untrusted, verified=verified)

        done = await asyncio.to_thread(run)
        if verified.identity is not None:
            # the post-scan that follows need not re-checksum what was copied verbatim
            self._verified_hint = (verified.identity, verified.ranges, verified.known)
        removed = sum(1 for a in done if a.action in ("drop", "truncate"))
        if removed:
            self.metrics.records_dropped.inc("repair", removed)
        quarantined = sum(1 for a in done if a.action == "quarantine")
        if quarantined:
            self.metrics.add("records_quarantined", quarantined)
        return done

    # ------------------------------------------------------------------ compaction

    async def _compact(self, policy: RetentionPolicy, *, dry_run: bool) -> CompactionReport:
        rules = self.retention_rules()

        def run() -> compaction.CompactionResult:
            with self._maintenance_lock() as lock:
                return compaction.compact_file(self.path, lock, policy, rules,
                                               dry_run=dry_run)

        result = await asyncio.to_thread(run)
        return CompactionReport(store=self.url, backend=self.backend_name, dry_run=dry_run,
                                before_records=result.before_records,
                                after_records=result.after_records,
                                before_bytes=result.before_bytes,
                                after_bytes=result.after_bytes,
                                first_kept_seq=result.first_kept_seq)

    # ------------------------------------------------------------------ migration

    async def migrate(self) -> migrate.MigrationResult:
        """Rewrite a legacy 0.3.0 log as v1 in place (the caller checks it is clean first)."""
        self._check_open()

        def run() -> migrate.MigrationResult:
            with self._maintenance_lock() as lock:
                return migrate.migrate_file(self.path, lock)

        return await asyncio.to_thread(run)

    # ------------------------------------------------------------------ stats, health

    def _stats_sync(self) -> StoreStats:
        fd = self._open_existing()
        try:
            end = os.fstat(fd).st_size
            start = 0
            if not self.retention.unbounded:
                cut = compaction.find_cut(fd, end, self.retention, self.retention_rules())
                if cut is not None:
                    start = cut.offset
            kinds: Counter[str] = Counter()
            first_seq: int | None = None
            last_seq: int | None = None
            oldest = newest = None
            for _off, _size, line, terminated in framing.iter_lines(fd, start, end):
                if not terminated or not isinstance(line, bytes) or not line:
                    continue
                seq: int | None
                through: int | None
                head = framing.quick_header(line)
                if head is not None:
                    seq, kind, ts = head
                    through = seq
                    if kind == "gap":
                        status, _a, b, _i = framing.check_line(line)
                        if status != framing.GAP:
                            continue
                        through = int(b)
                else:
                    try:
                        rec = codec.decode(line)
                    except codec.DecodeError:
                        continue
                    kind, ts = rec.kind, rec.timestamp
                    seq = rec.seq
                    through = getattr(rec, "through", seq)
                if seq is not None:
                    if first_seq is None:
                        first_seq = seq
                    last_seq = through
                if kind == "gap":
                    continue
                kinds[kind] += 1
                oldest = ts if oldest is None else min(oldest, ts)
                newest = ts if newest is None else max(newest, ts)
            return StoreStats(records_by_kind=dict(kinds), bytes=end - start,
                              first_seq=first_seq, last_seq=last_seq,
                              oldest_timestamp=oldest, newest_timestamp=newest)
        finally:
            os.close(fd)

    async def _stats(self) -> StoreStats:
        return await asyncio.to_thread(self._stats_sync)

    async def exists(self) -> bool:
        try:
            return stat.S_ISREG((await asyncio.to_thread(os.stat, self.path)).st_mode)
        except OSError:
            return False

    async def _health(self) -> Health:
        def check() -> Health:
            detail: dict[str, Any] = {"path": str(self.path), "fsync": self.fsync}
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                parent = next((p for p in [self.path.parent, *self.path.parent.parents]
                               if p.exists()), None)
                if parent is None or not parent.is_dir():
                    return Health(ok=False, reason=f"cannot create {self.path}", detail=detail)
                if not os.access(parent, os.W_OK | os.X_OK):
                    return Health(ok=False, reason=f"directory {parent} is not writable",
                                  detail=detail)
                return Health(ok=True, detail={**detail, "exists": False})
            except OSError as exc:
                return Health(ok=False, reason=str(unavailable(self.path, exc, "stat")),
                              detail=detail)
            if not stat.S_ISREG(st.st_mode):
                return Health(ok=False, reason=f"{self.path} is not a regular file",
                              detail=detail)
            if not os.access(self.path, os.R_OK | os.W_OK):
                return Health(ok=False, reason=f"{self.path} is not readable and writable",
                              detail=detail)
            return Health(ok=True, detail={**detail, "exists": True, "bytes": st.st_size})

        return await asyncio.to_thread(check)


def _coerce(options: dict[str, Any], query: Mapping[str, str]) -> dict[str, Any]:
    """URL query options (strings) under explicit keyword options."""
    merged: dict[str, Any] = {}
    for key in ("fsync", "fsync_interval_ms", "max_record_bytes", "lock_timeout", "system_id",
                "torn_tail", "quarantine_dir"):
        if key in query:
            merged[key] = query[key]
    merged.update(options)
    if isinstance(merged.get("max_record_bytes"), str):
        text = merged["max_record_bytes"].strip().lower()
        merged["max_record_bytes"] = None if text in ("", "none", "0") else text
    return merged


def create(url: StoreURL, **options: Any) -> JsonStore:
    """Factory registered for ``json://`` (and the ``--path`` shorthand for files)."""
    path = url.file_path()
    merged = _coerce(dict(options), url.query)
    merged.setdefault("system_id", "local")
    if str(path).endswith(os.sep):
        raise ConfigError(f"json store needs a file path, got a directory path: {url.redacted}")
    try:
        return JsonStore(url.redacted, path=path, **merged)
    except TypeError as exc:
        raise ConfigError(f"bad option for the json backend: {exc}") from None


__all__ = ["DEFAULT_MAX_RECORD_BYTES", "JsonStore", "StoreNotFoundError",
           "StoreUnavailableError", "create"]
