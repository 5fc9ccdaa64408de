"""What an actor knows about its place in the system."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from papyra.actors.actor import Actor
    from papyra.actors.ref import ActorRef
    from papyra.actors.supervision import SupervisionPolicy
    from papyra.actors.system import ActorSystem


@attrs.frozen
class ActorContext:
    system: ActorSystem
    self_ref: ActorRef
    parent: ActorRef | None = None

    def spawn_child(
        self,
        actor_factory: type[Actor] | Callable[[], Actor],
        *,
        name: str | None = None,
        policy: SupervisionPolicy | None = None,
        mailbox_capacity: int | None = 1024,
    ) -> ActorRef:
        """Spawn a child: stopped (first) when this actor stops, supervised by it."""
        return self.system.spawn(actor_factory, name=name, policy=policy,
                                 mailbox_capacity=mailbox_capacity, parent=self.self_ref)

    async def stop_self(self) -> None:
        """Stop after the current message (does not wait for itself)."""
        await self.system.stop(self.self_ref)

    async def stop(self, ref: ActorRef) -> None:
        await self.system.stop(ref)

    async def watch(self, ref: ActorRef) -> None:
        """Receive ``ActorTerminated(ref)`` once when ``ref`` stops (at once if it already has)."""
        self.system._watch(self.self_ref, ref)

    async def unwatch(self, ref: ActorRef) -> None:
        self.system._unwatch(self.self_ref, ref)

    def ref_for(self, target: Any) -> ActorRef:
        return self.system.ref_for(target)
