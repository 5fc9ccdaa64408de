"""ask(): replies, timeouts, and the 0.3.0 bug where a timed-out ask crashed its target."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from papyra import Actor, ActorStoppedError, ActorSystem, AskTimeout


class Sleepy(Actor):
    async def receive(self, message: Any) -> Any:
        await asyncio.sleep(message)
        return f"slept {message}"


async def test_timed_out_ask_leaves_the_target_running(system: ActorSystem) -> None:
    ref = system.spawn(Sleepy, name="sleepy")
    with pytest.raises(AskTimeout):
        await ref.ask(0.05, timeout=0.01)
    await asyncio.sleep(0.08)  # the late reply is discarded quietly
    assert ref.is_alive()
    assert await ref.ask(0, timeout=1) == "slept 0"
    assert [e.event_type for e in system.events()] == ["ActorStarted"]
    assert system.metrics.asks_timed_out == 1


async def test_ask_timeout_is_a_timeout_error(system: ActorSystem) -> None:
    ref = system.spawn(Sleepy)
    with pytest.raises(TimeoutError):
        await ref.ask(0.05, timeout=0.01)


async def test_a_timeout_error_raised_by_the_actor_is_not_an_ask_timeout(
    system: ActorSystem,
) -> None:
    class Raiser(Actor):
        async def receive(self, message: Any) -> Any:
            raise TimeoutError("upstream timed out")

    ref = system.spawn(Raiser, name="r")
    with pytest.raises(TimeoutError, match="upstream") as info:
        await ref.ask("x", timeout=5)
    assert not isinstance(info.value, AskTimeout)


async def test_pending_asks_fail_when_the_actor_stops_after_a_crash(
    system: ActorSystem,
) -> None:
    gate = asyncio.Event()

    class Fragile(Actor):
        async def receive(self, message: Any) -> Any:
            await gate.wait()
            raise ValueError("gone")

    ref = system.spawn(Fragile)
    first = asyncio.create_task(ref.ask("a"))
    second = asyncio.create_task(ref.ask("b"))
    await asyncio.sleep(0)
    gate.set()
    with pytest.raises(ValueError, match="gone"):
        await first
    with pytest.raises(ActorStoppedError):
        await second
    assert [d.expects_reply for d in system.dead_letters.messages] == [True]


async def test_an_ask_in_flight_fails_when_its_stuck_actor_is_cancelled() -> None:
    from actor_helpers import memory_store

    async with ActorSystem(system_id="test", persistence=memory_store(),
                           stop_timeout=0.05) as system:
        ref = system.spawn(Sleepy)
        pending = asyncio.create_task(ref.ask(3600))
        await asyncio.sleep(0.01)
        await ref.stop()
        with pytest.raises(ActorStoppedError, match="before replying"):
            await asyncio.wait_for(pending, 1)
