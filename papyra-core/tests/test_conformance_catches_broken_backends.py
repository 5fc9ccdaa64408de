"""The conformance suite is only worth something if it fails broken backends.

Each class below is a memory store with one deliberate defect; the part of the suite covering that
defect runs against it in a pytest subprocess (strict asyncio mode, as a third party's project
might have), and every defect must be reported, while the honest memory store passes everything.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

BROKEN_BACKENDS = '''
from collections import Counter
from typing import Any

import attrs
import pytest

from papyra import codec
from papyra.backends.memory import MemoryStore
from papyra.records import GapRecord
from papyra.testing import (
    AppendReadConformance,
    ConcurrencyConformance,
    FailureConformance,
    ModelConformance,
    RetentionConformance,
    StoreConformance,
)


class IgnoresRetention(MemoryStore):
    async def _read(self, query):
        async for rec in super()._read(attrs.evolve(query, apply_retention=False)):
            yield rec


class ReordersReads(MemoryStore):
    async def _read(self, query):
        out = [r async for r in super()._read(query)]
        for rec in sorted(out, key=lambda r: r.id):
            yield rec


class LosesEverySeventhRecord(MemoryStore):
    async def _append(self, records):
        stored, sizes = await super()._append(records)
        self._records = [r for r in self._records if (r.seq or 0) % 7 != 0]
        self._seqs = [s for s in self._seqs if s % 7 != 0]
        self._sizes = self._sizes[: len(self._seqs)]
        return stored, sizes


class WritesRecordByRecord(MemoryStore):
    """Encodes and stores one record at a time: a bad record leaves its batch half written."""

    async def _append(self, records):
        stored, sizes = [], Counter()
        for rec in records:
            s, n = await super()._append([rec])
            stored += s
            sizes += n
        return stored, sizes


class SkipsASeqPerBatch(MemoryStore):
    async def _append(self, records):
        out = await super()._append(records)
        self._next_seq += 1
        return out


class CompactsWithoutGap(MemoryStore):
    async def _compact(self, policy, *, dry_run):
        report = await super()._compact(policy, dry_run=dry_run)
        if self._records and isinstance(self._records[0], GapRecord):
            del self._records[0], self._seqs[0], self._sizes[0]
        return report


class RestartsSeqAfterEmptyCompaction(MemoryStore):
    async def _compact(self, policy, *, dry_run):
        report = await super()._compact(policy, dry_run=dry_run)
        if not dry_run and report.after_records == 0:
            self._records, self._seqs, self._sizes, self._next_seq = [], [], [], 1
        return report


class KeepsWritingAfterClose(MemoryStore):
    def _check_open(self):
        return None


def factory_for(cls):
    @pytest.fixture
    def store_factory(self):
        async def make(**options: Any):
            return cls("memory://", **options)
        return make
    return store_factory


class TestHonest(StoreConformance):
    store_factory = factory_for(MemoryStore)


class TestIgnoresRetention(RetentionConformance):
    store_factory = factory_for(IgnoresRetention)


class TestReordersReads(AppendReadConformance, ModelConformance):
    store_factory = factory_for(ReordersReads)


class TestLosesEverySeventhRecord(AppendReadConformance, ConcurrencyConformance):
    store_factory = factory_for(LosesEverySeventhRecord)


class TestWritesRecordByRecord(FailureConformance):
    store_factory = factory_for(WritesRecordByRecord)


class TestSkipsASeqPerBatch(AppendReadConformance, ConcurrencyConformance):
    store_factory = factory_for(SkipsASeqPerBatch)


class TestCompactsWithoutGap(RetentionConformance, ModelConformance):
    store_factory = factory_for(CompactsWithoutGap)


class TestRestartsSeqAfterEmptyCompaction(RetentionConformance):
    store_factory = factory_for(RestartsSeqAfterEmptyCompaction)


class TestKeepsWritingAfterClose(FailureConformance):
    store_factory = factory_for(KeepsWritingAfterClose)
'''

EXPECTED_FAILURES = {
    "TestIgnoresRetention": {
        "test_reads_apply_max_records_logically",
        "test_reads_apply_max_age_logically",
        "test_reads_apply_max_total_bytes_as_a_suffix",
        "test_retention_and_limit_together_pick_the_newest",
    },
    "TestReordersReads": {
        "test_appended_records_read_back_in_log_order",
        "test_newest_first_reverses_log_order",
        "test_random_appends_compactions_and_reads_match_a_simple_model",
    },
    "TestLosesEverySeventhRecord": {
        "test_concurrent_appends_from_many_tasks_lose_nothing",
        "test_seq_is_contiguous_across_batches",
    },
    "TestWritesRecordByRecord": {"test_a_batch_with_one_bad_record_writes_none_of_it"},
    "TestSkipsASeqPerBatch": {
        "test_seq_is_contiguous_across_batches",
        "test_concurrent_appends_from_many_tasks_lose_nothing",
    },
    "TestCompactsWithoutGap": {
        "test_a_retention_gap_heads_the_log_after_compaction",
        "test_seq_keeps_counting_after_retention_emptied_the_log",
        "test_random_appends_compactions_and_reads_match_a_simple_model",
    },
    "TestRestartsSeqAfterEmptyCompaction": {
        "test_seq_keeps_counting_after_retention_emptied_the_log",
    },
    "TestKeepsWritingAfterClose": {
        "test_append_after_close_raises_store_closed",
        "test_read_after_close_raises_store_closed",
    },
}


@pytest.fixture(scope="module")
def failures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Run the suite against every backend above in a real pytest subprocess."""
    work = tmp_path_factory.mktemp("broken")
    (work / "test_broken.py").write_text(BROKEN_BACKENDS, encoding="utf-8")
    # An empty ini file makes ``work`` the rootdir: the suite must run in strict asyncio mode.
    (work / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider",
         "test_broken.py::TestHonest",
         *(f"test_broken.py::{cls}::{test}"
           for cls, tests in sorted(EXPECTED_FAILURES.items()) for test in sorted(tests))],
        cwd=work, capture_output=True, text=True, timeout=300, check=False,
    )
    found: dict[str, set[str]] = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"FAILED test_broken\.py::(\w+)::(\w+)", line)
        if m:
            found.setdefault(m.group(1), set()).add(m.group(2))
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    return found


def test_the_honest_memory_store_passes_every_conformance_test(
    failures: dict[str, set[str]],
) -> None:
    assert "TestHonest" not in failures, failures.get("TestHonest")


@pytest.mark.parametrize("backend", sorted(EXPECTED_FAILURES))
def test_a_deliberately_broken_backend_fails_the_tests_covering_its_defect(
    failures: dict[str, set[str]], backend: str
) -> None:
    missing = EXPECTED_FAILURES[backend] - failures.get(backend, set())
    assert not missing, f"{backend} slipped through: {sorted(missing)}"
