"""The in-memory backend (``memory://``): for tests and local development.

It honours the whole contract except durability: seq, retention (logically on reads, physically
on ``compact()``, leaving a ``gap`` record for the retired prefix), filters and newest-N reads.
Records are kept as the codec decodes their v1 line, so reads return exactly what a file backend
would read back. It runs the conformance suite of :mod:`papyra.testing`.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from typing import Any

from papyra import codec
from papyra.records import GapRecord, Record, StoredRecord
from papyra.reports import CompactionReport, ScanReport, StoreStats
from papyra.retention import RetentionPolicy, RetentionWalk
from papyra.store import Capabilities, ReadQuery, Store
from papyra.urls import StoreURL


class MemoryStore(Store):
    """Records kept in a list in this process; gone when it exits."""

    backend_name = "memory"
    capabilities = Capabilities(durable=False, multi_process=False)

    def __init__(self, url: str = "memory://", **options: Any) -> None:
        max_record_bytes = options.pop("max_record_bytes", None)
        options.pop("fsync", None)
        super().__init__(url=url, **options)
        self.max_record_bytes = max_record_bytes
        self._records: list[StoredRecord] = []
        self._seqs: list[int] = []
        self._sizes: list[int] = []
        self._next_seq = 1
        self._lock = asyncio.Lock()

    async def _append(self, records: Sequence[Record]) -> tuple[list[Record], Counter[str]]:
        from papyra.errors import RecordTooLargeError

        sizes: Counter[str] = Counter()
        async with self._lock:
            seq = self._next_seq
            lines = [codec.encode(r, seq + i) for i, r in enumerate(records)]
            if self.max_record_bytes is not None:
                for line in lines:
                    if len(line) > self.max_record_bytes:
                        raise RecordTooLargeError(
                            f"record of {len(line)} bytes exceeds max_record_bytes="
                            f"{self.max_record_bytes}"
                        )
            stored: list[Record] = []
            for i, (rec, line) in enumerate(zip(records, lines, strict=True)):
                stored.append(rec.with_seq(seq + i))
                # Keep what a durable backend would read back (tuples become lists, bytes
                # the base64 marker), so code tested on memory behaves the same on files.
                self._records.append(codec.decode(line[:-1]))
                self._seqs.append(seq + i)
                self._sizes.append(len(line))
                sizes[rec.kind] += len(line)
            self._next_seq = seq + len(records)
        return stored, sizes

    def _kept_from(self, policy: RetentionPolicy, now: float | None = None) -> int:
        """Index of the first record the policy keeps (gaps are never counted)."""
        walk = RetentionWalk(policy, self.retention_rules(), now=now)
        if walk.unbounded:
            return 0
        first = len(self._records)
        for i in range(len(self._records) - 1, -1, -1):
            rec = self._records[i]
            if isinstance(rec, GapRecord):
                continue
            if not walk.keep(rec.seq, rec.timestamp, self._sizes[i]):
                break
            first = i
        return first

    async def _read(self, query: ReadQuery) -> AsyncIterator[StoredRecord]:
        start = self._kept_from(self.retention) if query.apply_retention else 0
        if query.after_seq is not None:
            start = max(start, bisect.bisect_right(self._seqs, query.after_seq))
        window = self._records[start:]
        if query.limit is not None and query.newest_limit:
            picked: list[StoredRecord] = []
            for rec in reversed(window):
                if len(picked) >= query.limit:
                    break
                if query.matches(rec):
                    picked.append(rec)
            out = picked if query.newest_first else picked[::-1]
        else:
            out = [r for r in window if query.matches(r)]
            if query.limit is not None:
                out = out[: query.limit]
            if query.newest_first:
                out.reverse()
        for rec in out:
            yield rec

    async def _scan(self) -> ScanReport:
        data = [r for r in self._records if not isinstance(r, GapRecord)]
        return ScanReport(
            store=self.url, backend=self.backend_name, records=len(data), legacy_records=0,
            bytes=sum(self._sizes), anomalies=(),
            first_seq=self._seqs[0] if self._seqs else None,
            last_seq=self._next_seq - 1 if self._seqs else None,
        )

    async def _compact(self, policy: RetentionPolicy, *, dry_run: bool) -> CompactionReport:
        async with self._lock:
            before = sum(1 for r in self._records if not isinstance(r, GapRecord))
            before_bytes = sum(self._sizes)
            cut = self._kept_from(policy)
            # never leave a gap record as the only thing explaining nothing
            removed = self._records[:cut]
            removed_data = [r for r in removed if not isinstance(r, GapRecord)]
            after = before - len(removed_data)
            if dry_run or not removed_data:
                after_bytes = before_bytes - (sum(self._sizes[:cut]) if removed_data else 0)
                return CompactionReport(store=self.url, backend=self.backend_name, dry_run=dry_run,
                                        before_records=before, after_records=after,
                                        before_bytes=before_bytes, after_bytes=after_bytes)
            first_retired = self._seqs[0]
            last_retired = (self._seqs[cut] - 1) if cut < len(self._seqs) else self._next_seq - 1
            gap = GapRecord(seq=first_retired, through=last_retired, reason="retention")
            gap_size = len(codec.encode(gap))
            self._records = [gap, *self._records[cut:]]
            self._seqs = [first_retired, *self._seqs[cut:]]
            self._sizes = [gap_size, *self._sizes[cut:]]
            return CompactionReport(store=self.url, backend=self.backend_name, dry_run=False,
                                    before_records=before, after_records=after,
                                    before_bytes=before_bytes, after_bytes=sum(self._sizes),
                                    first_kept_seq=last_retired + 1)

    async def _stats(self) -> StoreStats:
        start = self._kept_from(self.retention)
        kinds: Counter[str] = Counter()
        oldest = newest = None
        size = 0
        for rec, n in zip(self._records[start:], self._sizes[start:], strict=True):
            size += n
            if isinstance(rec, GapRecord):
                continue
            kinds[rec.kind] += 1
            oldest = rec.timestamp if oldest is None else min(oldest, rec.timestamp)
            newest = rec.timestamp if newest is None else max(newest, rec.timestamp)
        return StoreStats(records_by_kind=dict(kinds), bytes=size,
                          first_seq=self._seqs[start] if start < len(self._seqs) else None,
                          last_seq=self._next_seq - 1 if self._seqs else None,
                          oldest_timestamp=oldest, newest_timestamp=newest)

    async def exists(self) -> bool:
        return True


def create(url: StoreURL, **options: Any) -> MemoryStore:
    """Factory registered for ``memory://``."""
    options.setdefault("system_id", url.query.get("system_id", "local"))
    return MemoryStore(url.raw, **options)
