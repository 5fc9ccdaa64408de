"""Clocks. Record timestamps come from the wall clock (Unix epoch seconds, comparable across
processes and restarts); timeouts and restart windows use a monotonic clock. Tests inject a
:class:`ManualClock` to make both deterministic."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock Unix epoch seconds (record timestamps)."""
        ...

    def monotonic(self) -> float:
        """Monotonic seconds (restart windows, durations)."""
        ...


class SystemClock:
    """``time.time`` and ``time.monotonic``."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that only moves when told to (both readings advance together)."""

    def __init__(self, start: float = 1_763_771_234.0) -> None:
        self._wall = float(start)
        self._mono = 0.0

    def time(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._wall += seconds
        self._mono += seconds


class _FunctionClock:
    """Adapts a wall-clock function (0.3.0's ``time_fn``) to a :class:`Clock`."""

    def __init__(self, fn: Callable[[], float]) -> None:
        self._fn = fn

    def time(self) -> float:
        return float(self._fn())

    def monotonic(self) -> float:
        return time.monotonic()


def as_clock(value: Clock | Callable[[], float] | None) -> Clock:
    if value is None:
        return SystemClock()
    if isinstance(value, Clock):
        return value
    if callable(value):
        return _FunctionClock(value)
    raise TypeError(f"clock must be a Clock or a callable, got {type(value).__name__}")
