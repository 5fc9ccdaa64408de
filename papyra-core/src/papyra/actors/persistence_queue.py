"""The persistence queue: how an actor system's records reach its store.

Actors never wait for the store. Each record (lifecycle event, audit, dead letter) goes into a
bounded in-memory queue; one background task owned by the system drains it in batches into
``store.append`` (one call, so one group commit, per batch).

- **Overflow.** When the queue is full, ``overflow="block"`` makes an async emitter wait up to
  ``block_timeout`` seconds for room, then drops the record; ``overflow="drop"`` drops at once.
  Plain (non-async) emitters such as ``audit()`` cannot wait and drop when the queue is full.
  Every drop is counted in ``metrics.records_dropped["overflow"]``.
- **Failures.** A failing append is retried with exponential backoff (``backoff_initial``
  doubling up to ``backoff_max``) for ``max_attempts`` attempts, then the batch is dropped
  (``records_dropped["failed"]``). Logging on the ``papyra.actors`` logger stays readable
  during an outage: one warning when it starts, an error line per dropped batch at most every
  few seconds (with the running count), a warning when appends succeed again. A record the
  backend refuses as such (cannot be encoded, too large) is isolated and dropped alone
  (``records_dropped["invalid"]``), never retried. A store that reports itself unhealthy (a
  failed fsync) or closed is not retried. Nothing here ever raises into an actor.
- **Close.** ``close()`` stops accepting records, writes everything accepted before it, and
  finishes within ``timeout`` seconds (whatever is left then is dropped and counted as
  ``records_dropped["closed"]``). Records offered after close are dropped the same way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any, Literal

from papyra.actors.metrics import SystemMetrics
from papyra.errors import StoreClosedError, StoreUnhealthyError
from papyra.records import Record

log = logging.getLogger("papyra.actors")

OverflowPolicy = Literal["block", "drop"]
_NON_TRANSIENT = (ValueError, TypeError)
DROP_LOG_INTERVAL = 5.0  # seconds between error lines while a store keeps failing


class PersistenceQueue:
    def __init__(
        self,
        store: Any,
        *,
        metrics: SystemMetrics,
        capacity: int = 10_000,
        overflow: OverflowPolicy = "block",
        block_timeout: float = 1.0,
        batch_size: int = 1000,
        max_attempts: int = 5,
        backoff_initial: float = 0.05,
        backoff_max: float = 2.0,
    ) -> None:
        if overflow not in ("block", "drop"):
            raise ValueError(f"overflow must be 'block' or 'drop', got {overflow!r}")
        if capacity < 1 or batch_size < 1 or max_attempts < 1:
            raise ValueError("capacity, batch_size and max_attempts must be positive")
        self.store = store
        self.metrics = metrics
        self.capacity = capacity
        self.overflow = overflow
        self.block_timeout = block_timeout
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.items: deque[Record] = deque()
        self.accepted = 0
        self.settled = 0
        self.closed = False
        self._wake: asyncio.Future[None] | None = None
        self._space: deque[asyncio.Future[None]] = deque()
        self._flushers: list[tuple[int, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._outage_dropped = 0
        self._last_drop_log = -DROP_LOG_INTERVAL

    def __len__(self) -> int:
        return len(self.items)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="papyra-persistence-writer"
            )

    async def close(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Stop accepting, write what was accepted, stop the writer (within ``timeout``)."""
        self.closed = True
        self._wake_writer()
        for fut in self._space:
            if not fut.done():
                fut.set_result(None)
        task = self._task
        if task is None:
            self._drop(list(self.items), "closed")
            self.items.clear()
            return
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)
        if self.items:
            log.error("persistence queue closed with %d records unwritten (dropped)",
                      len(self.items))
            self._drop(list(self.items), "closed")
            self.items.clear()
        self._settle(0)

    async def flush(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until every record accepted so far is written (or dropped). False on timeout."""
        target = self.accepted
        if self.settled >= target:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flushers.append((target, fut))
        self._wake_writer()
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            return False
        return True

    # ------------------------------------------------------------------ producers

    def put_nowait(self, record: Record) -> bool:
        """Accept ``record`` if there is room; never waits."""
        if self._is_closed():
            self._drop([record], "closed")
            return False
        if len(self.items) >= self.capacity:
            self._drop([record], "overflow")
            return False
        self._accept(record)
        return True

    async def put(self, record: Record) -> bool:
        """Accept ``record``; under ``block`` wait (bounded) for room."""
        if self.closed:
            self._drop([record], "closed")
            return False
        if len(self.items) < self.capacity:
            self._accept(record)
            return True
        if self.overflow == "drop":
            self._drop([record], "overflow")
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.block_timeout
        while len(self.items) >= self.capacity and not self._is_closed():
            left = deadline - loop.time()
            if left <= 0:
                break
            fut: asyncio.Future[None] = loop.create_future()
            self._space.append(fut)
            try:
                await asyncio.wait_for(fut, left)
            except TimeoutError:
                break
        if self._is_closed():
            self._drop([record], "closed")
            return False
        if len(self.items) >= self.capacity:
            self._drop([record], "overflow")
            return False
        self._accept(record)
        return True

    def _is_closed(self) -> bool:
        return self.closed

    def _accept(self, record: Record) -> None:
        self.items.append(record)
        self.accepted += 1
        self.metrics.records_enqueued[record.kind] += 1
        self._wake_writer()

    def _drop(self, records: list[Record], reason: str) -> None:
        if records:
            self.metrics.records_dropped[reason] += len(records)
            if reason == "overflow":
                log.debug("persistence queue full: dropped %d records", len(records))

    def _wake_writer(self) -> None:
        w = self._wake
        if w is not None:
            self._wake = None
            if not w.done():
                w.set_result(None)

    def _settle(self, n: int) -> None:
        self.settled += n
        if self._flushers:
            keep = []
            for target, fut in self._flushers:
                if self.settled >= target or (self.closed and not self.items):
                    if not fut.done():
                        fut.set_result(None)
                else:
                    keep.append((target, fut))
            self._flushers = keep

    # ------------------------------------------------------------------ the writer

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        items = self.items
        while True:
            if not items:
                if self.closed:
                    return
                self._wake = loop.create_future()
                await self._wake
                continue
            n = min(len(items), self.batch_size)
            batch = [items.popleft() for _ in range(n)]
            for _ in range(n):
                if not self._space:
                    break
                fut = self._space.popleft()
                if not fut.done():
                    fut.set_result(None)
            try:
                await self._write(batch)
            finally:
                self._settle(n)

    async def _write(self, batch: list[Record]) -> None:
        delay = self.backoff_initial
        for attempt in range(1, self.max_attempts + 1):
            try:
                await self.store.append(batch)
            except _NON_TRANSIENT as exc:
                await self._isolate(batch, exc)
                return
            except (StoreClosedError, StoreUnhealthyError) as exc:
                self.metrics.persist_failures += 1
                self._dropped_failed(batch, f"store cannot take records ({_describe(exc)})")
                return
            except Exception as exc:
                self.metrics.persist_failures += 1
                if attempt == self.max_attempts:
                    self._dropped_failed(
                        batch, f"append failed {attempt} times ({_describe(exc)})")
                    return
                # one warning per outage; the retries of an ongoing outage are debug noise
                level = logging.DEBUG if self._failing else logging.WARNING
                self._failing = True
                log.log(level, "persistence: append to %s failed (%s); retry %d/%d in %.2fs",
                        self.store.url, _describe(exc), attempt, self.max_attempts - 1, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max)
            else:
                self.metrics.persist_batches += 1
                for rec in batch:
                    self.metrics.records_written[rec.kind] += 1
                if self._failing:
                    self._failing = False
                    log.warning("persistence: appends to %s succeed again (%d records dropped "
                                "during the outage)", self.store.url, self._outage_dropped)
                    self._outage_dropped = 0
                return

    def _dropped_failed(self, batch: list[Record], why: str) -> None:
        """Drop a batch the store would not take; an error log at most every few seconds."""
        self._drop(batch, "failed")
        self._failing = True
        self._outage_dropped += len(batch)
        now = time.monotonic()
        if now - self._last_drop_log >= DROP_LOG_INTERVAL:
            self._last_drop_log = now
            log.error("persistence: %s: %s; dropped %d records (%d so far in this outage)",
                      self.store.url, why, len(batch), self._outage_dropped)
        else:
            log.debug("persistence: %s: %s; dropped %d records", self.store.url, why,
                      len(batch))

    async def _isolate(self, batch: list[Record], exc: BaseException) -> None:
        if len(batch) == 1:
            log.error("persistence: record refused by %s (%s); dropped one %s record",
                      self.store.url, _describe(exc), batch[0].kind)
            self._drop(batch, "invalid")
            return
        for rec in batch:
            await self._write([rec])


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
