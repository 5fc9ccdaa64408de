"""References to actors: the only way to talk to one."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from papyra.actors.errors import AskTimeout
from papyra.actors.proxy import ActorProxy
from papyra.actors.runtime import Ask

if TYPE_CHECKING:
    from papyra.actors.address import ActorAddress
    from papyra.actors.runtime import ActorRuntime


class ActorRef:
    """A handle on one actor. Refs to the same actor compare equal (by address)."""

    __slots__ = ("_rt",)

    def __init__(self, runtime: ActorRuntime) -> None:
        self._rt = runtime

    @property
    def address(self) -> ActorAddress:
        return self._rt.address

    @property
    def name(self) -> str | None:
        return self._rt.name

    def is_alive(self) -> bool:
        """Whether the actor accepts messages (spawned, not stopping or stopped)."""
        return self._rt.accepting

    async def tell(self, message: Any) -> None:
        """Put ``message`` in the mailbox (waits while a bounded mailbox is full).

        To a stopped actor: the message becomes a dead letter and
        :class:`~papyra.ActorStoppedError` is raised.
        """
        rt = self._rt
        if rt.accepting:
            mb = rt.mailbox
            items = mb.items
            if len(items) < mb.capacity:
                items.append(message)
                g = mb.getter
                if g is not None:
                    mb.getter = None
                    if not g.done():
                        g.set_result(None)
                return
        await rt.system._send_slow(rt, message, message)

    async def ask(self, message: Any, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """Send ``message`` and wait for the reply (the value ``receive`` returned).

        The actor's exception is re-raised here. After ``timeout`` seconds
        :class:`~papyra.AskTimeout` is raised; the actor is not affected (a late reply is
        discarded).
        """
        rt = self._rt
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        env = Ask(message, fut)
        mb = rt.mailbox
        if rt.accepting and len(mb.items) < mb.capacity:
            mb.items.append(env)
            g = mb.getter
            if g is not None:
                mb.getter = None
                if not g.done():
                    g.set_result(None)
        else:
            await rt.system._send_slow(rt, env, message)
        if timeout is None:
            return await fut
        cm = asyncio.timeout(timeout)
        try:
            async with cm:
                return await fut
        except TimeoutError:
            if cm.expired():
                rt.system.metrics.asks_timed_out += 1
                raise AskTimeout(
                    f"no reply from {rt.addr} within {timeout}s"
                ) from None
            raise

    async def stop(self) -> None:
        """Stop the actor (children first); waits until it has stopped."""
        await self._rt.system.stop(self)

    def proxy(self, *, timeout: float | None = None) -> ActorProxy:
        return ActorProxy(self, timeout)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ActorRef):
            return self._rt.address == other._rt.address
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._rt.address)

    def __repr__(self) -> str:
        name = f" {self._rt.name!r}" if self._rt.name else ""
        return f"<ActorRef {self._rt.addr}{name}>"
