"""The runtime state of one actor (internal): mailbox, instance, family, lifecycle flags."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from papyra.actors.mailbox import Mailbox
from papyra.actors.supervision import RestartWindow, SupervisionPolicy

if TYPE_CHECKING:
    from papyra.actors.address import ActorAddress
    from papyra.actors.ref import ActorRef
    from papyra.actors.system import ActorSystem


class Ask:
    """An ``ask`` in a mailbox: the message and the future its reply goes to."""

    __slots__ = ("future", "message")

    def __init__(self, message: Any, future: asyncio.Future[Any]) -> None:
        self.message = message
        self.future = future


class SystemMessage:
    """Runtime-internal mailbox items (never shown to actors)."""

    __slots__ = ("error", "kind", "source")

    def __init__(self, kind: str, source: ActorRef | None = None,
                 error: BaseException | None = None) -> None:
        self.kind = kind
        self.source = source
        self.error = error


STOP = SystemMessage("stop")

CURRENT: contextvars.ContextVar[ActorRuntime | None] = contextvars.ContextVar(
    "papyra_current_actor", default=None
)


class ActorRuntime:
    __slots__ = (
        "accepting",
        "addr",
        "address",
        "children",
        "dead",
        "done",
        "factory",
        "inflight",
        "instance",
        "instance_started",
        "mailbox",
        "name",
        "parent",
        "policy",
        "processed",
        "ref",
        "restarting",
        "rid",
        "started",
        "stop_reason",
        "stopping",
        "system",
        "task",
        "watchers",
        "watching",
        "window",
    )

    def __init__(
        self,
        system: ActorSystem,
        rid: int,
        address: ActorAddress,
        name: str | None,
        factory: Callable[[], Any],
        instance: Any,
        policy: SupervisionPolicy,
        parent: ActorRuntime | None,
        mailbox_capacity: int | None,
    ) -> None:
        self.system = system
        self.rid = rid
        self.address = address
        self.addr = str(address)
        self.name = name
        self.factory = factory
        self.instance = instance
        self.policy = policy
        self.parent = parent
        self.mailbox = Mailbox(mailbox_capacity)
        self.children: dict[int, ActorRuntime] = {}
        self.watchers: set[ActorRuntime] = set()
        self.watching: set[ActorRuntime] = set()
        self.window = RestartWindow()
        self.accepting = True
        self.started = False
        self.instance_started = False
        self.stopping = False
        self.restarting = False
        self.dead = False
        self.processed = 0
        self.stop_reason = "stopped"
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task: asyncio.Task[None] | None = None
        self.inflight: asyncio.Future[Any] | None = None  # the ask being handled
        self.ref: ActorRef = None  # type: ignore[assignment]  # set right after construction

    @property
    def alive(self) -> bool:
        return self.started and not self.stopping and not self.dead

    def is_within(self, other: ActorRuntime) -> bool:
        """True if this runtime is ``other`` or one of its descendants."""
        rt: ActorRuntime | None = self
        while rt is not None:
            if rt is other:
                return True
            rt = rt.parent
        return False

    @property
    def actor_type(self) -> str:
        return type(self.instance).__name__
