"""The damage half of the conformance suite, run against a small line-oriented store.

``LinesStore`` keeps v1 lines as bytes (as a file backend does), scans them with the codec and
carries out the shared repair plan, so the suite's recovery tests are exercised here in core,
before any file backend uses them.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from papyra import codec
from papyra.backends.memory import MemoryStore
from papyra.records import GapRecord, Record
from papyra.reports import Anomaly, CompactionReport, RecoveryAction, ScanReport
from papyra.retention import RetentionPolicy
from papyra.store import Store
from papyra.testing import Damage, Snapshot, StoreConformance, StoreFactory, sample_records

FILE = "lines.ndjson"


class LinesStore(MemoryStore):
    """A memory store whose truth is a list of encoded lines."""

    backend_name = "lines"

    def __init__(self, url: str = "lines://", **options: Any) -> None:
        super().__init__(url, **options)
        self.lines: list[bytes] = []

    def _load(self) -> None:
        self._records, self._seqs, self._sizes = [], [], []
        for line in self.lines:
            try:
                rec = codec.decode(line.rstrip(b"\n"))
            except codec.DecodeError:
                continue
            assert rec.seq is not None
            self._records.append(rec)
            self._seqs.append(rec.seq)
            self._sizes.append(len(line))

    async def _append(self, records: Sequence[Record]) -> tuple[list[Record], Counter[str]]:
        seq = self._next_seq
        stored, sizes = await super()._append(records)
        self.lines += [codec.encode(r, seq + i) for i, r in enumerate(records)]
        return stored, sizes

    async def _compact(self, policy: RetentionPolicy, *, dry_run: bool) -> CompactionReport:
        report = await super()._compact(policy, dry_run=dry_run)
        if not dry_run:
            self.lines = [codec.encode(r) for r in self._records]
        return report

    async def _scan(self) -> ScanReport:
        anomalies: list[Anomaly] = []
        offset = records = 0
        expected: int | None = None
        for i, line in enumerate(self.lines):
            try:
                rec = codec.decode(line.rstrip(b"\n"))
            except codec.DecodeError as exc:
                anomalies.append(Anomaly(kind=exc.kind, file=FILE, offset=offset,
                                         length=len(line), line=i + 1, detail=exc.detail))
                expected = None
            else:
                if expected is not None and rec.seq != expected:
                    anomalies.append(Anomaly(kind="seq_gap", file=FILE, offset=offset, length=0,
                                             line=i + 1, detail=f"{expected}..{rec.seq}"))
                assert rec.seq is not None
                expected = (rec.through if isinstance(rec, GapRecord) else rec.seq) + 1
                records += not isinstance(rec, GapRecord)
            offset += len(line)
        return ScanReport(store=self.url, backend=self.backend_name, records=records,
                          bytes=offset, anomalies=anomalies)

    def _quarantine_dir(self, requested: str | None) -> str | None:
        return requested or "lines.quarantine"

    async def _execute(
        self, plan: list[RecoveryAction], before: ScanReport, *, quarantine_dir: str | None
    ) -> list[RecoveryAction]:
        starts, offset = [], 0
        for line in self.lines:
            starts.append(offset)
            offset += len(line)
        drop: set[int] = set()
        for action in plan:
            index = starts.index(action.offset or 0)
            if action.action == "quarantine":
                assert quarantine_dir is not None
                os.makedirs(quarantine_dir, exist_ok=True)
                target = Path(quarantine_dir) / f"{FILE}.{action.offset}"
                target.write_bytes(self.lines[index])
            elif action.action == "drop":
                drop.add(index)
        out: list[bytes] = []
        last_seq = 0
        missing = False
        for i, line in enumerate(self.lines):
            if i in drop:
                missing = True
                continue
            rec = codec.decode(line.rstrip(b"\n"))
            assert rec.seq is not None
            if missing and rec.seq > last_seq + 1:
                out.append(codec.encode(GapRecord(seq=last_seq + 1, through=rec.seq - 1,
                                                  reason="repair", quarantine=quarantine_dir)))
            missing = False
            out.append(line)
            last_seq = rec.through if isinstance(rec, GapRecord) else rec.seq
        self.lines = out
        self._load()
        return plan


async def flip_a_byte_in_line_five(store: Store) -> None:
    assert isinstance(store, LinesStore)
    line = bytearray(store.lines[4])
    line[20] ^= 0x01
    store.lines[4] = bytes(line)
    store._load()


async def lines_of(store: Store) -> object:
    assert isinstance(store, LinesStore)
    return list(store.lines)


class TestLinesStore(StoreConformance):
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        async def factory(**options: Any) -> LinesStore:
            return LinesStore(**options)

        return factory

    @pytest.fixture
    def damage(self) -> Damage:
        return flip_a_byte_in_line_five

    @pytest.fixture
    def snapshot(self) -> Snapshot:
        return lines_of


async def test_repair_of_the_lines_store_writes_one_gap_for_the_dropped_line() -> None:
    store = LinesStore()
    await store.append(sample_records(10))
    await flip_a_byte_in_line_five(store)
    report = await store.recover("repair")
    assert report.clean
    gaps = [r async for r in store.read(include_gaps=True) if isinstance(r, GapRecord)]
    assert [(g.seq, g.through, g.reason) for g in gaps] == [(5, 5, "repair")]
