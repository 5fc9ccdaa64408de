"""Errors of the actor runtime."""

from __future__ import annotations

from papyra.errors import PapyraError


class ActorStoppedError(PapyraError):
    """The actor (or the whole system) is not running: the message became a dead letter.

    Named so it does not clash with the ``ActorStopped`` event type.
    """


class AskTimeout(PapyraError, TimeoutError):
    """No reply to an ``ask`` in time. The target actor is not affected."""
