"""Supervision: what happens when an actor's ``on_start`` or ``receive`` raises.

A parent's ``on_child_failure`` decision wins over the child's own :class:`SupervisionPolicy`.
``RESTART`` is limited to ``max_restarts`` within ``within_seconds`` (a sliding window on the
monotonic clock); past the limit the actor stops. ``IGNORE`` (a parent decision) keeps the
actor and its state and goes on with the next message (0.3.0 stopped it instead).
"""

from __future__ import annotations

import enum
from collections import deque

import attrs


class Strategy(enum.StrEnum):
    STOP = "stop"
    RESTART = "restart"
    ESCALATE = "escalate"


class SupervisorDecision(enum.StrEnum):
    RESTART = "restart"
    STOP = "stop"
    ESCALATE = "escalate"
    IGNORE = "ignore"


def _strategy(value: Strategy | str) -> Strategy:
    return value if isinstance(value, Strategy) else Strategy(str(value).strip().lower())


@attrs.frozen(kw_only=True)
class SupervisionPolicy:
    """An actor's own answer to its failures (when its parent does not decide)."""

    strategy: Strategy = attrs.field(default=Strategy.STOP, converter=_strategy)
    max_restarts: int = attrs.field(default=3, validator=attrs.validators.ge(0))
    within_seconds: float = attrs.field(default=60.0, validator=attrs.validators.gt(0))


class RestartWindow:
    """Restart times inside the sliding window of a policy."""

    __slots__ = ("_times",)

    def __init__(self) -> None:
        self._times: deque[float] = deque()

    def allow(self, policy: SupervisionPolicy, now: float) -> bool:
        """Whether one more restart fits; records it when it does."""
        while self._times and now - self._times[0] > policy.within_seconds:
            self._times.popleft()
        if len(self._times) >= policy.max_restarts:
            return False
        self._times.append(now)
        return True

    def __len__(self) -> int:
        return len(self._times)
