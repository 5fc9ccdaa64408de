"""Property: whatever a run does (spawns, children, crashes, restarts, stops), after aclose()
the store holds a complete, ordered account of it."""

from __future__ import annotations

from typing import Any

from actor_helpers import Echo, FailingStore, memory_store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from papyra import Actor, ActorRef, ActorStoppedError, ActorSystem, Strategy, SupervisionPolicy
from papyra.backends.memory import MemoryStore

policies = st.sampled_from([Strategy.STOP, Strategy.RESTART, Strategy.ESCALATE])
ops = st.lists(
    st.tuples(st.sampled_from(["spawn", "child", "crash", "stop", "tell"]),
              st.integers(0, 30), policies),
    min_size=1, max_size=30,
)


class Node(Actor):
    async def receive(self, message: Any) -> Any:
        kind, policy = message
        if kind == "crash":
            raise RuntimeError("injected")
        if kind == "child":
            return self.context.spawn_child(
                Node, policy=SupervisionPolicy(strategy=policy, max_restarts=2))
        return None


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
async def test_every_started_actor_has_one_final_stop_after_its_children(
    script: list[tuple[str, int, Strategy]],
) -> None:
    store = memory_store()
    refs: list[ActorRef] = []
    async with ActorSystem(system_id="test", persistence=store) as system:
        for op, pick, policy in script:
            if op == "spawn" or not refs:
                refs.append(system.spawn(
                    Node, policy=SupervisionPolicy(strategy=policy, max_restarts=2)))
                continue
            ref = refs[pick % len(refs)]
            try:
                if op == "child":
                    refs.append(await ref.ask(("child", policy), timeout=2))
                elif op == "crash":
                    await ref.tell(("crash", policy))
                elif op == "stop":
                    await ref.stop()
                else:
                    await ref.tell(("noop", policy))
            except (ActorStoppedError, RuntimeError):
                pass
    everything = await store.read_all()
    assert [r.seq for r in everything] == list(range(1, len(everything) + 1))
    rows = [r for r in everything if r.kind == "event"]
    assert system.metrics.records_dropped == {}
    by_actor: dict[str, list[str]] = {}
    for r in rows:
        by_actor.setdefault(r.actor_address, []).append(r.event_type)
    for address, types in by_actor.items():
        assert types.count("ActorStopped") == 1, (address, types)
        assert types[-1] == "ActorStopped", (address, types)
    assert len(by_actor) == len({str(r.address) for r in refs})
    stop_seq = {r.actor_address: r.seq for r in rows if r.event_type == "ActorStopped"}
    info = {str(r.address): r for r in refs}
    for address in stop_seq:
        parent = info[address]._rt.parent
        if parent is not None:
            assert stop_seq[address] < stop_seq[parent.addr]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(failures=st.lists(st.booleans(), min_size=1, max_size=12),
       actors=st.integers(1, 15), attempts=st.integers(1, 3))
async def test_every_record_is_either_written_or_counted_as_dropped(
    failures: list[bool], actors: int, attempts: int
) -> None:
    """A store failing in any pattern: nothing crashes, nothing is lost without being counted."""
    class Flaky(FailingStore):
        async def _append(self, records: Any) -> Any:
            fail = failures[self.attempts % len(failures)]
            self.attempts += 1
            if fail:
                raise OSError(5, "Input/output error")
            return await MemoryStore._append(self, records)

    store = Flaky()
    async with ActorSystem(system_id="test", persistence=store, max_attempts=attempts,
                           batch_size=4) as system:
        system._queue.backoff_initial = 0.0001  # type: ignore[union-attr]
        refs = [system.spawn(Echo) for _ in range(actors)]
        for ref in refs[::2]:
            await ref.stop()
        system.audit()
    m = system.metrics
    enqueued = sum(m.records_enqueued.values())
    written = sum(m.records_written.values())
    assert enqueued == 2 * actors + 1
    assert enqueued == written + m.records_dropped["failed"] + m.records_dropped["closed"]
    assert len(await store.read_all()) == written
