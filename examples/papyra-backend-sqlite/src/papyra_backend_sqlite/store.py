"""papyra records in one SQLite database.

Every record is stored as the exact v1 line papyra's codec produces (checksum included, newline
excluded), next to the columns needed to query it: ``seq`` (the primary key), ``last`` (the last
seq the row stands for: ``through`` for a gap record, ``seq`` otherwise), ``kind`` and
``timestamp``. Keeping the codec's bytes means a scan can verify each record's checksum exactly
as the file backends do, and ``papyra inspect`` prints the same lines.

All SQLite work runs on one worker thread owned by the store (SQLite connections are bound to
a thread), one hop per batch or per chunk of rows, so the event loop never blocks.

Decisions this backend makes where papyra's contract leaves room:

- Bytes (for ``max_total_bytes``, stats and compaction reports) are the record's line length plus
  one, as if it were stored in a file; SQLite's page overhead is not counted.
- ``fsync`` maps to ``PRAGMA synchronous``: ``always`` → ``FULL``, ``interval`` → ``NORMAL``
  (WAL checkpoints fsync), ``never`` → ``OFF``.
- Several processes may append: SQLite's own locking (``BEGIN IMMEDIATE``) serialises batches, so
  seqs stay unique and contiguous.
- Reading a database that does not exist yields nothing; ``scan``, ``recover`` and ``compact``
  raise :class:`papyra.StoreNotFoundError` (CLI exit 4, or a clean first boot for startup checks).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import sqlite3
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from papyra import (
    Anomaly,
    CompactionReport,
    ConfigError,
    GapRecord,
    Health,
    Record,
    RecoveryAction,
    RetentionPolicy,
    ScanReport,
    Store,
    StoreNotFoundError,
    StoreStats,
    StoreUnavailableError,
    codec,
)
from papyra.records import StoredRecord
from papyra.retention import RetentionWalk
from papyra.store import Capabilities, ReadQuery

T = TypeVar("T")

_SYNCHRONOUS = {"always": "FULL", "interval": "NORMAL", "never": "OFF"}
_CHUNK = 512
NEWLINE = b"\n"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    last INTEGER NOT NULL,
    kind TEXT NOT NULL,
    timestamp REAL NOT NULL,
    line BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS records_kind_seq ON records (kind, seq);
"""


class SqliteStore(Store):
    """A papyra store backed by one SQLite database file."""

    backend_name = "sqlite"
    capabilities = Capabilities(durable=True, multi_process=True)

    def __init__(self, url: str, *, path: str | os.PathLike[str], fsync: str = "always",
                 busy_timeout: float = 10.0, **options: Any) -> None:
        super().__init__(url=url, **options)
        if fsync not in _SYNCHRONOUS:
            raise ConfigError(f"fsync must be one of {', '.join(_SYNCHRONOUS)}, got {fsync!r}")
        self.path = Path(path)
        self.fsync = fsync
        self.busy_timeout = busy_timeout
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    # ------------------------------------------------------------------ plumbing

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func`` on the store's own SQLite thread."""
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="papyra-sqlite"
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, func, *args)

    def _connect(self, *, create: bool) -> sqlite3.Connection | None:
        """The connection (SQLite thread only); None when the database is missing."""
        if self._conn is not None:
            return self._conn
        if not self.path.exists():
            if not create:
                return None
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
            os.close(fd)
        try:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
            if create:
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.executescript(_SCHEMA)
            elif conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                              "name = 'records'").fetchone() is None:
                conn.close()
                raise StoreNotFoundError(f"{self.path} holds no papyra records")
            conn.execute(f"PRAGMA synchronous = {_SYNCHRONOUS[self.fsync]}")
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"cannot open {self.path}: {exc}") from None
        self._conn = conn
        return conn

    def _require(self) -> sqlite3.Connection:
        conn = self._connect(create=False)
        if conn is None:
            raise StoreNotFoundError(f"no papyra database at {self.path}")
        return conn

    async def _aclose(self) -> None:
        if self._executor is None:
            return

        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await self._run(close)
        self._executor.shutdown(wait=True)
        self._executor = None

    async def exists(self) -> bool:
        def check() -> bool:
            try:
                return self._connect(create=False) is not None
            except StoreNotFoundError:
                return False

        return await self._run(check)

    async def _health(self) -> Health:
        def ping() -> Health:
            try:
                conn = self._connect(create=False)
                if conn is not None:
                    conn.execute("SELECT 1").fetchone()
            except (sqlite3.Error, StoreUnavailableError) as exc:
                return Health(ok=False, reason=str(exc))
            return Health(ok=True)

        return await self._run(ping)

    # ------------------------------------------------------------------ writing

    async def _append(self, records: Sequence[Record]) -> tuple[list[Record], Counter[str]]:
        return await self._run(self._append_sync, records)

    def _append_sync(self, records: Sequence[Record]) -> tuple[list[Record], Counter[str]]:
        conn = self._connect(create=True)
        assert conn is not None
        sizes: Counter[str] = Counter()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT MAX(last) FROM records").fetchone()
                first = (row[0] or 0) + 1
                rows = []
                stored: list[Record] = []
                for i, rec in enumerate(records):
                    line = codec.encode(rec, first + i)[:-1]
                    rows.append((first + i, first + i, rec.kind, rec.timestamp, line))
                    stored.append(rec.with_seq(first + i))
                    sizes[rec.kind] += len(line) + 1
                conn.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?)", rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            self.unhealthy_reason = f"write failed: {exc}"
            raise StoreUnavailableError(f"append to {self.path} failed: {exc}") from None
        return stored, sizes

    # ------------------------------------------------------------------ retention

    def _kept_start(self, conn: sqlite3.Connection, policy: RetentionPolicy) -> int:
        """Seq of the oldest record ``policy`` keeps (``last + 1`` when it keeps none)."""
        walk = RetentionWalk(policy, self.retention_rules())
        if walk.unbounded:
            return 0
        kept = None
        newest = None
        below = None
        while True:
            sql = ("SELECT seq, timestamp, length(line) FROM records WHERE kind != 'gap'"
                   + (" AND seq < ?" if below is not None else "")
                   + " ORDER BY seq DESC LIMIT ?")
            args = (below, _CHUNK) if below is not None else (_CHUNK,)
            rows = conn.execute(sql, args).fetchall()
            if not rows:
                return kept if kept is not None else 0
            for seq, ts, size in rows:
                newest = seq if newest is None else newest
                if not walk.keep(seq, ts, size + 1):
                    return kept if kept is not None else int(newest) + 1
                kept = seq
            below = rows[-1][0]

    # ------------------------------------------------------------------ reading

    async def _read(self, query: ReadQuery) -> AsyncIterator[StoredRecord]:
        if query.limit == 0 or not await self.exists():
            return
        start = await self._run(self._read_start, query)
        descending = query.newest_limit or (query.newest_first and query.limit is None)
        picked: list[StoredRecord] = []
        cursor: int | None = None
        while True:
            rows = await self._run(self._read_chunk, query, start, cursor, descending)
            if not rows:
                break
            for seq, line in rows:
                cursor = seq
                try:
                    rec = codec.decode(line)
                except codec.DecodeError:
                    continue  # damaged rows are skipped by reads and reported by scan()
                if not query.matches(rec):
                    continue
                if query.limit is not None:
                    picked.append(rec)
                    if len(picked) >= query.limit:
                        break
                else:
                    yield rec
            if query.limit is not None and len(picked) >= query.limit:
                break
        if query.limit is None:
            return
        if descending != query.newest_first:
            picked.reverse()
        for rec in picked:
            yield rec

    def _read_start(self, query: ReadQuery) -> int:
        conn = self._require()
        start = self._kept_start(conn, self.retention) if query.apply_retention else 0
        if query.after_seq is not None:
            start = max(start, query.after_seq + 1)
        return start

    def _read_chunk(self, query: ReadQuery, start: int, cursor: int | None,
                    descending: bool) -> list[tuple[int, bytes]]:
        conn = self._require()
        where = ["seq >= ?"]
        args: list[Any] = [start]
        if cursor is not None:
            where.append("seq < ?" if descending else "seq > ?")
            args.append(cursor)
        kinds = set(query.kinds) if query.kinds is not None else None
        if query.include_gaps and kinds is not None:
            kinds.add("gap")
        if kinds is not None:
            where.append(f"kind IN ({', '.join('?' * len(kinds))})")
            args.extend(sorted(kinds))
        elif not query.include_gaps:
            where.append("kind != 'gap'")
        order = "DESC" if descending else "ASC"
        sql = (f"SELECT seq, line FROM records WHERE {' AND '.join(where)} "
               f"ORDER BY seq {order} LIMIT ?")
        return [(s, bytes(line)) for s, line in conn.execute(sql, [*args, _CHUNK])]

    # ------------------------------------------------------------------ scan

    async def _scan(self) -> ScanReport:
        return await self._run(self._scan_sync)

    def _scan_sync(self) -> ScanReport:
        conn = self._require()
        name = str(self.path)
        anomalies: list[Anomaly] = []
        try:
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            check = str(exc)
        if check != "ok":
            anomalies.append(Anomaly(kind="unreadable", file=name, detail=f"sqlite: {check}"))
        records = size = 0
        expected: int | None = None
        first_seq = last_seq = None
        for index, (seq, last, line) in enumerate(self._all_rows(conn), start=1):
            size += len(line) + 1
            first_seq = seq if first_seq is None else first_seq
            def found(kind: str, detail: str, seq: int = seq, index: int = index,
                      size: int = len(line) + 1) -> Anomaly:
                return Anomaly(kind=kind, file=name, line=index, entry_id=str(seq), length=size,
                               detail=detail)

            if expected is not None and seq > expected:
                anomalies.append(found("seq_gap", f"seqs {expected}..{seq - 1} are missing"))
            try:
                rec = codec.decode(line)
            except codec.DecodeError as exc:
                anomalies.append(found(exc.kind, exc.detail))
            else:
                if rec.seq != seq or (isinstance(rec, GapRecord) and rec.through != last):
                    anomalies.append(found("schema_violation",
                                           f"line says seq {rec.seq}, row says {seq}"))
                elif not isinstance(rec, GapRecord):
                    records += 1
            expected = last + 1
            last_seq = last
        return ScanReport(store=self.url, backend=self.backend_name, records=records,
                          legacy_records=0, bytes=size, anomalies=cast(Any, anomalies),
                          first_seq=first_seq, last_seq=last_seq)

    def _all_rows(self, conn: sqlite3.Connection) -> Iterator[tuple[int, int, bytes]]:
        after = 0
        while True:
            rows = conn.execute("SELECT seq, last, line FROM records WHERE seq > ? "
                                "ORDER BY seq LIMIT ?", (after, _CHUNK)).fetchall()
            if not rows:
                return
            for seq, last, line in rows:
                yield seq, last, bytes(line)
            after = rows[-1][0]

    # ------------------------------------------------------------------ recovery

    def _quarantine_dir(self, requested: str | None) -> str | None:
        return requested or f"{self.path}.quarantine"

    async def _execute(self, plan: list[RecoveryAction], before: ScanReport, *,
                       quarantine_dir: str | None) -> list[RecoveryAction]:
        return await self._run(self._execute_sync, plan, quarantine_dir)

    def _execute_sync(self, plan: list[RecoveryAction],
                      quarantine_dir: str | None) -> list[RecoveryAction]:
        conn = self._require()
        done: list[RecoveryAction] = []
        drop = sorted({int(a.detail) for a in plan if a.action == "drop" and a.detail})
        missing = [a for a in plan if a.action == "gap" and a.anomaly is not None]
        quarantined: dict[int, str] = {}
        for action in plan:
            if action.action == "quarantine" and action.detail:
                seq = int(action.detail)
                row = conn.execute("SELECT line FROM records WHERE seq = ?", (seq,)).fetchone()
                if row is not None:
                    target = self._quarantine_line(Path(quarantine_dir or ""), seq,
                                                   bytes(row[0]), action)
                    quarantined[seq] = target
                    done.append(RecoveryAction(action="quarantine", file=str(self.path),
                                               length=len(row[0]) + 1, to=target,
                                               detail=str(seq)))
        conn.execute("BEGIN IMMEDIATE")
        try:
            for first, through in _runs(conn, drop):
                conn.execute("DELETE FROM records WHERE seq BETWEEN ? AND ?", (first, through))
                done.append(RecoveryAction(action="drop", file=str(self.path),
                                           detail=f"seqs {first}..{through}"))
                self._insert_gap(conn, first, through, "repair", quarantined.get(first))
                done.append(RecoveryAction(action="gap", file=str(self.path),
                                           detail=f"gap {first}..{through}"))
            for action in missing:
                seq = int(action.anomaly.entry_id or 0) if action.anomaly else 0
                prev = conn.execute("SELECT MAX(last) FROM records WHERE seq < ?",
                                    (seq,)).fetchone()[0] or 0
                if seq > prev + 1:
                    self._insert_gap(conn, prev + 1, seq - 1, "repair", None)
                    done.append(RecoveryAction(action="gap", file=str(self.path),
                                               detail=f"gap {prev + 1}..{seq - 1}"))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if quarantined:
            self.metrics.add("records_quarantined", len(quarantined))
        if drop:
            self.metrics.records_dropped.inc("repair", len(drop))
        return done

    def _quarantine_line(self, qdir: Path, seq: int, line: bytes,
                         action: RecoveryAction) -> str:
        qdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if qdir.is_symlink():
            raise ConfigError(f"quarantine directory {qdir} may not be a symlink")
        flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW
        base = qdir / f"{self.path.name}.seq-{seq}"
        n = 0
        while True:
            target = base.with_name(f"{base.name}.{n}.quarantine" if n else
                                    f"{base.name}.quarantine")
            try:
                fd = os.open(target, flags, 0o600)
                break
            except FileExistsError:
                n += 1
        with os.fdopen(fd, "wb") as f:
            f.write(line + b"\n")
            f.flush()
            os.fsync(f.fileno())
        sidecar = {
            "source": str(self.path), "seq": seq, "offset": None, "length": len(line) + 1,
            "kind": action.anomaly.kind if action.anomaly else None,
            "source_crc32": f"{zlib.crc32(line + NEWLINE):08x}",
        }
        fd = os.open(f"{target}.json", flags, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(sidecar, f)
        return str(target)

    @staticmethod
    def _insert_gap(conn: sqlite3.Connection, first: int, through: int, reason: str,
                    quarantine: str | None) -> None:
        gap = GapRecord(seq=first, through=through, reason=reason, quarantine=quarantine)
        conn.execute("INSERT INTO records VALUES (?, ?, 'gap', ?, ?)",
                     (first, through, gap.timestamp, codec.encode(gap)[:-1]))

    # ------------------------------------------------------------------ compaction

    async def _compact(self, policy: RetentionPolicy, *, dry_run: bool) -> CompactionReport:
        return await self._run(self._compact_sync, policy, dry_run)

    def _compact_sync(self, policy: RetentionPolicy, dry_run: bool) -> CompactionReport:
        conn = self._require()
        conn.execute("BEGIN IMMEDIATE")
        try:
            before, before_bytes = _totals(conn, 0)
            cut = self._kept_start(conn, policy)
            removed = conn.execute("SELECT COUNT(*) FROM records WHERE seq < ? AND kind != 'gap'",
                                   (cut,)).fetchone()[0]
            if dry_run or not removed:
                after, after_bytes = _totals(conn, cut)
                conn.execute("ROLLBACK")
                return CompactionReport(store=self.url, backend=self.backend_name,
                                        dry_run=dry_run, before_records=before,
                                        after_records=before - removed,
                                        before_bytes=before_bytes,
                                        after_bytes=after_bytes if removed else before_bytes)
            first = conn.execute("SELECT MIN(seq) FROM records").fetchone()[0]
            conn.execute("DELETE FROM records WHERE seq < ?", (cut,))
            self._insert_gap(conn, first, cut - 1, "retention", None)
            after, after_bytes = _totals(conn, 0)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("PRAGMA incremental_vacuum")
        return CompactionReport(store=self.url, backend=self.backend_name, dry_run=False,
                                before_records=before, after_records=after,
                                before_bytes=before_bytes, after_bytes=after_bytes,
                                first_kept_seq=cut)

    # ------------------------------------------------------------------ stats

    async def _stats(self) -> StoreStats:
        if not await self.exists():
            return StoreStats(records_by_kind={}, bytes=0, first_seq=None, last_seq=None,
                              oldest_timestamp=None, newest_timestamp=None)
        return await self._run(self._stats_sync)

    def _stats_sync(self) -> StoreStats:
        conn = self._require()
        start = self._kept_start(conn, self.retention)
        kinds = dict(conn.execute("SELECT kind, COUNT(*) FROM records WHERE seq >= ? AND "
                                  "kind != 'gap' GROUP BY kind", (start,)).fetchall())
        size, first, oldest, newest = conn.execute(
            "SELECT SUM(length(line) + 1), MIN(seq), MIN(CASE WHEN kind != 'gap' THEN timestamp "
            "END), MAX(CASE WHEN kind != 'gap' THEN timestamp END) FROM records WHERE seq >= ?",
            (start,)).fetchone()
        last = conn.execute("SELECT MAX(last) FROM records").fetchone()[0]
        return StoreStats(records_by_kind=kinds, bytes=size or 0, first_seq=first,
                          last_seq=last, oldest_timestamp=oldest, newest_timestamp=newest)


def _totals(conn: sqlite3.Connection, start: int) -> tuple[int, int]:
    """Data records and bytes (gaps' bytes included) from ``start`` on."""
    count, size = conn.execute(
        "SELECT SUM(kind != 'gap'), SUM(length(line) + 1) FROM records WHERE seq >= ?", (start,)
    ).fetchone()
    return count or 0, size or 0


def _runs(conn: sqlite3.Connection, seqs: list[int]) -> Iterator[tuple[int, int]]:
    """Group dropped seqs into runs with no surviving row between them: ``(first, through)``."""
    if not seqs:
        return
    dropped = set(seqs)
    run_start = prev = seqs[0]
    prev_last = _last_of(conn, prev)
    for seq in seqs[1:]:
        between = conn.execute("SELECT COUNT(*) FROM records WHERE seq > ? AND seq < ?",
                               (prev, seq)).fetchone()[0]
        if between == 0 and seq == prev_last + 1 and seq in dropped:
            prev, prev_last = seq, _last_of(conn, seq)
            continue
        yield run_start, prev_last
        run_start = prev = seq
        prev_last = _last_of(conn, seq)
    yield run_start, prev_last


def _last_of(conn: sqlite3.Connection, seq: int) -> int:
    row = conn.execute("SELECT last FROM records WHERE seq = ?", (seq,)).fetchone()
    return int(row[0]) if row is not None else seq
