"""Consumer groups against a real redis-server: delivery, ack, reclaim, poison, trimming,
restarts with and without AOF."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest
from papyra import EventRecord
from papyra_backend_redis import ConsumerGroup, Delivery, RecentIds, RedisStore, mark_once
from papyra_backend_redis.keys import text
from papyra_backend_redis.testing import RedisServer


def events(n: int, start: int = 0) -> list[EventRecord]:
    return [EventRecord(system_id="orders", actor_address=f"orders:{i}", event_type="E",
                        payload={"i": i}) for i in range(start, start + n)]


async def test_creating_a_group_twice_tolerates_busygroup(store: RedisStore) -> None:
    group = ConsumerGroup(store, "indexer", "c1")
    assert await group.ensure() == [store.keys.stream("event")]
    assert await group.ensure() == []


async def test_handled_entries_are_acknowledged_and_delivered_once(store: RedisStore) -> None:
    appended = await store.append(events(7))
    seen: list[str] = []
    group = ConsumerGroup(store, "indexer", "c1", block_ms=50)
    await group.run(lambda d: seen.append(d.record_id or ""), max_idle_polls=1)
    assert seen == [r.id for r in appended]
    assert await store.client.xpending(store.keys.stream("event"), "indexer") == {
        "pending": 0, "min": None, "max": None, "consumers": []}


async def test_own_pending_entries_are_drained_before_new_ones(store: RedisStore) -> None:
    first = await store.append(events(3))
    group = ConsumerGroup(store, "indexer", "c1", block_ms=0)
    await group.ensure()
    got = await group.fetch()
    assert [d.record_id for d in got] == [r.id for r in first]
    await store.append(events(2, start=3))
    again = await group.fetch()  # nothing was acked: the same three come back first
    assert [d.record_id for d in again] == [r.id for r in first]
    assert all(d.deliveries == 2 for d in again)
    await group.ack(again)
    new = await group.fetch()
    assert [d.record_id for d in new] == [r.record_id for r in new]
    assert len(new) == 2


CONSUMER = textwrap.dedent("""
    import asyncio, os, sys
    from papyra_backend_redis import ConsumerGroup, RedisStore

    async def main():
        store = RedisStore(sys.argv[1])
        group = ConsumerGroup(store, "indexer", "doomed", count=10, block_ms=100)
        await group.ensure()
        batch = await group.fetch()
        await group.ack(batch[:2])
        print(len(batch), flush=True)
        await asyncio.sleep(3600)  # killed here, mid-batch

    asyncio.run(main())
""")


async def test_a_consumer_killed_mid_batch_leaves_entries_another_consumer_reclaims(
    store: RedisStore, redis_url: str
) -> None:
    appended = await store.append(events(5))
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", CONSUMER, redis_url,
                                                stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.strip() == b"5"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
    survivor = ConsumerGroup(store, "indexer", "survivor", min_idle_ms=50, block_ms=0)
    await asyncio.sleep(0.1)
    reclaimed = await survivor.fetch()
    assert [d.record_id for d in reclaimed] == [r.id for r in appended[2:]]
    await survivor.ack(reclaimed)
    assert survivor.stats.claimed == 3
    pending = await store.client.xpending(store.keys.stream("event"), "indexer")
    assert pending["pending"] == 0


async def test_a_poison_entry_goes_to_the_poison_stream_after_max_deliveries(
    store: RedisStore,
) -> None:
    appended = await store.append(events(3))
    bad = appended[1].id
    handled: list[str] = []

    def handler(d: Delivery) -> None:
        if d.record_id == bad:
            raise ValueError("cannot index this one")
        handled.append(d.record_id or "")

    group = ConsumerGroup(store, "indexer", "c1", max_deliveries=3, block_ms=0)
    stats = await group.run(handler, max_idle_polls=2)
    assert handled == [appended[0].id, appended[2].id]
    assert stats.poisoned == 1
    assert stats.handler_failures == 3
    (_, fields), = await store.client.xrange(store.keys.poison)
    fields = {text(k): v for k, v in fields.items()}
    original = await store.client.xrange(store.keys.stream("event"))
    assert fields["_papyra_entry_id"].decode() == text(original[1][0])
    assert fields["_papyra_group"] == b"indexer"
    assert fields["data"] == original[1][1][b"data"]
    assert fields["seq"] == b"2"
    assert (await store.client.xpending(store.keys.stream("event"), "indexer"))["pending"] == 0


async def test_entries_trimmed_while_pending_are_reported_not_retried_forever(
    store: RedisStore,
) -> None:
    await store.append(events(4))
    trimmed: list[str] = []
    group = ConsumerGroup(store, "indexer", "c1", block_ms=0,
                          on_trimmed=lambda stream, eid: trimmed.append(eid))
    await group.ensure()
    assert len(await group.fetch()) == 4
    await store.client.xtrim(store.keys.stream("event"), maxlen=0)
    assert await group.fetch() == []
    assert len(trimmed) == 4
    assert await group.fetch() == []
    assert len(trimmed) == 4
    assert (await store.client.xpending(store.keys.stream("event"), "indexer"))["pending"] == 0


async def test_recent_ids_drop_duplicates() -> None:
    seen = RecentIds(capacity=2)
    assert seen.first_time("a")
    assert seen.first_time("b")
    assert not seen.first_time("a")
    assert seen.first_time("c")  # evicts b, the least recently seen
    assert seen.first_time("b")
    assert len(seen) == 2


async def test_mark_once_deduplicates_across_processes(store: RedisStore) -> None:
    assert await mark_once(store, "indexer", "abc")
    assert not await mark_once(store, "indexer", "abc")


@pytest.fixture
def own_server(tmp_path: Path, redis_server: RedisServer) -> object:
    servers: list[RedisServer] = []

    def start(aof: bool) -> RedisServer:
        server = RedisServer(tmp_path / f"srv{len(servers)}", aof=aof).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop(kill=True)


async def test_consumers_resume_without_loss_when_redis_restarts_with_aof(
    own_server: object,
) -> None:
    server = own_server(True)  # type: ignore[operator]
    store = RedisStore(server.url(system_id="orders"))
    try:
        appended = await store.append(events(10))
        seen: list[str] = []
        group = ConsumerGroup(store, "indexer", "c1", count=4, block_ms=50)
        await group.ensure()
        first = await group.fetch()
        seen += [d.record_id or "" for d in first]
        await group.ack(first)
        unacked = await group.fetch()  # delivered, not acknowledged when Redis goes down
        seen += [d.record_id or "" for d in unacked]
        await asyncio.to_thread(server.restart, kill=True)
        await group.run(lambda d: seen.append(d.record_id or ""), max_idle_polls=2)
        assert set(seen) == {r.id for r in appended}
        assert group.stats.stream_resets == 0
        pending = await store.client.xpending(store.keys.stream("event"), "indexer")
        assert pending["pending"] == 0
        more = await store.append(events(1, start=10))
        assert more[0].seq == 11, "the seq counter survived the restart"
    finally:
        await store.aclose()


async def test_an_empty_restart_recreates_the_group_and_reports_one_stream_reset(
    own_server: object,
) -> None:
    server = own_server(False)  # type: ignore[operator]
    store = RedisStore(server.url(system_id="orders"))
    resets: list[str] = []
    try:
        await store.append(events(3))
        group = ConsumerGroup(store, "indexer", "c1", block_ms=50, on_reset=resets.append)
        await group.ensure()
        await group.ack(await group.fetch())
        await asyncio.to_thread(server.restart, keep_data=False)
        for _ in range(5):
            assert await group.fetch() == []
        assert resets == [store.keys.stream("event")]
        new = await store.append(events(2, start=3))
        got = await group.fetch()
        assert [d.record_id for d in got] == [r.id for r in new]
    finally:
        await store.aclose()
