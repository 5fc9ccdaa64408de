"""The persistence queue: wall-clock records, batching, close semantics, and backends that
fail or stall (each a regression of papyra 0.3.0)."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

import pytest
from actor_helpers import Echo, FailingStore, SlowStore, Tally, memory_store, settle
from papyra import Actor, ActorStoppedError, ActorSystem, ManualClock
from papyra.backends.memory import MemoryStore


async def events(store: MemoryStore) -> list[Any]:
    return await store.read_all(kinds="event")


async def test_records_carry_wall_clock_timestamps(store: MemoryStore) -> None:
    """0.3.0 stamped records with the event loop's monotonic clock."""
    before = time.time()
    async with ActorSystem(system_id="test", persistence=store) as system:
        system.spawn(Echo)
        system.audit()
    after = time.time()
    rows = await store.read_all()
    assert rows
    assert all(before <= r.timestamp <= after for r in rows)


async def test_an_injected_clock_stamps_every_record(store: MemoryStore,
                                                      clock: ManualClock) -> None:
    async with ActorSystem(system_id="test", persistence=store, clock=clock) as system:
        ref = system.spawn(Echo)
        await settle()
        clock.advance(10)
        await ref.stop()
    assert [r.timestamp for r in await events(store)] == [clock.time() - 10, clock.time()]
    assert system.now() == clock.time()


async def test_a_plain_time_function_works_as_a_clock(store: MemoryStore) -> None:
    async with ActorSystem(system_id="test", persistence=store, time_fn=lambda: 1000.5) as s:
        s.spawn(Echo)
    assert {r.timestamp for r in await events(store)} == {1000.5}


async def test_aclose_persists_the_final_actor_stopped_of_every_actor(
    store: MemoryStore,
) -> None:
    """0.3.0 lost the last lifecycle events emitted while closing."""

    class Parent(Actor):
        async def on_start(self) -> None:
            for _ in range(3):
                self.context.spawn_child(Echo)

        async def receive(self, message: Any) -> Any:
            return None

    async with ActorSystem(system_id="test", persistence=store) as system:
        for _ in range(10):
            system.spawn(Parent)
        await settle()
    rows = await events(store)
    stopped = {r.actor_address for r in rows if r.event_type == "ActorStopped"}
    started = {r.actor_address for r in rows if r.event_type == "ActorStarted"}
    assert len(started) == 40
    assert stopped == started
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))


async def test_nothing_is_written_after_close(store: MemoryStore) -> None:
    system = ActorSystem(system_id="test", persistence=store)
    await system.start()
    ref = system.spawn(Echo)
    await system.aclose()
    count = len(await store.read_all())
    with pytest.raises(ActorStoppedError):
        await ref.tell("after close")
    system.audit()
    await settle()
    assert len(await store.read_all()) == count
    assert system.metrics.records_dropped["closed"] == 2


async def test_a_store_opened_from_a_url_is_closed_and_a_passed_store_is_left_open(
    store: MemoryStore,
) -> None:
    async with ActorSystem(system_id="test", persistence=store):
        pass
    assert not store.closed
    system = ActorSystem(system_id="test", persistence="memory://")
    async with system:
        assert system.store.system_id == "test"
    assert system.store.closed


async def test_records_reach_the_store_in_batches(store: MemoryStore) -> None:
    slow = SlowStore(0.02)
    async with ActorSystem(system_id="test", persistence=slow) as system:
        for _ in range(50):
            system.spawn(Echo)
        await settle()
    assert sum(slow.batches) == 100
    assert len(slow.batches) < 20


async def test_a_failing_backend_never_crashes_or_stalls_the_actors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """0.3.0 let a write error cancel the task that had started the system."""
    caplog.set_level(logging.WARNING, logger="papyra.actors")
    failing = FailingStore()
    async with ActorSystem(system_id="test", persistence=failing, max_attempts=2,
                           close_timeout=5) as system:
        system._queue.backoff_initial = 0.001  # type: ignore[union-attr]
        ref = system.spawn(Tally, name="t")
        for _ in range(200):
            await ref.tell("x")
        await ref.tell("boom")
        assert await asyncio.wait_for(ref.ask("get"), 1) == 0
        await system.flush(timeout=2)
        snap = system.metrics.snapshot()
        assert snap["records_dropped"]["failed"] >= 3
        assert snap["persist_failures"] >= 2
        failing.failing = False  # the backend comes back
        system.audit()
        await system.flush(timeout=2)
    assert [r.kind for r in await failing.read_all()][:1] == ["audit"]
    assert any("failed" in r.getMessage() and "No space left" in r.getMessage()
               for r in caplog.records)


async def test_a_slow_backend_never_slows_message_processing() -> None:
    slow = SlowStore(0.2)
    async with ActorSystem(system_id="test", persistence=slow, close_timeout=5) as system:
        ref = system.spawn(Tally)
        start = time.perf_counter()
        for _ in range(1000):
            await ref.tell("x")
        assert await ref.ask("get") == 1000
        assert time.perf_counter() - start < 0.15


async def test_overflow_drop_counts_what_it_dropped() -> None:
    slow = SlowStore(0.1)
    async with ActorSystem(system_id="test", persistence=slow, queue_capacity=5,
                           overflow="drop", close_timeout=5) as system:
        for _ in range(20):
            system.spawn(Echo)
        await settle()
        dropped = system.metrics.records_dropped["overflow"]
        assert dropped >= 10
    written = sum(system.metrics.records_written.values())
    assert written + system.metrics.records_dropped["overflow"] == 40
    assert len(await slow.read_all()) == written


async def test_overflow_block_waits_for_room_then_drops_after_block_timeout() -> None:
    slow = SlowStore(0.02)
    async with ActorSystem(system_id="test", persistence=slow, queue_capacity=2,
                           overflow="block", block_timeout=1.0, batch_size=2) as system:
        for _ in range(6):
            system.spawn(Echo)
        await settle()
    assert len(await slow.read_all()) == 12
    assert system.metrics.records_dropped["overflow"] == 0

    stuck = SlowStore(10)
    async with ActorSystem(system_id="test", persistence=stuck, queue_capacity=1,
                           block_timeout=0.05, batch_size=1, close_timeout=0.1) as system:
        for _ in range(3):
            system.spawn(Echo)
        await asyncio.sleep(0.2)
        assert system.metrics.records_dropped["overflow"] >= 1


async def test_an_unencodable_record_is_dropped_alone() -> None:
    store = memory_store()
    async with ActorSystem(system_id="test", persistence=store) as system:
        ref = system.spawn(Echo)
        await settle()
        await ref.stop()
        with pytest.raises(ActorStoppedError):
            await ref.tell(math.nan)  # JSON cannot carry NaN
        with pytest.raises(ActorStoppedError):
            await ref.tell("fine")
    rows = await store.read_all(kinds="dead_letter")
    assert [r.payload for r in rows] == ["fine"]
    assert system.metrics.records_dropped["invalid"] == 1


async def test_in_memory_event_history_is_bounded() -> None:
    async with ActorSystem(system_id="test", persistence=memory_store(),
                           history_limit=5) as system:
        for _ in range(10):
            await system.spawn(Echo).stop()
        assert len(system.events()) == 5
        assert system.events()[-1].event_type == "ActorStopped"


async def test_metrics_snapshot_is_plain_data_with_gauges(system: ActorSystem) -> None:
    gate = asyncio.Event()

    class Busy(Actor):
        async def receive(self, message: Any) -> Any:
            await gate.wait()

    ref = system.spawn(Busy)
    for i in range(4):
        await ref.tell(i)
    await settle()
    snap = system.metrics.snapshot()
    assert snap["mailbox_depth"] == 3
    assert snap["actors_alive"] == 1
    assert snap["actors_spawned"] == 1
    gate.set()
    await ref.stop()
    snap = system.metrics.snapshot()
    assert snap["messages_processed"] == 4
    assert snap["actors_stopped"] == 1
    assert isinstance(snap["records_enqueued"], dict)


async def test_an_unhealthy_store_is_not_retried_and_an_outage_logs_little(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from papyra import StoreUnhealthyError

    class Unhealthy(FailingStore):
        async def _append(self, records: Any) -> Any:
            self.attempts += 1
            raise StoreUnhealthyError("fsync failed: EIO")

    caplog.set_level(logging.DEBUG, logger="papyra.actors")
    store = Unhealthy()
    async with ActorSystem(system_id="test", persistence=store) as system:
        for _ in range(5):
            await system.spawn(Echo).stop()
            await system.flush(timeout=1)
    assert store.attempts == system.metrics.persist_failures
    assert store.attempts <= 10
    assert system.metrics.records_dropped["failed"] == 10
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "fsync failed: EIO" in errors[0].getMessage()


async def test_a_recovered_store_is_reported_once_and_gets_the_new_records(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="papyra.actors")
    failing = FailingStore()
    async with ActorSystem(system_id="test", persistence=failing, max_attempts=3) as system:
        system._queue.backoff_initial = 0.001  # type: ignore[union-attr]
        system.spawn(Echo)
        await system.wait_for_event("ActorStarted")
        await system.flush(timeout=2)
        failing.failing = False
        system.spawn(Echo)
        await system.wait_for_event("ActorStarted", start_index=1)
        await system.flush(timeout=2)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("retry" in m for m in messages) == 1
    assert sum("succeed again (1 records dropped" in m for m in messages) == 1
    assert len(await failing.read_all(kinds="event")) == 3


async def test_one_metrics_object_can_count_several_systems() -> None:
    from papyra import SystemMetrics

    shared = SystemMetrics()
    first = ActorSystem(system_id="a", persistence=memory_store(), metrics=shared)
    second = ActorSystem(system_id="b", persistence=memory_store(), metrics=shared)
    async with first, second:
        first.spawn(Echo)
        second.spawn(Echo)
        await settle()
        assert shared.snapshot()["actors_alive"] == 2
    snap = shared.snapshot()
    assert (snap["actors_spawned"], snap["actors_stopped"], snap["actors_alive"]) == (2, 2, 0)
