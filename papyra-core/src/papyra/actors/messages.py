"""Messages the runtime itself delivers to actors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from papyra.actors.ref import ActorRef


@attrs.frozen
class ActorTerminated:
    """Delivered once to every watcher when a watched actor has stopped for good."""

    ref: ActorRef

    @property
    def address(self) -> Any:
        return self.ref.address
