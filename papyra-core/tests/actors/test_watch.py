"""watch/unwatch: ActorTerminated is delivered once to each watcher."""

from __future__ import annotations

from typing import Any

from actor_helpers import Echo, settle
from papyra import Actor, ActorRef, ActorSystem, ActorTerminated


class Watcher(Actor):
    def __init__(self) -> None:
        self.terminated: list[ActorRef] = []

    async def receive(self, message: Any) -> Any:
        if isinstance(message, ActorTerminated):
            self.terminated.append(message.ref)
            return None
        op, target = message
        if op == "watch":
            await self.context.watch(target)
        elif op == "unwatch":
            await self.context.unwatch(target)
        return list(self.terminated)


async def test_watcher_receives_actor_terminated_once(system: ActorSystem) -> None:
    target = system.spawn(Echo)
    watcher = system.spawn(Watcher)
    await watcher.ask(("watch", target))
    await watcher.ask(("watch", target))
    await target.stop()
    await settle()
    assert await watcher.ask(("list", None)) == [target]


async def test_unwatch_stops_notifications(system: ActorSystem) -> None:
    target = system.spawn(Echo)
    watcher = system.spawn(Watcher)
    await watcher.ask(("watch", target))
    await watcher.ask(("unwatch", target))
    await target.stop()
    await settle()
    assert await watcher.ask(("list", None)) == []


async def test_watching_an_actor_that_already_stopped_notifies_at_once(
    system: ActorSystem,
) -> None:
    target = system.spawn(Echo)
    await target.stop()
    watcher = system.spawn(Watcher)
    await watcher.ask(("watch", target))
    await settle()
    assert await watcher.ask(("list", None)) == [target]


async def test_crash_that_stops_an_actor_notifies_its_watchers(system: ActorSystem) -> None:
    target = system.spawn(Echo)
    watcher = system.spawn(Watcher)
    await watcher.ask(("watch", target))
    await target.tell(ValueError("bye"))
    await system.wait_for_event("ActorStopped")
    await settle()
    assert await watcher.ask(("list", None)) == [target]
