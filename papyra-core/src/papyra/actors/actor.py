"""The base class of actors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from papyra.actors.context import ActorContext
    from papyra.actors.ref import ActorRef
    from papyra.actors.supervision import SupervisorDecision


class Actor:
    """Subclass and implement :meth:`receive`. One message at a time; state needs no locks.

    The instance is rebuilt (by calling the class or factory again) on every restart; the
    mailbox and the address stay.
    """

    _papyra_context: ActorContext | None = None

    async def on_start(self) -> None:
        """Runs before the first message (and again after each restart)."""

    async def receive(self, message: Any) -> Any:
        """Handle one message. The return value is the reply to an ``ask``."""
        raise TypeError(f"{type(self).__name__} does not handle messages (override receive)")

    async def on_stop(self) -> None:
        """Runs once when the actor stops (after its children stopped), and before a restart."""

    async def on_child_failure(self, child: ActorRef, exc: BaseException
                               ) -> SupervisorDecision | None:
        """Decide for a failed child; ``None`` leaves it to the child's own policy."""
        return None

    @property
    def context(self) -> ActorContext:
        ctx = self._papyra_context
        if ctx is None:
            raise RuntimeError("the actor context is not available yet (not inside __init__)")
        return ctx
