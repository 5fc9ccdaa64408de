"""Redis specifics: entry layout, legacy 0.3.0 entries, malformed entries, quarantine fields,
consumer-group hygiene in scans, paging by seq on long streams, trimming, compaction memory."""

from __future__ import annotations

import asyncio
import json

import attrs
from papyra import EventRecord, RetentionPolicy, codec
from papyra.records import DeadLetterRecord, GapRecord, Record
from papyra_backend_redis import ConsumerGroup, RedisStore
from papyra_backend_redis.keys import text


def events(n: int, start: int = 0, ts: float | None = None) -> list[EventRecord]:
    return [EventRecord(system_id="orders", actor_address=f"orders:{i}", event_type="E",
                        payload={"i": i}, **({"timestamp": ts} if ts else {}))
            for i in range(start, start + n)]


async def test_entries_hold_the_v1_bytes_without_seq_and_a_seq_field(store: RedisStore) -> None:
    (rec,) = await store.append(events(1))
    (_, fields), = await store.client.xrange(f"{store.keys.prefix}:{{orders}}:events")
    assert set(fields) == {b"data", b"seq"}
    assert fields[b"seq"] == b"1"
    assert fields[b"data"] == codec.encode(attrs.evolve(rec, seq=None))[:-1]
    assert b'"seq"' not in fields[b"data"]
    assert b'"crc":"' in fields[b"data"]


async def test_a_mixed_batch_keeps_each_record_in_its_own_entry_in_batch_order(
    store: RedisStore,
) -> None:
    # the script receives each run of one kind as the codec's lines joined by their newlines:
    # newlines inside values must stay inside their record
    batch: list[Record] = [
        *events(2),
        DeadLetterRecord(system_id="orders", target="orders:9", message_type="M",
                         payload={"text": "two\nlines\r\n", "multi\nline key": ["\n"]}),
        attrs.evolve(events(1, start=7)[0], seq=123),  # a record that already had a seq
        *events(2, start=3),
    ]
    stored = await store.append(batch)
    assert [r.seq for r in stored] == [1, 2, 3, 4, 5, 6]
    assert [r.id for r in stored] == [r.id for r in batch]
    for rec in stored:
        entries = await store.client.xrange(store.keys.stream(rec.kind))
        fields = next(f for _, f in entries if int(f[b"seq"]) == rec.seq)
        assert fields[b"data"] == codec.encode(attrs.evolve(rec, seq=None))[:-1]
    assert [len(await store.client.xrange(store.keys.stream(k))) for k in
            ("event", "dead_letter")] == [5, 1]
    assert await store.read_all() == stored
    assert (await store.scan()).clean


async def test_seq_fields_are_plain_decimals_across_digit_and_hundred_boundaries(
    store: RedisStore,
) -> None:
    for size in (37, 63, 1, 98, 51):  # seqs 1..250, batches ending at 37, 100, 101, 199, 250
        await store.append(events(size))
    await store.client.set(store.keys.seq, 99_999_995)  # the counter far ahead: 8 -> 9 digits
    await store.append(events(10))
    entries = await store.client.xrange(store.keys.stream("event"))
    want = [*range(1, 251), *range(99_999_996, 100_000_006)]
    assert [f[b"seq"] for _, f in entries] == [str(n).encode() for n in want]
    assert [r.seq for r in await store.read_all()] == want


async def test_entries_written_by_papyra_0_3_read_as_legacy_records(store: RedisStore) -> None:
    legacy = json.dumps({"kind": "event", "system_id": "orders", "actor_address": "orders:1",
                         "event_type": "ActorStarted", "payload": {}, "timestamp": 352.46})
    await store.client.xadd(store.keys.stream("event"), {"data": legacy})
    await store.append(events(2))
    back = await store.read_all()
    assert [r.legacy for r in back] == [True, False, False]
    report = await store.scan()
    assert report.clean
    assert (report.records, report.legacy_records) == (2, 1)


async def test_malformed_entries_and_checksum_failures_are_found_in_a_whole_stream_scan(
    store: RedisStore,
) -> None:
    store.chunk = 7  # force several XRANGE chunks
    await store.append(events(40))
    key = store.keys.stream("event")
    await store.client.xadd(key, {"junk": "x"})
    good = codec.encode(events(1)[0], seq=None)[:-1]
    seq = await store.client.incr(store.keys.seq)  # what a writer would have taken
    await store.client.xadd(key, {"data": good.replace(b'"E"', b'"F"'), "seq": seq})
    await store.append(events(3, start=40))
    report = await store.scan()
    kinds = sorted(a.kind for a in report.anomalies)
    assert kinds == ["checksum_mismatch", "malformed_entry"]
    assert all(a.stream == key and a.entry_id for a in report.anomalies)
    assert report.records == 43
    # reads skip the damaged entries
    assert len(await store.read_all()) == 43


async def test_quarantine_copies_every_original_field_then_deletes(store: RedisStore) -> None:
    await store.append(events(3))
    key = store.keys.stream("event")
    seq = await store.client.incr(store.keys.seq)
    eid = await store.client.xadd(key, {"data": b"not json", "seq": seq, "extra": "kept"})
    await store.append(events(1, start=3))
    report = await store.recover("quarantine")
    assert report.clean
    (_, fields), = await store.client.xrange(store.keys.quarantine)
    fields = {text(k): v for k, v in fields.items()}
    assert fields["data"] == b"not json"
    assert fields["extra"] == b"kept"
    assert fields["seq"] == b"4"
    assert fields["_papyra_entry_id"] == eid
    assert fields["_papyra_source"].decode() == key
    assert fields["_papyra_anomaly"] == b"malformed_entry"
    gaps = [r for r in await store.read_all(include_gaps=True) if isinstance(r, GapRecord)]
    assert [(g.seq, g.through, g.reason) for g in gaps] == [(4, 4, "quarantine")]
    assert [r.seq for r in await store.read_all()] == [1, 2, 3, 5]


async def test_an_entry_deleted_by_hand_is_a_seq_gap_that_repair_explains(
    store: RedisStore,
) -> None:
    await store.append(events(6))
    rows = await store.client.xrange(store.keys.stream("event"))
    await store.client.xdel(store.keys.stream("event"), rows[2][0])
    report = await store.scan()
    assert [a.kind for a in report.anomalies] == ["seq_gap"]
    assert "3..3" in report.anomalies[0].detail
    fixed = await store.recover("repair")
    assert fixed.clean
    assert (await store.recover("repair")).actions == ()


async def test_scan_reports_expected_groups_that_are_missing(redis_url: str) -> None:
    async with RedisStore(redis_url + "&groups=indexer,archiver:audits") as store:
        await store.append(events(2))
        await ConsumerGroup(store, "indexer", "c").ensure()
        report = await store.scan()
        assert [(a.kind, a.stream) for a in report.anomalies] == [
            ("missing_group", store.keys.stream("audit"))]
        assert "archiver" in report.anomalies[0].detail


async def test_scan_reports_stale_pending_entries_and_idle_consumers(redis_url: str) -> None:
    async with RedisStore(redis_url + "&stale_pending_ms=50&groups=indexer") as store:
        await store.append(events(3))
        group = ConsumerGroup(store, "indexer", "sleepy", block_ms=0)
        await group.ensure()
        await group.fetch()
        await asyncio.sleep(0.12)
        report = await store.scan()
        (a,) = report.anomalies
        assert a.kind == "stale_pending"
        async with RedisStore(redis_url + "&stale_pending_ms=50") as unjudged:
            assert (await unjudged.scan()).clean, "groups not named in groups= are not judged"
        assert "3 pending entries" in a.detail
        assert "sleepy" in a.detail


async def test_paging_by_seq_finds_its_place_on_a_long_stream(store: RedisStore) -> None:
    for k in range(0, 3000, 500):
        await store.append(events(500, start=k))
    page = await store.read_all(after_seq=1234, limit=5)
    assert [r.seq for r in page] == [1235, 1236, 1237, 1238, 1239]
    assert [r.seq for r in await store.read_all(after_seq=2990)] == list(range(2991, 3001))
    assert [r.seq for r in await store.read_all(after_seq=0, limit=2)] == [1, 2]


async def test_trimming_on_write_is_approximate_and_never_cuts_into_retention(
    redis_url: str,
) -> None:
    policy = RetentionPolicy(max_records=150)
    async with RedisStore(redis_url + "&trim_on_write=1", retention=policy) as store:
        for k in range(0, 2000, 100):
            await store.append(events(100, start=k))
        length = await store.client.xlen(store.keys.stream("event"))
        assert 150 <= length < 2000
        assert [r.seq for r in await store.read_all()] == list(range(1851, 2001))
        assert (await store.scan()).clean


async def test_compaction_is_exact_and_reports_memory(store: RedisStore) -> None:
    await store.append(events(500))
    report = await store.compact(RetentionPolicy(max_records=100))
    assert (report.before_records, report.after_records) == (500, 100)
    assert report.before_bytes is not None
    assert report.after_bytes is not None
    assert report.reclaimed_bytes is not None
    assert report.reclaimed_bytes > 0
    assert await store.client.xlen(store.keys.stream("event")) == 100


async def test_compaction_while_entries_are_pending_reports_them_as_trimmed(
    store: RedisStore,
) -> None:
    await store.append(events(10))
    trimmed: list[str] = []
    group = ConsumerGroup(store, "indexer", "c1", block_ms=0,
                          on_trimmed=lambda s, e: trimmed.append(e))
    await group.ensure()
    assert len(await group.fetch()) == 10
    await store.compact(RetentionPolicy(max_records=4))
    again = await group.fetch()
    assert [d.record.seq for d in again if d.record] == [7, 8, 9, 10]
    assert len(trimmed) == 6


async def test_paging_with_gaps_includes_only_gaps_after_the_seq(store: RedisStore) -> None:
    await store.append(events(10))
    await store.compact(RetentionPolicy(max_records=4))
    assert [type(r).__name__ for r in await store.read_all(include_gaps=True, after_seq=6)] == [
        "EventRecord"] * 4
    first = await store.read_all(include_gaps=True, after_seq=0, limit=2)
    assert isinstance(first[0], GapRecord)
    assert first[1].seq == 7


async def test_a_repeated_seq_is_a_regression_that_repair_removes_without_a_gap(
    store: RedisStore,
) -> None:
    await store.append(events(4))
    key = store.keys.stream("event")
    rows = await store.client.xrange(key)
    await store.client.xadd(key, rows[1][1])  # a second copy of seq 2, appended later
    await store.append(events(1, start=4))
    report = await store.scan()
    assert [a.kind for a in report.anomalies] == ["seq_regression"]
    fixed = await store.recover("repair")
    assert fixed.clean
    assert not [r for r in await store.read_all(include_gaps=True) if isinstance(r, GapRecord)]
    assert [r.seq for r in await store.read_all()] == [1, 2, 3, 4, 5]
    assert (await store.recover("repair")).actions == ()


async def test_an_entry_with_an_unreadable_seq_is_repaired_in_one_run(store: RedisStore) -> None:
    await store.append(events(2))
    seq = await store.client.incr(store.keys.seq)
    data = codec.encode(events(1)[0])[:-1]
    await store.client.xadd(store.keys.stream("event"), {"data": data, "seq": f"x{seq}"})
    await store.append(events(2, start=3))
    report = await store.scan()
    assert [a.kind for a in report.anomalies] == ["malformed_entry", "seq_gap"]
    fixed = await store.recover("repair")
    assert fixed.clean, fixed.after
    assert (await store.recover("repair")).actions == ()
    assert [r.seq for r in await store.read_all()] == [1, 2, 4, 5]


async def test_a_lost_seq_counter_never_hands_out_a_seq_twice(store: RedisStore) -> None:
    await store.append(events(3))
    await store.client.delete(store.keys.seq)  # evicted, deleted, or restored apart
    assert [r.seq for r in await store.append(events(2, start=3))] == [4, 5]
    await store.compact(RetentionPolicy(max_records=0))
    await store.client.delete(store.keys.seq)
    assert [r.seq for r in await store.append(events(1, start=5))] == [6]
    assert (await store.scan()).clean
