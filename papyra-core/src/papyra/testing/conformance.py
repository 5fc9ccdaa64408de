"""The backend conformance suite: the contract of DESIGN §3-§6 as abstract pytest classes.

A backend's test file subclasses :class:`StoreConformance` (or only some of the partial suites
it is built from) and provides one fixture, ``store_factory``: an async callable taking store
options (``retention=...``, ``system_id=...``) and returning an *open-able* store. Calling the
factory twice in one test must give two stores over the **same** underlying data (same file,
same directory, same Redis key prefix): that is how the suite checks that ``aclose()`` flushed
everything and that ``seq`` survives a reopen. Those checks are skipped for backends whose
``capabilities.durable`` is False.

Optional fixtures a backend may override:

``snapshot``
    An async callable ``(store) -> object`` returning the store's bytes (e.g. the file's
    contents). Used to prove scan and no-op recoveries change no byte. The default compares
    the encoded lines of every stored record, gaps included.
``damage``
    An async callable ``(store) -> None`` that corrupts the store in the middle of its log
    (e.g. flips a byte in the fifth of ten lines) so that at least one record is lost and
    valid records follow the damage. Enables the recovery tests of
    :class:`DamageConformance`; without it they are skipped.

The suite works with pytest-asyncio in both ``strict`` and ``auto`` mode.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from papyra import codec
from papyra.codec import EncodeError
from papyra.errors import StoreClosedError, StoreNotFoundError
from papyra.records import EventRecord, GapRecord, Record, StoredRecord, new_record_id
from papyra.reports import ANOMALY_KINDS
from papyra.retention import RetentionPolicy
from papyra.store import Store
from papyra.testing.samples import SYSTEM_ID, ids, sample_records, seqs

StoreFactory = Callable[..., Awaitable[Store]]
Snapshot = Callable[[Store], Awaitable[object]]
Damage = Callable[[Store], Awaitable[None]]

__all__ = [
    "AppendReadConformance",
    "ConcurrencyConformance",
    "Damage",
    "DamageConformance",
    "DurabilityConformance",
    "FailureConformance",
    "MaintenanceConformance",
    "ModelConformance",
    "QueryConformance",
    "RetentionConformance",
    "Snapshot",
    "StoreConformance",
    "StoreFactory",
]


async def _all(store: Store, **query: Any) -> list[StoredRecord]:
    return [r async for r in store.read(**query)]


async def _physical(store: Store) -> list[StoredRecord]:
    """Everything stored, retention not applied, gaps included."""
    return await _all(store, apply_retention=False, include_gaps=True)


async def default_snapshot(store: Store) -> object:
    """Encoded lines of every stored record (gaps included, retention not applied)."""
    return [codec.encode(r) for r in await _physical(store)]


def _holds_files_if_present(directory: Path) -> bool:
    """A quarantine directory, when the backend uses one, holds the removed bytes."""
    return not directory.exists() or any(p.is_file() for p in directory.rglob("*"))


def _contiguous(values: list[int]) -> bool:
    return values == list(range(values[0], values[0] + len(values))) if values else True


class _Base:
    """Fixtures every partial suite shares."""

    pytestmark = [pytest.mark.asyncio]

    @pytest_asyncio.fixture
    async def store(self, store_factory: StoreFactory) -> AsyncIterator[Store]:
        """A fresh, empty store from the backend's factory, closed after the test."""
        s = await store_factory()
        try:
            yield s
        finally:
            await s.aclose()

    @pytest.fixture
    def snapshot(self) -> Snapshot:
        """How to take the store's bytes; override to compare real bytes on disk."""
        return default_snapshot

    @pytest.fixture
    def damage(self) -> Damage | None:
        """Override with an async ``(store) -> None`` that corrupts the log mid-way."""
        return None

    @pytest.fixture
    def quarantine_dir(self, tmp_path_factory: pytest.TempPathFactory) -> Path:
        """A quarantine directory outside any store directory."""
        return tmp_path_factory.mktemp("quarantine") / "q"

    @staticmethod
    async def reopen(store_factory: StoreFactory, store: Store, **options: Any) -> Store:
        """Close ``store`` and open the same data again (skips for non-durable backends)."""
        if not store.capabilities.durable:
            pytest.skip(f"backend {store.backend_name!r} is not durable")
        await store.aclose()
        return await store_factory(**options)


# --------------------------------------------------------------------------- append / read


class AppendReadConformance(_Base):
    """Appending assigns contiguous seqs; reads give back exactly what was appended, in order."""

    async def test_appended_records_read_back_in_log_order(self, store: Store) -> None:
        records = sample_records(12)
        await store.append(records[:5])
        await store.append(records[5:])
        assert ids(await _all(store)) == ids(records)

    async def test_append_returns_the_records_with_their_seq_and_id(self, store: Store) -> None:
        records = sample_records(4)
        stored = await store.append(records)
        assert ids(stored) == ids(records)
        assert all(isinstance(r.seq, int) for r in stored)
        assert stored == records  # seq does not take part in equality

    async def test_a_fresh_store_numbers_records_from_one(self, store: Store) -> None:
        stored = await store.append(sample_records(3))
        assert seqs(stored) == [1, 2, 3]

    async def test_seq_is_contiguous_across_batches(self, store: Store) -> None:
        for n in (1, 3, 2, 5):
            await store.append(sample_records(n))
        got = seqs(await _all(store))
        assert len(got) == 11
        assert _contiguous(got)

    async def test_read_gives_each_record_its_seq(self, store: Store) -> None:
        stored = await store.append(sample_records(6))
        assert seqs(await _all(store)) == seqs(stored)

    async def test_every_field_of_every_kind_survives_storage(self, store: Store) -> None:
        records = sample_records(9)
        await store.append(records)
        back = await _all(store)
        assert back == records
        assert [type(r) for r in back] == [type(r) for r in records]
        assert not any(getattr(r, "legacy", False) for r in back)

    async def test_record_ids_are_preserved(self, store: Store) -> None:
        rid = new_record_id()
        rec = EventRecord(id=rid, system_id=SYSTEM_ID, actor_address="a:1", event_type="X")
        await store.append([rec])
        (back,) = await _all(store)
        assert back.id == rid

    async def test_newest_first_reverses_log_order(self, store: Store) -> None:
        records = sample_records(7)
        await store.append(records)
        assert ids(await _all(store, newest_first=True)) == ids(records)[::-1]

    async def test_convenience_methods_append_one_record_each(self, store: Store) -> None:
        ev = await store.record_event(actor_address="a:1", event_type="ActorStarted")
        au = await store.record_audit(total_actors=1, alive_actors=1, stopping_actors=0,
                                      restarting_actors=0, registry_size=1,
                                      dead_letters_count=0)
        dl = await store.record_dead_letter(target=None, message_type="str", payload="hi")
        assert seqs([ev, au, dl]) == [1, 2, 3]
        back = await _all(store)
        assert [r.kind for r in back] == ["event", "audit", "dead_letter"]
        assert all(r.system_id == store.system_id for r in back)  # type: ignore[union-attr]

    async def test_an_empty_append_writes_nothing(self, store: Store) -> None:
        assert await store.append([]) == []
        await store.append(sample_records(1))
        assert seqs(await _all(store)) == [1]

    async def test_values_json_cannot_carry_read_back_in_their_encoded_form(
        self, store: Store
    ) -> None:
        rec = EventRecord(system_id=SYSTEM_ID, actor_address="a:1", event_type="X",
                          payload={"t": (1, 2), "b": b"\x00\xff", "s": {3, 1, 2}})
        await store.append([rec])
        (back,) = await _all(store)
        assert isinstance(back, EventRecord)
        assert back.payload == {"t": [1, 2], "b": {codec.BYTES_MARKER: "AP8="}, "s": [1, 2, 3]}

    async def test_appending_something_that_is_not_a_record_is_refused(
        self, store: Store
    ) -> None:
        with pytest.raises(TypeError):
            await store.append([{"kind": "event"}])  # type: ignore[list-item]
        assert await _all(store) == []


# --------------------------------------------------------------------------- queries


class QueryConformance(_Base):
    """kinds / since / until / limit / after_seq, alone and together."""

    @pytest_asyncio.fixture
    async def filled(self, store: Store) -> list[Record]:
        """30 records (10 of each kind) with timestamps one second apart, appended in 3 batches."""
        records = sample_records(30, base_timestamp=time.time() - 1000)
        for k in range(0, 30, 10):
            await store.append(records[k:k + 10])
        return records

    async def test_kinds_filter_keeps_only_those_kinds(
        self, store: Store, filled: list[Record]
    ) -> None:
        got = await _all(store, kinds="audit")
        assert ids(got) == [r.id for r in filled if r.kind == "audit"]
        got = await _all(store, kinds=["event", "dead_letter"])
        assert ids(got) == [r.id for r in filled if r.kind != "audit"]

    async def test_kinds_accept_plural_cli_spellings(
        self, store: Store, filled: list[Record]
    ) -> None:
        got = await _all(store, kinds="dead-letters")
        assert ids(got) == [r.id for r in filled if r.kind == "dead_letter"]

    async def test_since_and_until_are_inclusive_bounds(
        self, store: Store, filled: list[Record]
    ) -> None:
        lo, hi = filled[5].timestamp, filled[14].timestamp
        got = await _all(store, since=lo, until=hi)
        assert ids(got) == ids(filled[5:15])
        assert ids(await _all(store, since=lo)) == ids(filled[5:])
        assert ids(await _all(store, until=hi)) == ids(filled[:15])

    async def test_limit_selects_the_newest_records_in_log_order(
        self, store: Store, filled: list[Record]
    ) -> None:
        assert ids(await _all(store, limit=4)) == ids(filled[-4:])

    async def test_limit_with_newest_first_gives_the_newest_records_newest_first(
        self, store: Store, filled: list[Record]
    ) -> None:
        assert ids(await _all(store, limit=4, newest_first=True)) == ids(filled[-4:])[::-1]

    async def test_limit_applies_after_the_kind_filter(
        self, store: Store, filled: list[Record]
    ) -> None:
        events = [r for r in filled if r.kind == "event"]
        assert ids(await _all(store, kinds="event", limit=3)) == ids(events[-3:])

    async def test_limit_applies_after_the_time_filter(
        self, store: Store, filled: list[Record]
    ) -> None:
        got = await _all(store, until=filled[9].timestamp, limit=2)
        assert ids(got) == ids(filled[8:10])

    async def test_a_limit_beyond_the_log_returns_everything(
        self, store: Store, filled: list[Record]
    ) -> None:
        assert ids(await _all(store, limit=1000)) == ids(filled)

    async def test_limit_zero_returns_nothing(self, store: Store, filled: list[Record]) -> None:
        assert await _all(store, limit=0) == []

    async def test_after_seq_pages_forward(self, store: Store, filled: list[Record]) -> None:
        every = await _all(store)
        pivot = every[9].seq
        assert ids(await _all(store, after_seq=pivot)) == ids(filled[10:])
        assert ids(await _all(store, after_seq=pivot, limit=3)) == ids(filled[10:13])

    async def test_after_the_last_seq_there_is_nothing_until_something_is_appended(
        self, store: Store, filled: list[Record]
    ) -> None:
        last = (await _all(store))[-1].seq
        assert await _all(store, after_seq=last) == []
        new = await store.append(sample_records(2, start=30))
        assert ids(await _all(store, after_seq=last)) == ids(new)

    async def test_filters_combine(self, store: Store, filled: list[Record]) -> None:
        lo = filled[3].timestamp
        expected = [r for r in filled[3:] if r.kind == "dead_letter"][-2:]
        got = await _all(store, kinds="dead_letter", since=lo, limit=2, newest_first=True)
        assert ids(got) == ids(expected)[::-1]

    async def test_an_empty_store_reads_as_empty(self, store: Store) -> None:
        assert await _all(store) == []
        assert await _all(store, limit=3, newest_first=True) == []


# --------------------------------------------------------------------------- retention


class RetentionConformance(_Base):
    """Retention keeps a suffix: logically on reads, physically (with a gap head) on compaction."""

    async def test_reads_apply_max_records_logically(self, store_factory: StoreFactory) -> None:
        store = await store_factory(retention=RetentionPolicy(max_records=3))
        try:
            records = sample_records(10)
            await store.append(records)
            assert ids(await _all(store)) == ids(records[-3:])
            assert ids(await _all(store, apply_retention=False)) == ids(records)
        finally:
            await store.aclose()

    async def test_reads_apply_max_age_logically(self, store_factory: StoreFactory) -> None:
        store = await store_factory(retention=RetentionPolicy(max_age_seconds=3600))
        try:
            old = sample_records(4, base_timestamp=time.time() - 90_000)
            new = sample_records(3, start=4, base_timestamp=time.time() - 100)
            await store.append(old + new)
            assert ids(await _all(store)) == ids(new)
        finally:
            await store.aclose()

    async def test_reads_apply_max_total_bytes_as_a_suffix(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory(retention=RetentionPolicy(max_total_bytes=1500))
        try:
            records = sample_records(20)
            await store.append(records)
            got = ids(await _all(store))
            assert 0 < len(got) < len(records)
            assert got == ids(records)[-len(got):]
        finally:
            await store.aclose()

    async def test_retention_and_limit_together_pick_the_newest(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory(retention=RetentionPolicy(max_records=5))
        try:
            records = sample_records(10)
            await store.append(records)
            assert ids(await _all(store, limit=2)) == ids(records[-2:])
            assert ids(await _all(store, limit=8)) == ids(records[-5:])
        finally:
            await store.aclose()

    async def test_compaction_keeps_the_newest_suffix(self, store: Store) -> None:
        records = sample_records(10)
        await store.append(records)
        report = await store.compact(RetentionPolicy(max_records=3))
        assert (report.before_records, report.after_records) == (10, 3)
        assert report.removed_records == 7
        kept = await _all(store, apply_retention=False)
        assert ids(kept) == ids(records[-3:])
        assert seqs(kept) == [8, 9, 10]

    async def test_a_retention_gap_heads_the_log_after_compaction(self, store: Store) -> None:
        await store.append(sample_records(10))
        await store.compact(RetentionPolicy(max_records=3))
        physical = await _physical(store)
        head = physical[0]
        assert isinstance(head, GapRecord)
        assert (head.seq, head.through, head.reason) == (1, 7, "retention")
        assert physical[1].seq == head.through + 1
        assert not any(isinstance(r, GapRecord) for r in physical[1:])

    async def test_reads_skip_gap_records_unless_asked(self, store: Store) -> None:
        await store.append(sample_records(5))
        await store.compact(RetentionPolicy(max_records=2))
        assert not any(isinstance(r, GapRecord) for r in await _all(store))
        assert isinstance((await _all(store, include_gaps=True))[0], GapRecord)

    async def test_compacting_twice_leaves_one_gap_for_the_whole_retired_prefix(
        self, store: Store
    ) -> None:
        await store.append(sample_records(10))
        await store.compact(RetentionPolicy(max_records=6))
        await store.compact(RetentionPolicy(max_records=2))
        physical = await _physical(store)
        gaps = [r for r in physical if isinstance(r, GapRecord)]
        assert len(gaps) == 1
        assert (gaps[0].seq, gaps[0].through) == (1, 8)
        assert seqs(physical[1:]) == [9, 10]

    async def test_compaction_by_age_retires_old_records(self, store: Store) -> None:
        old = sample_records(5, base_timestamp=time.time() - 90_000)
        new = sample_records(3, start=5, base_timestamp=time.time() - 10)
        await store.append(old + new)
        report = await store.compact(RetentionPolicy(max_age_seconds=3600))
        assert report.removed_records == 5
        assert ids(await _all(store, apply_retention=False)) == ids(new)

    async def test_compaction_that_keeps_everything_changes_nothing(
        self, store: Store, snapshot: Snapshot
    ) -> None:
        await store.append(sample_records(5))
        before = await snapshot(store)
        report = await store.compact(RetentionPolicy(max_records=100))
        assert report.removed_records == 0
        assert await snapshot(store) == before

    async def test_a_compaction_dry_run_changes_nothing(
        self, store: Store, snapshot: Snapshot
    ) -> None:
        await store.append(sample_records(8))
        before = await snapshot(store)
        report = await store.compact(RetentionPolicy(max_records=2), dry_run=True)
        assert report.dry_run
        assert (report.before_records, report.after_records) == (8, 2)
        assert await snapshot(store) == before

    async def test_compaction_uses_the_store_retention_when_given_none(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory(retention=RetentionPolicy(max_records=4))
        try:
            records = sample_records(9)
            await store.append(records)
            report = await store.compact()
            assert report.removed_records == 5
            assert ids(await _all(store, apply_retention=False)) == ids(records[-4:])
        finally:
            await store.aclose()

    async def test_seq_keeps_counting_after_retention_emptied_the_log(
        self, store: Store
    ) -> None:
        await store.append(sample_records(6))
        report = await store.compact(RetentionPolicy(max_records=0))
        assert report.after_records == 0
        assert await _all(store, apply_retention=False) == []
        (gap,) = await _physical(store)
        assert isinstance(gap, GapRecord)
        assert (gap.seq, gap.through) == (1, 6)
        new = await store.append(sample_records(2, start=6))
        assert seqs(new) == [7, 8]

    async def test_scan_counts_no_gap_records(self, store: Store) -> None:
        await store.append(sample_records(7))
        await store.compact(RetentionPolicy(max_records=3))
        report = await store.scan()
        assert report.clean
        assert report.records == 3


# --------------------------------------------------------------------------- maintenance


class MaintenanceConformance(_Base):
    """scan, recover, stats and health on a clean store."""

    async def test_scan_of_a_clean_store_is_clean_and_counts_its_records(
        self, store: Store
    ) -> None:
        await store.append(sample_records(9))
        report = await store.scan()
        assert report.clean
        assert report.errors == ()
        assert report.records == 9
        assert report.legacy_records == 0

    async def test_scan_changes_no_byte(self, store: Store, snapshot: Snapshot) -> None:
        await store.append(sample_records(9))
        before = await snapshot(store)
        await store.scan()
        await store.scan()
        assert await snapshot(store) == before

    async def test_scan_of_a_fresh_store_is_clean_or_reports_a_missing_log(
        self, store: Store
    ) -> None:
        try:
            report = await store.scan()
        except StoreNotFoundError:
            return
        assert report.clean
        assert report.records == 0

    @pytest.mark.parametrize("mode", ["ignore", "repair", "quarantine"])
    async def test_recovery_of_a_clean_store_is_a_no_op(
        self, store: Store, snapshot: Snapshot, quarantine_dir: Path, mode: str
    ) -> None:
        await store.append(sample_records(6))
        before = await snapshot(store)
        report = await store.recover(mode, quarantine_dir=str(quarantine_dir))
        assert report.clean
        assert report.actions == ()
        assert await snapshot(store) == before
        again = await store.recover(mode, quarantine_dir=str(quarantine_dir))
        assert again.clean
        assert again.actions == ()
        assert await snapshot(store) == before

    async def test_a_recovery_dry_run_of_a_clean_store_plans_nothing(
        self, store: Store, snapshot: Snapshot
    ) -> None:
        await store.append(sample_records(3))
        before = await snapshot(store)
        report = await store.recover("repair", dry_run=True)
        assert report.dry_run
        assert report.after is None
        assert report.actions == ()
        assert await snapshot(store) == before

    async def test_stats_match_reads(self, store: Store) -> None:
        records = sample_records(11)
        await store.append(records)
        stats = await store.stats()
        back = await _all(store)
        assert stats.records_by_kind == dict(Counter(r.kind for r in back))
        assert stats.records == len(back)
        assert (stats.first_seq, stats.last_seq) == (back[0].seq, back[-1].seq)
        assert stats.oldest_timestamp == min(r.timestamp for r in records)
        assert stats.newest_timestamp == max(r.timestamp for r in records)

    async def test_stats_follow_retention(self, store_factory: StoreFactory) -> None:
        store = await store_factory(retention=RetentionPolicy(max_records=4))
        try:
            await store.append(sample_records(10))
            stats = await store.stats()
            back = await _all(store)
            assert stats.records == len(back) == 4
            assert stats.first_seq == back[0].seq
            assert stats.last_seq == 10
        finally:
            await store.aclose()

    async def test_a_store_in_use_is_healthy(self, store: Store) -> None:
        await store.append(sample_records(1))
        assert (await store.health()).ok


# --------------------------------------------------------------------------- durability


class DurabilityConformance(_Base):
    """``aclose()`` flushes; a reopened store reads the same records and keeps counting."""

    async def test_aclose_flushes_every_appended_record(
        self, store: Store, store_factory: StoreFactory
    ) -> None:
        records = sample_records(20)
        await asyncio.gather(*(store.append(records[k:k + 4]) for k in range(0, 20, 4)))
        before = await _all(store)
        reopened = await self.reopen(store_factory, store)
        try:
            after = await _all(reopened)
            assert after == before
            assert seqs(after) == seqs(before)
            assert sorted(ids(after)) == sorted(ids(records))
        finally:
            await reopened.aclose()

    async def test_seq_continues_after_a_reopen(
        self, store: Store, store_factory: StoreFactory
    ) -> None:
        await store.append(sample_records(5))
        reopened = await self.reopen(store_factory, store)
        try:
            new = await reopened.append(sample_records(2, start=5))
            assert seqs(new) == [6, 7]
        finally:
            await reopened.aclose()

    async def test_the_retention_gap_survives_a_reopen(
        self, store: Store, store_factory: StoreFactory
    ) -> None:
        await store.append(sample_records(6))
        await store.compact(RetentionPolicy(max_records=0))
        reopened = await self.reopen(store_factory, store)
        try:
            (gap,) = await _physical(reopened)
            assert isinstance(gap, GapRecord)
            assert (gap.seq, gap.through, gap.reason) == (1, 6, "retention")
            assert seqs(await reopened.append(sample_records(1, start=6))) == [7]
        finally:
            await reopened.aclose()

    async def test_a_second_store_on_the_same_data_reads_what_the_first_wrote(
        self, store: Store, store_factory: StoreFactory
    ) -> None:
        if not store.capabilities.durable:
            pytest.skip(f"backend {store.backend_name!r} is not durable")
        records = sample_records(4)
        await store.append(records)
        other = await store_factory()
        try:
            assert ids(await _all(other)) == ids(records)
        finally:
            await other.aclose()


# --------------------------------------------------------------------------- concurrency


class ConcurrencyConformance(_Base):
    """Many tasks appending at once: unique, contiguous seqs, no loss, batches not interleaved."""

    async def test_concurrent_appends_from_many_tasks_lose_nothing(self, store: Store) -> None:
        async def writer(w: int) -> list[list[Record]]:
            batches = []
            for i in range(6):
                batch = sample_records(1 + (w + i) % 3, start=w * 100 + i * 10, tag=f"w{w}")
                batches.append(await store.append(batch))
            return batches

        per_writer = await asyncio.gather(*(writer(w) for w in range(12)))
        appended = [r for batches in per_writer for batch in batches for r in batch]
        back = await _all(store)
        assert sorted(ids(back)) == sorted(ids(appended))
        assert len(set(ids(back))) == len(back)
        assert seqs(back) == list(range(1, len(back) + 1))
        assert sorted(seqs(appended)) == seqs(back)
        for batches in per_writer:
            for batch in batches:
                assert _contiguous(seqs(batch)), "a batch was interleaved with another"
            mine = [r.id for batch in batches for r in batch]
            order = [r.id for r in back if r.id in set(mine)]
            assert order == mine, "one task's appends were reordered"


# --------------------------------------------------------------------------- failure semantics


class FailureConformance(_Base):
    """DESIGN §4 failure semantics: closed stores refuse work, bad records write nothing."""

    async def test_append_after_close_raises_store_closed(self, store: Store) -> None:
        await store.aclose()
        with pytest.raises(StoreClosedError):
            await store.append(sample_records(1))

    async def test_read_after_close_raises_store_closed(self, store: Store) -> None:
        await store.append(sample_records(1))
        await store.aclose()
        with pytest.raises(StoreClosedError):
            await _all(store)

    async def test_aclose_is_idempotent(self, store: Store) -> None:
        await store.append(sample_records(1))
        await store.aclose()
        await store.aclose()
        assert not (await store.health()).ok

    @pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
    async def test_a_record_with_nan_or_infinity_is_refused_and_nothing_is_written(
        self, store: Store, snapshot: Snapshot, bad: float
    ) -> None:
        await store.append(sample_records(2))
        before = await snapshot(store)
        rec = EventRecord(system_id=SYSTEM_ID, actor_address="a:1", event_type="X",
                          payload={"deep": [1.0, {"x": bad}]})
        with pytest.raises(EncodeError):
            await store.append([rec])
        assert await snapshot(store) == before
        assert seqs(await store.append(sample_records(1, start=2))) == [3]

    async def test_a_batch_with_one_bad_record_writes_none_of_it(
        self, store: Store, snapshot: Snapshot
    ) -> None:
        await store.append(sample_records(1))
        before = await snapshot(store)
        good = sample_records(3, start=1)
        bad = EventRecord(system_id=SYSTEM_ID, actor_address="a:1", event_type="X",
                          payload={"x": math.nan})
        with pytest.raises(EncodeError):
            await store.append([*good[:2], bad, good[2]])
        assert await snapshot(store) == before
        assert len(await _all(store)) == 1
        assert seqs(await store.append(good)) == [2, 3, 4]

    async def test_stats_match_reads_after_a_refused_append(self, store: Store) -> None:
        await store.append(sample_records(4))
        with pytest.raises(EncodeError):
            await store.append([EventRecord(system_id=SYSTEM_ID, actor_address="a:1",
                                            event_type="X", payload={"x": math.nan})])
        stats = await store.stats()
        assert stats.records == len(await _all(store)) == 4
        assert stats.last_seq == 4


# --------------------------------------------------------------------------- damage + recovery


class DamageConformance(_Base):
    """Scan and recovery of a damaged store; needs the backend's ``damage`` fixture."""

    @pytest_asyncio.fixture
    async def damaged(self, store: Store, damage: Damage | None) -> list[Record]:
        """Ten records appended, then the backend's ``damage`` applied to the middle of the log."""
        if damage is None:
            pytest.skip("the backend provides no damage fixture")
        records = sample_records(10)
        await store.append(records)
        await damage(store)
        return records

    async def test_scan_reports_the_damage(self, store: Store, damaged: list[Record]) -> None:
        report = await store.scan()
        assert not report.clean
        assert report.errors
        assert all(a.kind in ANOMALY_KINDS for a in report.anomalies)

    async def test_scan_of_a_damaged_store_changes_no_byte(
        self, store: Store, damaged: list[Record], snapshot: Snapshot
    ) -> None:
        before = await snapshot(store)
        await store.scan()
        assert await snapshot(store) == before

    async def test_a_dry_run_plans_but_changes_nothing(
        self, store: Store, damaged: list[Record], snapshot: Snapshot
    ) -> None:
        before = await snapshot(store)
        report = await store.recover("repair", dry_run=True)
        assert report.dry_run
        assert report.after is None
        assert report.actions
        assert not report.clean
        assert await snapshot(store) == before
        assert not (await store.scan()).clean

    async def test_ignore_mode_reports_and_writes_nothing(
        self, store: Store, damaged: list[Record], snapshot: Snapshot
    ) -> None:
        before = await snapshot(store)
        report = await store.recover("ignore")
        assert report.actions == ()
        assert not report.clean
        assert await snapshot(store) == before

    async def test_repair_makes_the_store_clean_and_keeps_the_records_after_the_damage(
        self, store: Store, damaged: list[Record]
    ) -> None:
        report = await store.recover("repair")
        assert report.clean
        assert report.after is not None
        assert report.after.clean
        assert (await store.scan()).clean
        back = ids(await _all(store))
        assert set(back) <= set(ids(damaged))
        assert back[-1] == damaged[-1].id, "repair lost the valid records after the damage"
        assert back[0] == damaged[0].id, "repair lost the valid records before the damage"
        assert len(back) < len(damaged)

    async def test_a_second_recovery_is_clean_and_changes_no_byte(
        self, store: Store, damaged: list[Record], snapshot: Snapshot
    ) -> None:
        await store.recover("repair")
        before = await snapshot(store)
        again = await store.recover("repair")
        assert again.clean
        assert again.actions == ()
        assert await snapshot(store) == before

    async def test_quarantine_makes_the_store_clean_and_keeps_the_removed_data(
        self, store: Store, damaged: list[Record], quarantine_dir: Path
    ) -> None:
        report = await store.recover("quarantine", quarantine_dir=str(quarantine_dir))
        assert report.clean
        assert any(a.action == "quarantine" for a in report.actions)
        assert await asyncio.to_thread(_holds_files_if_present, quarantine_dir)
        again = await store.recover("quarantine", quarantine_dir=str(quarantine_dir))
        assert again.actions == ()

    async def test_seqs_stay_explainable_after_repair(
        self, store: Store, damaged: list[Record]
    ) -> None:
        await store.recover("repair")
        physical = await _physical(store)
        expected = physical[0].seq
        for rec in physical:
            assert rec.seq == expected, f"seq {rec.seq} where {expected} was expected"
            expected = (rec.through if isinstance(rec, GapRecord) else rec.seq or 0) + 1


# --------------------------------------------------------------------------- model-based


class ModelConformance(_Base):
    """Random sequences of appends, compactions and reads, checked against a list model.

    Hypothesis drives a state machine in a thread of its own (with its own event loop, so the
    suite runs the same under any pytest-asyncio mode); examples are few and short, to stay
    cheap for durable backends that fsync every batch. Each example reopens the store with the
    factory and starts by compacting it empty, so it also checks that seq and the retention gap
    survive reopening.
    """

    model_examples: int = 12
    model_steps: int = 12

    async def test_random_appends_compactions_and_reads_match_a_simple_model(
        self, store_factory: StoreFactory
    ) -> None:
        from hypothesis import HealthCheck, settings
        from hypothesis import strategies as st
        from hypothesis.stateful import (
            RuleBasedStateMachine,
            initialize,
            invariant,
            rule,
            run_state_machine_as_test,
        )

        examples, steps = self.model_examples, self.model_steps
        base = time.time() - 10_000

        class Machine(RuleBasedStateMachine):
            def __init__(self) -> None:
                super().__init__()
                self.loop = asyncio.new_event_loop()
                self.store: Store | None = None
                self.model: list[tuple[int, str, str, float]] = []  # seq, id, kind, timestamp
                self.next_seq = 1
                self.retired_through = 0
                self.counter = 0

            def run(self, coro: Any) -> Any:
                return self.loop.run_until_complete(coro)

            @initialize()
            def open_store(self) -> None:
                # Every example opens the same data (the factory's one location per test), so
                # each starts by retiring whatever earlier examples left: an empty log whose
                # retention gap says where seq goes on.
                self.store = self.run(store_factory())
                try:
                    self.run(self.store.compact(RetentionPolicy(max_records=0)))
                except StoreNotFoundError:
                    return  # the first example: no log yet
                physical = self.run(_physical(self.store))
                if physical:
                    (gap,) = physical
                    assert isinstance(gap, GapRecord)
                    assert gap.seq == 1
                    self.retired_through = gap.through
                    self.next_seq = gap.through + 1

            def teardown(self) -> None:
                if self.store is not None:
                    self.run(self.store.aclose())
                self.loop.close()

            @rule(n=st.integers(min_value=1, max_value=4))
            def append(self, n: int) -> None:
                assert self.store is not None
                records = sample_records(n, start=self.counter, base_timestamp=base)
                self.counter += n
                stored = self.run(self.store.append(records))
                assert seqs(stored) == list(range(self.next_seq, self.next_seq + n))
                for rec in stored:
                    assert rec.seq is not None
                    self.model.append((rec.seq, rec.id, rec.kind, rec.timestamp))
                self.next_seq += n

            @rule(keep=st.integers(min_value=0, max_value=6))
            def compact(self, keep: int) -> None:
                assert self.store is not None
                report = self.run(self.store.compact(RetentionPolicy(max_records=keep)))
                assert report.before_records == len(self.model)
                if len(self.model) > keep:
                    retired = self.model[: len(self.model) - keep]
                    self.retired_through = retired[-1][0]
                    self.model = self.model[len(self.model) - keep:]
                assert report.after_records == len(self.model)

            @rule(limit=st.none() | st.integers(min_value=0, max_value=5),
                  kind=st.none() | st.sampled_from(["event", "audit", "dead_letter"]),
                  newest_first=st.booleans())
            def read(self, limit: int | None, kind: str | None, newest_first: bool) -> None:
                assert self.store is not None
                got = self.run(_all(self.store, kinds=kind, limit=limit,
                                    newest_first=newest_first))
                want = [m for m in self.model if kind is None or m[2] == kind]
                if limit is not None:
                    want = want[max(0, len(want) - limit):] if limit else []
                if newest_first:
                    want.reverse()
                assert [(r.seq, r.id) for r in got] == [(m[0], m[1]) for m in want]

            @rule(back=st.integers(min_value=0, max_value=8))
            def page(self, back: int) -> None:
                assert self.store is not None
                after = max(0, self.next_seq - 1 - back)
                got = self.run(_all(self.store, after_seq=after, limit=3))
                want = [m for m in self.model if m[0] > after][:3]
                assert [r.id for r in got] == [m[1] for m in want]

            @invariant()
            def the_log_explains_every_seq(self) -> None:
                if self.store is None:
                    return
                physical = self.run(_physical(self.store))
                data_ = [r for r in physical if not isinstance(r, GapRecord)]
                assert [(r.seq, r.id) for r in data_] == [(m[0], m[1]) for m in self.model]
                gaps = [r for r in physical if isinstance(r, GapRecord)]
                if self.retired_through:
                    assert len(gaps) == 1
                    assert (gaps[0].seq, gaps[0].through) == (1, self.retired_through)
                    assert physical[0] is gaps[0]
                else:
                    assert gaps == []

        Machine.TestCase.settings = settings(
            max_examples=examples, stateful_step_count=steps, deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        await asyncio.to_thread(run_state_machine_as_test, Machine)


# --------------------------------------------------------------------------- everything


class StoreConformance(
    AppendReadConformance,
    QueryConformance,
    RetentionConformance,
    MaintenanceConformance,
    DurabilityConformance,
    ConcurrencyConformance,
    FailureConformance,
    DamageConformance,
    ModelConformance,
):
    """Every contract test. Subclass it and provide a ``store_factory`` fixture::

        from papyra.testing import StoreConformance

        class TestJsonStore(StoreConformance):
            @pytest.fixture
            def store_factory(self, tmp_path):
                async def factory(**options):
                    return JsonStore(f"json://{tmp_path}/log.ndjson", **options)
                return factory
    """
