"""Supervision: policies, restart windows, parent decisions (0.3.0 behaviours and fixes)."""

from __future__ import annotations

from typing import Any

import pytest
from actor_helpers import Echo, Tally, settle
from papyra import (
    Actor,
    ActorRef,
    ActorStoppedError,
    ActorSystem,
    ManualClock,
    Strategy,
    SupervisionPolicy,
    SupervisorDecision,
)
from papyra.backends.memory import MemoryStore


def types(system: ActorSystem, address: str | None = None) -> list[str]:
    return [e.event_type for e in system.events()
            if address is None or e.actor_address == address]


async def test_named_actor_restarts_by_default_keeping_its_mailbox_and_address(
    system: ActorSystem,
) -> None:
    ref = system.spawn(Tally, name="tally")
    await ref.tell("x")
    await ref.tell("boom")
    await ref.tell("y")  # queued behind the failure: survives the restart
    assert await ref.ask("get") == 1  # fresh instance counted only "y"
    assert ref.is_alive()
    assert system.ref_for("tally") == ref
    assert types(system, str(ref.address)) == [
        "ActorStarted", "ActorCrashed", "ActorRestarted"]
    crash = system.events()[1]
    assert crash.payload == {"error": "ValueError: kaboom", "reason": "ValueError: kaboom"}


async def test_unnamed_actor_stops_on_failure_by_default(system: ActorSystem) -> None:
    ref = system.spawn(Tally)
    await ref.tell("boom")
    await system.wait_for_event("ActorStopped")
    assert not ref.is_alive()
    with pytest.raises(ActorStoppedError):
        await ref.tell("x")
    stop = system.events()[-1]
    assert stop.payload["reason"] == "stopped after failure: ValueError: kaboom"


async def test_restart_limit_within_the_window_stops_the_actor(store: MemoryStore,
                                                             clock: ManualClock) -> None:
    async with ActorSystem(system_id="test", persistence=store, clock=clock) as system:
        policy = SupervisionPolicy(strategy=Strategy.RESTART, max_restarts=2, within_seconds=10)
        ref = system.spawn(Tally, policy=policy)
        for _ in range(3):
            await ref.tell("boom")
        await system.wait_for_event("ActorStopped")
        assert types(system).count("ActorRestarted") == 2
        assert "restart limit exceeded (2 in 10s)" in system.events()[-1].payload["reason"]


async def test_restart_window_slides_with_the_clock(store: MemoryStore,
                                                  clock: ManualClock) -> None:
    async with ActorSystem(system_id="test", persistence=store, clock=clock) as system:
        policy = SupervisionPolicy(strategy="restart", max_restarts=1, within_seconds=5)
        ref = system.spawn(Tally, policy=policy)
        for _ in range(4):
            await ref.tell("boom")
            assert await ref.ask("get") == 0
            clock.advance(6)
        assert ref.is_alive()
        assert types(system).count("ActorRestarted") == 4


async def test_parent_decision_wins_over_the_child_policy(system: ActorSystem) -> None:
    seen: list[tuple[ActorRef, str]] = []

    class Parent(Actor):
        async def on_start(self) -> None:
            self.child = self.context.spawn_child(
                Tally, policy=SupervisionPolicy(strategy=Strategy.STOP))

        async def receive(self, message: Any) -> Any:
            return self.child

        async def on_child_failure(self, child: ActorRef, exc: BaseException
                                   ) -> SupervisorDecision | None:
            seen.append((child, str(exc)))
            return SupervisorDecision.RESTART

    parent = system.spawn(Parent)
    child = await parent.ask("child")
    await child.tell("boom")
    assert await child.ask("get") == 0
    assert child.is_alive()
    assert seen == [(child, "kaboom")]


async def test_ignore_decision_keeps_the_actor_and_its_state(system: ActorSystem) -> None:
    """0.3.0 implemented IGNORE as stop."""

    class Parent(Actor):
        async def on_start(self) -> None:
            self.child = self.context.spawn_child(Tally)

        async def receive(self, message: Any) -> Any:
            return self.child

        async def on_child_failure(self, child: ActorRef, exc: BaseException
                                   ) -> SupervisorDecision:
            return SupervisorDecision.IGNORE

    child = await system.spawn(Parent).ask("child")
    await child.tell("x")
    await child.tell("boom")
    await child.tell("y")
    assert await child.ask("get") == 2
    assert "ActorRestarted" not in types(system)


async def test_escalate_hands_the_failure_to_the_parent(system: ActorSystem) -> None:
    class Parent(Actor):
        async def on_start(self) -> None:
            self.child = self.context.spawn_child(
                Tally, policy=SupervisionPolicy(strategy=Strategy.ESCALATE))

        async def receive(self, message: Any) -> Any:
            return self.child

    parent = system.spawn(Parent, name="parent")  # named: restarts
    child = await parent.ask("child")
    await child.tell("boom")
    await system.wait_for_event(
        lambda e: e.event_type == "ActorRestarted" and e.actor_address == str(parent.address))
    assert not child.is_alive()
    new_child = await parent.ask("child")
    assert new_child != child
    assert new_child.is_alive()
    crashes = [e for e in system.events() if e.event_type == "ActorCrashed"]
    assert [c.actor_address for c in crashes] == [str(child.address), str(parent.address)]


async def test_on_start_failure_reports_the_original_exception(system: ActorSystem) -> None:
    """0.3.0 replaced it with RuntimeError('actor.on_start() failed')."""

    class Broken(Actor):
        async def on_start(self) -> None:
            raise ConnectionError("database down")

    ref = system.spawn(Broken)
    await system.wait_for_event("ActorStopped")
    assert not ref.is_alive()
    assert types(system) == ["ActorCrashed", "ActorStopped"]
    assert system.events()[0].payload["error"] == "ConnectionError: database down"


async def test_restart_stops_the_children_of_the_restarted_actor(system: ActorSystem) -> None:
    class Parent(Actor):
        async def on_start(self) -> None:
            self.child = self.context.spawn_child(Echo)

        async def receive(self, message: Any) -> Any:
            if message == "boom":
                raise ValueError("parent failed")
            return self.child

    parent = system.spawn(Parent, name="p")
    first = await parent.ask("child")
    await parent.tell("boom")
    second = await parent.ask("child")
    assert not first.is_alive()
    assert second.is_alive()
    assert second != first


async def test_failure_in_on_child_failure_falls_back_to_the_child_policy(
    system: ActorSystem,
) -> None:
    class Parent(Actor):
        async def on_start(self) -> None:
            self.child = self.context.spawn_child(
                Tally, policy=SupervisionPolicy(strategy="restart"))

        async def receive(self, message: Any) -> Any:
            return self.child

        async def on_child_failure(self, child: ActorRef, exc: BaseException) -> None:
            raise RuntimeError("supervisor bug")

    child = await system.spawn(Parent).ask("child")
    await child.tell("boom")
    assert await child.ask("get") == 0
    await settle()
    assert child.is_alive()
