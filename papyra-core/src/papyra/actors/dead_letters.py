"""Dead letters: messages told or asked to an actor that is stopped or unknown.

The in-memory box is bounded (``history_limit``); ``count`` keeps the total. Every dead letter
is also persisted as a ``dead_letter`` record with ``expects_reply``.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from papyra.actors.address import ActorAddress


@attrs.frozen
class DeadLetter:
    target: ActorAddress | None
    message: Any
    expects_reply: bool = False


class DeadLetterBox:
    """The newest dead letters (bounded) and how many there were in all."""

    def __init__(self, limit: int | None = 1000) -> None:
        self._messages: deque[DeadLetter] = deque(maxlen=limit)
        self.count = 0

    @property
    def messages(self) -> list[DeadLetter]:
        return list(self._messages)

    def push(self, letter: DeadLetter) -> None:
        self._messages.append(letter)
        self.count += 1

    def __len__(self) -> int:
        return len(self._messages)

    def clear(self) -> None:
        self._messages.clear()
