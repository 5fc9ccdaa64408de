"""Spawning, messaging, stopping and closing (0.3.0's lifecycle behaviours, plus its fixes)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from actor_helpers import Echo, Recorder, memory_store, settle
from papyra import Actor, ActorStoppedError, ActorSystem


async def test_actor_receives_told_messages_in_order(system: ActorSystem) -> None:
    ref = system.spawn(Recorder)
    for i in range(50):
        await ref.tell(i)
    assert await ref.ask("get") == list(range(50))


async def test_ask_returns_what_receive_returned(system: ActorSystem) -> None:
    ref = system.spawn(Echo)
    assert await ref.ask({"a": 1}, timeout=1) == {"a": 1}


async def test_ask_reraises_the_actors_exception_in_the_caller(system: ActorSystem) -> None:
    ref = system.spawn(Echo, name="echo")
    with pytest.raises(KeyError, match="missing"):
        await ref.ask(KeyError("missing"))
    assert await ref.ask("still here") == "still here"


async def test_on_start_runs_before_the_first_message_and_on_stop_once_at_the_end(
    system: ActorSystem,
) -> None:
    calls: list[str] = []

    class Life(Actor):
        async def on_start(self) -> None:
            calls.append("start")

        async def receive(self, message: Any) -> Any:
            calls.append(f"msg:{message}")

        async def on_stop(self) -> None:
            calls.append("stop")

    ref = system.spawn(Life)
    await ref.tell(1)
    await ref.stop()
    await ref.stop()  # idempotent
    assert calls == ["start", "msg:1", "stop"]
    assert not ref.is_alive()


async def test_spawn_before_start_and_after_close_raises_actor_stopped_error() -> None:
    system = ActorSystem(system_id="test", persistence=memory_store())
    with pytest.raises(ActorStoppedError):
        system.spawn(Echo)
    await system.start()
    await system.start()  # idempotent
    await system.aclose()
    with pytest.raises(ActorStoppedError):
        system.spawn(Echo)
    with pytest.raises(ActorStoppedError):
        await system.start()
    await system.aclose()  # idempotent


async def test_start_and_aclose_may_be_called_from_different_tasks() -> None:
    system = ActorSystem(system_id="test", persistence=memory_store())
    await asyncio.create_task(system.start())
    ref = system.spawn(Echo)
    assert await ref.ask("hi") == "hi"
    await asyncio.create_task(system.aclose())
    assert system.closed
    assert not ref.is_alive()


async def test_stop_cascades_to_children_before_the_parent_stops(system: ActorSystem) -> None:
    order: list[str] = []

    class Child(Actor):
        async def receive(self, message: Any) -> Any:
            return None

        async def on_stop(self) -> None:
            order.append("child")

    class Parent(Actor):
        async def on_start(self) -> None:
            self.kids = [self.context.spawn_child(Child) for _ in range(3)]

        async def receive(self, message: Any) -> Any:
            return self.kids

        async def on_stop(self) -> None:
            order.append("parent")

    parent = system.spawn(Parent)
    kids = await parent.ask("kids")
    await parent.stop()
    assert order == ["child", "child", "child", "parent"]
    assert not any(k.is_alive() for k in kids)


async def test_stop_self_from_receive_stops_after_the_current_message(
    system: ActorSystem,
) -> None:
    class Quitter(Actor):
        async def receive(self, message: Any) -> Any:
            await self.context.stop_self()
            return "bye"

    ref = system.spawn(Quitter)
    assert await ref.ask("x", timeout=1) == "bye"
    await system.wait_for_event("ActorStopped")
    assert not ref.is_alive()


async def test_messages_told_before_stop_are_processed_first(system: ActorSystem) -> None:
    seen: list[int] = []

    class Slow(Actor):
        async def receive(self, message: Any) -> Any:
            await asyncio.sleep(0)
            seen.append(message)

    ref = system.spawn(Slow)
    for i in range(5):
        await ref.tell(i)
    await ref.stop()
    assert seen == [0, 1, 2, 3, 4]


async def test_unbounded_mailbox_really_is_unbounded(system: ActorSystem) -> None:
    """0.3.0 turned mailbox_capacity=None into a rendezvous channel (each tell waited)."""
    gate = asyncio.Event()

    class Busy(Actor):
        async def receive(self, message: Any) -> Any:
            await gate.wait()

    ref = system.spawn(Busy, mailbox_capacity=None)
    async with asyncio.timeout(1):
        for i in range(5000):
            await ref.tell(i)
    assert ref._rt.mailbox.bounded is False
    assert system.metrics.snapshot()["mailbox_depth"] >= 4999
    gate.set()


async def test_bounded_mailbox_makes_senders_wait_for_room(system: ActorSystem) -> None:
    gate = asyncio.Event()

    class Busy(Actor):
        async def receive(self, message: Any) -> Any:
            await gate.wait()

    ref = system.spawn(Busy, mailbox_capacity=2)
    for i in range(3):  # one in hand, two queued
        await ref.tell(i)
    await settle()
    blocked = asyncio.create_task(ref.tell("more"))
    await settle()
    assert not blocked.done()
    gate.set()
    await asyncio.wait_for(blocked, 1)


@pytest.mark.parametrize("capacity", [0, -1, 1.5, True])
async def test_mailbox_capacity_must_be_positive_or_none(
    system: ActorSystem, capacity: Any
) -> None:
    with pytest.raises(ValueError, match="mailbox_capacity"):
        system.spawn(Echo, mailbox_capacity=capacity)


async def test_refs_to_the_same_actor_compare_equal(system: ActorSystem) -> None:
    ref = system.spawn(Echo, name="e")
    assert system.ref_for(str(ref.address)) == ref
    assert system.ref_for("e") == ref
    assert hash(system.ref_for(ref.address)) == hash(ref)
    assert ref != system.spawn(Echo)


async def test_actor_context_is_not_available_inside_init(system: ActorSystem) -> None:
    class Eager(Actor):
        def __init__(self) -> None:
            self.context  # noqa: B018

    with pytest.raises(RuntimeError, match="context"):
        system.spawn(Eager)


async def test_actor_context_knows_self_parent_and_system(system: ActorSystem) -> None:
    class Child(Actor):
        async def receive(self, message: Any) -> Any:
            ctx = self.context
            return ctx.self_ref, ctx.parent, ctx.system

    class Parent(Actor):
        async def receive(self, message: Any) -> Any:
            child = self.context.spawn_child(Child)
            return child, await child.ask("who")

    parent = system.spawn(Parent)
    child, (me, my_parent, sys_) = await parent.ask("go")
    assert me == child
    assert my_parent == parent
    assert sys_ is system


async def test_aclose_stops_every_actor_and_its_children() -> None:
    system = ActorSystem(system_id="test", persistence=memory_store())
    await system.start()

    class Parent(Actor):
        async def on_start(self) -> None:
            self.context.spawn_child(Echo)

        async def receive(self, message: Any) -> Any:
            return None

    refs = [system.spawn(Parent) for _ in range(3)]
    await settle()
    assert len(system.list_actors()) == 6
    await system.aclose()
    assert system.list_actors() == ()
    assert not any(r.is_alive() for r in refs)


async def test_an_actor_stuck_in_receive_is_cancelled_after_stop_timeout() -> None:
    system = ActorSystem(system_id="test", persistence=memory_store(), stop_timeout=0.05)
    await system.start()

    class Stuck(Actor):
        async def receive(self, message: Any) -> Any:
            await asyncio.sleep(3600)

    ref = system.spawn(Stuck)
    await ref.tell("hang")
    await settle()
    await system.aclose()
    assert not ref.is_alive()
    stops = [e for e in system.events() if e.event_type == "ActorStopped"]
    assert stops[-1].payload == {"reason": "cancelled"}
    # cancellation is not a failure (0.3.0's loop caught BaseException)
    assert "ActorCrashed" not in [e.event_type for e in system.events()]


async def test_aclose_from_inside_an_actor_is_refused_instead_of_deadlocking(
    system: ActorSystem,
) -> None:
    class Closer(Actor):
        async def receive(self, message: Any) -> Any:
            await self.context.system.aclose()

    with pytest.raises(RuntimeError, match="inside an actor"):
        await system.spawn(Closer, name="c").ask("close", timeout=1)
    assert system.running


async def test_spawning_something_that_is_not_an_actor_is_refused(system: ActorSystem) -> None:
    with pytest.raises(TypeError, match="not an actor"):
        system.spawn(dict)
    assert system.list_actors() == ()
