"""Observer hooks of an actor system. They see what happened; they can never break it.

Subclass :class:`SystemHooks` and override what you need. A hook may be a plain or an
``async`` function: an async hook runs as a task the system owns (awaited, with a timeout,
by ``aclose()``). Any exception from a hook is logged on the ``papyra.actors`` logger, counted
in ``system.metrics.hook_errors`` and otherwise ignored.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from papyra.actors.address import ActorAddress
    from papyra.actors.audit import AuditReport
    from papyra.actors.dead_letters import DeadLetter
    from papyra.actors.metrics import SystemMetrics
    from papyra.actors.supervision import Strategy, SupervisorDecision
    from papyra.records import EventRecord
    from papyra.startup import StartupResult

log = logging.getLogger("papyra.actors")


@attrs.frozen(kw_only=True)
class FailureInfo:
    """An actor failure: who, what, and what was decided about it."""

    address: ActorAddress
    error: BaseException
    strategy: Strategy | None = None
    supervisor_decision: SupervisorDecision | None = None


class SystemHooks:
    """No-op hooks; override any of them (sync or async)."""

    def on_event(self, event: EventRecord) -> Any:
        """A lifecycle event (``ActorStarted``, ``ActorCrashed``, ...) was emitted."""
        return None

    def on_dead_letter(self, letter: DeadLetter) -> Any:
        return None

    def on_failure(self, info: FailureInfo) -> Any:
        """An actor failed; called once, after the decision (policy or parent) is known."""
        return None

    def on_audit(self, report: AuditReport) -> Any:
        return None

    def on_startup(self, result: StartupResult) -> Any:
        """The startup check ran (called before ``start()`` raises for a failed check)."""
        return None


class HookRunner:
    """Calls hooks in isolation; owns the tasks of async hooks."""

    def __init__(self, hooks: SystemHooks | Sequence[SystemHooks] | None,
                 metrics: SystemMetrics,
                 on_dead_letter: Callable[[DeadLetter], Any] | None = None) -> None:
        if hooks is None:
            self.hooks: tuple[Any, ...] = ()
        elif isinstance(hooks, Sequence):
            self.hooks = tuple(hooks)
        else:
            self.hooks = (hooks,)
        self.metrics = metrics
        self.on_dead_letter_fn = on_dead_letter
        self.tasks: set[asyncio.Task[Any]] = set()
        # which hook names anyone overrides (skip the dispatch cost otherwise)
        self.active = {
            name for name in ("on_event", "on_dead_letter", "on_failure", "on_audit",
                              "on_startup")
            if any(getattr(type(h), name, None) is not getattr(SystemHooks, name)
                   for h in self.hooks)
        }
        if on_dead_letter is not None:
            self.active.add("on_dead_letter")

    def call(self, name: str, arg: Any) -> None:
        if name not in self.active:
            return
        for h in self.hooks:
            fn = getattr(h, name, None)
            if fn is not None:
                self._invoke(name, fn, arg)
        if name == "on_dead_letter" and self.on_dead_letter_fn is not None:
            self._invoke(name, self.on_dead_letter_fn, arg)

    def _invoke(self, name: str, fn: Callable[[Any], Any], arg: Any) -> None:
        try:
            result = fn(arg)
        except Exception:
            self._failed(name)
            return
        if inspect.isawaitable(result):
            try:
                task = asyncio.ensure_future(self._guard(name, result))
            except RuntimeError:  # no running loop: nothing can await it
                if inspect.iscoroutine(result):
                    result.close()
                return
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _guard(self, name: str, awaitable: Any) -> None:
        try:
            await awaitable
        except Exception:
            self._failed(name)

    def _failed(self, name: str) -> None:
        self.metrics.hook_errors += 1
        log.warning("hook %s raised (ignored)", name, exc_info=True)

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109
        """Wait for pending async hooks, cancelling those still running after ``timeout``."""
        if not self.tasks:
            return
        pending = set(self.tasks)
        _done, still = await asyncio.wait(pending, timeout=timeout)
        for t in still:
            t.cancel()
        if still:
            await asyncio.wait(still, timeout=1.0)
