"""An actor's mailbox: a FIFO with an optional capacity, made for one consumer.

``capacity=None`` really is unbounded (0.3.0 built a zero-buffer rendezvous channel instead).
Senders wait while a bounded mailbox is full; system messages (stop requests, watch
notifications, escalations) bypass the capacity so they can never be blocked by user traffic.
The fast paths (``offer`` and the consumer's ``items`` check) never suspend.
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from typing import Any

UNBOUNDED = sys.maxsize


class Mailbox:
    __slots__ = ("capacity", "getter", "items", "putters")

    def __init__(self, capacity: int | None = 1024) -> None:
        if capacity is not None and (
            isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1
        ):
            raise ValueError(
                f"mailbox_capacity must be a positive integer or None (unbounded), got {capacity!r}"
            )
        self.capacity: int = UNBOUNDED if capacity is None else capacity
        self.items: deque[Any] = deque()
        self.getter: asyncio.Future[None] | None = None
        self.putters: deque[asyncio.Future[None]] = deque()

    @property
    def bounded(self) -> bool:
        return self.capacity != UNBOUNDED

    def __len__(self) -> int:
        return len(self.items)

    def offer(self, item: Any) -> bool:
        """Enqueue if there is room; never waits."""
        if len(self.items) >= self.capacity:
            return False
        self.items.append(item)
        self.wake_getter()
        return True

    def force(self, item: Any) -> None:
        """Enqueue regardless of capacity (system messages)."""
        self.items.append(item)
        self.wake_getter()

    def wake_getter(self) -> None:
        g = self.getter
        if g is not None:
            self.getter = None
            if not g.done():
                g.set_result(None)

    def wake_putter(self) -> None:
        while self.putters:
            p = self.putters.popleft()
            if not p.done():
                p.set_result(None)
                return

    def wake_all_putters(self) -> None:
        while self.putters:
            p = self.putters.popleft()
            if not p.done():
                p.set_result(None)

    async def wait_not_full(self) -> None:
        """Wait until a slot may be free (the caller re-checks)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.putters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.wake_putter()  # pass our wake-up on
            raise

    async def get(self) -> Any:
        """Next item, waiting while empty (one consumer only)."""
        items = self.items
        while not items:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.getter = fut
            try:
                await fut
            finally:
                if self.getter is fut:
                    self.getter = None
        item = items.popleft()
        if self.putters:
            self.wake_putter()
        return item

    def drain(self) -> list[Any]:
        """Take everything left (used when an actor terminates)."""
        out = list(self.items)
        self.items.clear()
        self.wake_all_putters()
        return out
