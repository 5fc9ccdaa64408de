"""Observer hooks see what happened and can never break the runtime."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from actor_helpers import Echo, Tally, memory_store
from papyra import (
    ActorStoppedError,
    ActorSystem,
    AuditReport,
    DeadLetter,
    FailureInfo,
    Strategy,
    SystemHooks,
)
from papyra.records import EventRecord


class Collect(SystemHooks):
    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def on_event(self, event: EventRecord) -> None:
        self.seen.append(("event", event.event_type))

    def on_dead_letter(self, letter: DeadLetter) -> None:
        self.seen.append(("dead_letter", letter.message))

    def on_failure(self, info: FailureInfo) -> None:
        self.seen.append(("failure", (str(info.error), info.strategy,
                                      info.supervisor_decision)))

    def on_audit(self, report: AuditReport) -> None:
        self.seen.append(("audit", report.total_actors))


async def test_hooks_see_events_failures_dead_letters_and_audits() -> None:
    hooks = Collect()
    letters: list[DeadLetter] = []
    async with ActorSystem(system_id="test", persistence=memory_store(), hooks=hooks,
                           on_dead_letter=letters.append) as system:
        ref = system.spawn(Tally)
        await ref.tell("boom")
        await system.wait_for_event("ActorStopped")
        with pytest.raises(ActorStoppedError):
            await ref.tell("late")
        system.audit()
    assert hooks.seen == [
        ("event", "ActorStarted"),
        ("event", "ActorCrashed"),
        ("failure", ("kaboom", Strategy.STOP, None)),
        ("event", "ActorStopped"),
        ("dead_letter", "late"),
        ("audit", 0),
    ]
    assert [d.message for d in letters] == ["late"]


class Exploding(SystemHooks):
    def on_event(self, event: EventRecord) -> None:
        raise RuntimeError("hook bug")

    def on_failure(self, info: FailureInfo) -> None:
        raise RuntimeError("hook bug")

    async def on_audit(self, report: AuditReport) -> None:
        raise RuntimeError("async hook bug")

    def on_dead_letter(self, letter: DeadLetter) -> Any:
        raise KeyError("hook bug")


async def test_raising_hooks_never_break_the_runtime(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="papyra.actors")
    async with ActorSystem(system_id="test", persistence=memory_store(),
                           hooks=[Exploding(), Collect()]) as system:
        ref = system.spawn(Echo, name="e")
        with pytest.raises(ValueError, match="x"):
            await ref.ask(ValueError("x"))
        assert await ref.ask("ok") == "ok"
        system.audit()
        await asyncio.sleep(0)
        other = system.spawn(Echo)
        await other.stop()
        with pytest.raises(ActorStoppedError):
            await other.tell("late")
    assert system.metrics.hook_errors >= 6
    assert any("hook" in r.getMessage() for r in caplog.records)


async def test_async_hooks_run_as_owned_tasks_and_finish_before_close_returns() -> None:
    done: list[str] = []

    class Slow(SystemHooks):
        async def on_event(self, event: EventRecord) -> None:
            await asyncio.sleep(0.01)
            done.append(event.event_type)

    async with ActorSystem(system_id="test", persistence=memory_store(),
                           hooks=Slow()) as system:
        system.spawn(Echo)
    assert sorted(done) == ["ActorStarted", "ActorStopped"]
