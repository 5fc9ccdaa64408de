"""Consumer groups for downstream processors (DESIGN §11): at-least-once delivery of records.

::

    group = ConsumerGroup(store, "indexer", consumer="indexer-1", kinds="event")
    await group.ensure()                      # XGROUP CREATE ... MKSTREAM, BUSYGROUP tolerated
    await group.run(handle, stop=stop_event)  # handle(delivery) -> XACK only after it returned

Each :meth:`ConsumerGroup.fetch` first takes over entries other consumers left idle for longer
than ``min_idle_ms`` (``XAUTOCLAIM``), then drains the consumer's *own* pending entries (read
from id ``0``) before it asks for new ones (``>``, blocking at most ``block_ms``). An entry
delivered ``max_deliveries`` times without an ack is a poison entry: it is copied, every field,
to the ``…:poison`` stream and acknowledged. An entry trimmed (or deleted) while it was pending
is reported through ``on_trimmed`` and acknowledged, never retried forever. When Redis comes
back empty (restart without persistence) the group is recreated and ``on_reset`` is called once
per loss, without spinning. Delivery is at-least-once: use :class:`RecentIds` (or the record
``id`` in your own sink) to drop duplicates.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from papyra.codec import DecodeError
from papyra.errors import ConfigError, StoreNotFoundError, StoreUnavailableError
from papyra.records import Record, StoredRecord, normalize_kinds
from papyra.reports import Anomaly

from papyra_backend_redis.connection import DEFAULT_SOCKET_TIMEOUT, guarded
from papyra_backend_redis.keys import DATA_KINDS, decode_entry, parse_id, text

if TYPE_CHECKING:
    from papyra_backend_redis.store import RedisStore

log = logging.getLogger("papyra.redis.groups")

MAX_BLOCK_MS = int(DEFAULT_SOCKET_TIMEOUT * 1000) - 1000
RUN_BACKOFF_CAP = 5.0


@attrs.frozen(kw_only=True)
class Delivery:
    """One entry handed to a consumer. ``record`` is None when the entry does not decode."""

    stream: str
    kind: str
    entry_id: str
    record: StoredRecord | None
    deliveries: int = 1
    error: str | None = None

    @property
    def record_id(self) -> str | None:
        return self.record.id if self.record is not None else None


@attrs.define
class GroupStats:
    """What happened to this consumer so far (exported by :meth:`ConsumerGroup.stats`)."""

    delivered: int = 0
    acked: int = 0
    claimed: int = 0
    poisoned: int = 0
    trimmed_while_pending: int = 0
    stream_resets: int = 0
    handler_failures: int = 0
    redis_failures: int = 0


def _is_nogroup(exc: BaseException) -> bool:
    return "NOGROUP" in str(exc)


class ConsumerGroup:
    """A consumer in a consumer group over one or more of a system's streams."""

    def __init__(
        self,
        store: RedisStore,
        group: str,
        consumer: str | None = None,
        *,
        kinds: str | Iterable[str] = "event",
        count: int = 100,
        block_ms: int = 1000,
        min_idle_ms: int = 60_000,
        max_deliveries: int = 5,
        start_id: str = "0",
        on_reset: Callable[[str], Any] | None = None,
        on_trimmed: Callable[[str, str], Any] | None = None,
    ) -> None:
        if not group or any(c.isspace() for c in group):
            raise ConfigError(f"bad consumer group name {group!r}")
        if not 0 <= block_ms <= MAX_BLOCK_MS:
            raise ConfigError(f"block_ms must be between 0 and {MAX_BLOCK_MS} (below the "
                              f"socket timeout), got {block_ms}")
        if max_deliveries < 1 or count < 1:
            raise ConfigError("max_deliveries and count must be at least 1")
        self.store = store
        self.group = group
        self.consumer = consumer or socket.gethostname()
        found = normalize_kinds(kinds)
        self.kinds = tuple(k for k in DATA_KINDS if found is None or k in found)
        self.streams = {store.keys.stream(k): k for k in self.kinds}
        self.count = count
        self.block_ms = block_ms
        self.min_idle_ms = min_idle_ms
        self.max_deliveries = max_deliveries
        self.start_id = start_id
        self.on_reset = on_reset
        self.on_trimmed = on_trimmed
        self.stats = GroupStats()
        self._claim_cursor: dict[str, str] = {s: "0-0" for s in self.streams}

    def __repr__(self) -> str:
        return f"<ConsumerGroup {self.group!r} consumer={self.consumer!r} on {self.store.url}>"

    @property
    def _client(self) -> Any:
        return self.store.client

    async def _call(self, doing: str, func: Any, *args: Any, **kwargs: Any) -> Any:
        return await guarded(self.store.settings, doing, lambda: func(*args, **kwargs))

    # ------------------------------------------------------------------ setup

    async def ensure(self) -> list[str]:
        """Create the group on each stream (``MKSTREAM``); an existing group is fine.

        Returns the streams where the group was created now.
        """
        from redis.exceptions import ResponseError

        created: list[str] = []
        for stream in self.streams:
            try:
                await self._client.xgroup_create(stream, self.group, id=self.start_id,
                                                 mkstream=True)
                created.append(stream)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise_unavailable(self.store, exc, "create consumer group")
            except Exception as exc:
                raise_unavailable(self.store, exc, "create consumer group")
        return created

    async def _reset(self, stream: str) -> None:
        """The group vanished (Redis restarted empty, or the key was deleted): recreate it."""
        self.stats.stream_resets += 1
        log.warning("stream_reset: consumer group %r vanished from %s; recreating it",
                    self.group, stream)
        self._claim_cursor = {s: "0-0" for s in self.streams}
        await self.ensure()
        if self.on_reset is not None:
            result = self.on_reset(stream)
            if inspect.isawaitable(result):
                await result

    # ------------------------------------------------------------------ reading

    async def fetch(self, *, block: bool = True) -> list[Delivery]:
        """The next deliveries: reclaimed and own pending entries first, then new ones."""
        result: list[Delivery] = await guarded(self.store.settings, "read from consumer group",
                                               lambda: self._fetch(block))
        return result

    async def _fetch(self, block: bool) -> list[Delivery]:
        from redis.exceptions import ResponseError

        try:
            await self._autoclaim()
            pending = await self._own_pending()
            if pending:
                return pending
            return await self._read_new(block)
        except ResponseError as exc:
            if not _is_nogroup(exc):
                raise
            for stream in self.streams:
                if not await self._group_exists(stream):
                    await self._reset(stream)
            return []

    async def _group_exists(self, stream: str) -> bool:
        from redis.exceptions import ResponseError

        try:
            groups = await self._client.xinfo_groups(stream)
        except ResponseError:
            return False
        return any(text(g.get("name")) == self.group for g in groups)

    async def _autoclaim(self) -> None:
        for stream in self.streams:
            reply = await self._client.xautoclaim(
                stream, self.group, self.consumer, self.min_idle_ms,
                start_id=self._claim_cursor[stream], count=self.count)
            # Redis >= 7 answers [cursor, entries, deleted ids]; 6.2 only [cursor, entries]
            cursor = text(reply[0])
            claimed = reply[1] or []
            deleted = reply[2] if len(reply) > 2 else []
            self._claim_cursor[stream] = cursor
            self.stats.claimed += sum(1 for e in claimed if e and e[0] is not None)
            for eid in deleted or []:
                await self._trimmed(stream, text(eid), ack=False)

    async def _own_pending(self) -> list[Delivery]:
        out: list[Delivery] = []
        for stream, kind in self.streams.items():
            rows = await self._client.xpending_range(stream, self.group, "-", "+", self.count,
                                                     consumername=self.consumer)
            if not rows:
                continue
            counts: dict[str, int] = {}
            for row in rows:
                eid = text(row["message_id"])
                times = int(row["times_delivered"])
                if times >= self.max_deliveries:
                    await self._poison(stream, eid, times)
                else:
                    counts[eid] = times
            if not counts:
                continue
            reply = await self._client.xreadgroup(self.group, self.consumer, {stream: "0"},
                                                  count=self.count)
            for eid, fields in _entries(reply):
                if eid not in counts:
                    continue
                if not fields:
                    await self._trimmed(stream, eid, ack=True)
                    continue
                out.append(_delivery(stream, kind, eid, fields, counts[eid] + 1))
        self.stats.delivered += len(out)
        return out

    async def _read_new(self, block: bool) -> list[Delivery]:
        streams = {s: ">" for s in self.streams}
        reply = await self._client.xreadgroup(
            self.group, self.consumer, streams, count=self.count,
            block=self.block_ms if block and self.block_ms else None)
        out: list[Delivery] = []
        for stream, rows in _by_stream(reply):
            kind = self.streams.get(stream)
            if kind is None:
                continue
            for eid, fields in rows:
                if fields:
                    out.append(_delivery(stream, kind, eid, fields, 1))
        self.stats.delivered += len(out)
        return out

    async def _poison(self, stream: str, entry_id: str, times: int) -> None:
        self.stats.poisoned += 1
        log.warning("poison entry %s in %s (group %r) after %d deliveries: moved to %s",
                    entry_id, stream, self.group, times, self.store.keys.poison)
        await self.store._script("poison")(
            keys=[stream, self.store.keys.poison],
            args=[entry_id, self.group, self.consumer, times, repr(time.time())])

    async def _trimmed(self, stream: str, entry_id: str, *, ack: bool) -> None:
        self.stats.trimmed_while_pending += 1
        log.warning("entry %s of %s was trimmed while pending in group %r; acknowledging it",
                    entry_id, stream, self.group)
        if ack:
            await self._client.xack(stream, self.group, entry_id)
        if self.on_trimmed is not None:
            result = self.on_trimmed(stream, entry_id)
            if inspect.isawaitable(result):
                await result

    # ------------------------------------------------------------------ acknowledging

    async def ack(self, deliveries: Sequence[Delivery]) -> int:
        """``XACK`` the deliveries (call only after they were handled)."""
        by_stream: dict[str, list[str]] = {}
        for d in deliveries:
            by_stream.setdefault(d.stream, []).append(d.entry_id)
        acked = 0
        for stream, ids in by_stream.items():
            acked += int(await self._call("acknowledge", self._client.xack, stream,
                                          self.group, *ids))
        self.stats.acked += acked
        return acked

    async def run(
        self,
        handler: Callable[[Delivery], Awaitable[Any] | Any],
        *,
        stop: asyncio.Event | None = None,
        max_idle_polls: int | None = None,
    ) -> GroupStats:
        """Deliver to ``handler`` until ``stop`` is set; ack each delivery after it succeeded.

        A failing handler leaves its entry pending (retried, then poisoned after
        ``max_deliveries``). Redis failures back off exponentially (bounded) and retry.
        ``max_idle_polls`` ends the loop after that many empty fetches in a row (tests, drains).
        """
        await self._retrying(self.ensure, stop)
        idle = 0
        while stop is None or not stop.is_set():
            batch = await self._retrying(self.fetch, stop)
            if batch is None:
                break
            if not batch:
                idle += 1
                if max_idle_polls is not None and idle >= max_idle_polls:
                    break
                continue
            idle = 0
            done: list[Delivery] = []
            for delivery in batch:
                try:
                    result = handler(delivery)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    self.stats.handler_failures += 1
                    log.exception("handler failed on %s %s (delivery %d); it stays pending",
                                  delivery.stream, delivery.entry_id, delivery.deliveries)
                    continue
                done.append(delivery)
            if done:
                await self._retrying(functools.partial(self.ack, done), stop)
        return self.stats

    async def _retrying(self, func: Callable[[], Awaitable[Any]],
                        stop: asyncio.Event | None) -> Any:
        delay = 0.05
        while True:
            try:
                return await func()
            except StoreUnavailableError as exc:
                self.stats.redis_failures += 1
                log.warning("consumer group %r: %s; retrying in %.2fs", self.group, exc, delay)
            if stop is not None:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                    return None
                except TimeoutError:
                    pass
            else:
                await asyncio.sleep(delay)
            delay = min(delay * 2, RUN_BACKOFF_CAP)

    # ------------------------------------------------------------------ operators

    async def claim(self, min_idle_ms: int | None = None, *, count: int | None = None,
                    entry_ids: Sequence[str] | None = None) -> list[Delivery]:
        """Take over entries idle for at least ``min_idle_ms`` (given ids, or any)."""
        idle = self.min_idle_ms if min_idle_ms is None else min_idle_ms
        out: list[Delivery] = []
        for stream, kind in self.streams.items():
            if entry_ids:
                rows = await self._call("claim", self._client.xclaim, stream, self.group,
                                        self.consumer, idle, list(entry_ids))
            else:
                reply = await self._call("claim", self._client.xautoclaim, stream, self.group,
                                         self.consumer, idle, start_id="0-0",
                                         count=count or self.count)
                rows = reply[1] or []
            for eid, fields in rows:
                if eid is not None and fields:
                    out.append(_delivery(stream, kind, text(eid), fields, 0))
        self.stats.claimed += len(out)
        return out


def _one_kind(kind: str) -> str:
    kinds = normalize_kinds(kind)
    if kinds is None or len(kinds) != 1:
        raise ConfigError(f"expected one record kind, got {kind!r}")
    return next(iter(kinds))


def raise_unavailable(store: RedisStore, exc: BaseException, doing: str) -> None:
    from papyra_backend_redis.connection import translate

    raise translate(exc, store.settings, doing) from None


def _delivery(stream: str, kind: str, eid: Any, fields: Any, deliveries: int) -> Delivery:
    try:
        entry = decode_entry(kind, eid, fields)
    except DecodeError as exc:
        return Delivery(stream=stream, kind=kind, entry_id=text(eid), record=None,
                        deliveries=deliveries, error=f"{exc.kind}: {exc.detail}")
    return Delivery(stream=stream, kind=kind, entry_id=text(eid), record=entry.record,
                    deliveries=deliveries)


def _by_stream(reply: Any) -> list[tuple[str, list[tuple[str, Any]]]]:
    if not reply:
        return []
    items = reply.items() if isinstance(reply, dict) else reply
    out: list[tuple[str, list[tuple[str, Any]]]] = []
    for stream, rows in items:
        if isinstance(rows, list) and rows and isinstance(rows[0], list) and len(rows) == 1 \
                and rows[0] and isinstance(rows[0][0], list | tuple):
            rows = rows[0]  # RESP3 nests once more
        out.append((text(stream), [(text(eid), fields) for eid, fields in rows]))
    return out


def _entries(reply: Any) -> list[tuple[str, Any]]:
    return [row for _, rows in _by_stream(reply) for row in rows]


# ---------------------------------------------------------------------- deduplication


class RecentIds:
    """Remembers the last ``capacity`` record ids: ``first_time(id)`` is False for a repeat.

    At-least-once delivery means a consumer may see a record twice (a crash between the
    handler and the ack). Records carry an ``id`` that survives copies; drop repeats with this,
    or make your sink idempotent on that id (a unique key, ``SET NX``).
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def first_time(self, record_id: str | Record | Delivery | None) -> bool:
        if isinstance(record_id, Delivery):
            record_id = record_id.record_id
        elif record_id is not None and not isinstance(record_id, str):
            record_id = record_id.id
        if record_id is None:
            return True
        if record_id in self._ids:
            self._ids.move_to_end(record_id)
            return False
        self._ids[record_id] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._ids)


async def mark_once(store: RedisStore, namespace: str, record_id: str,
                    ttl_seconds: int = 7 * 86400) -> bool:
    """Cross-process dedup: True the first time ``record_id`` is seen in ``namespace``.

    ``SET {prefix}:{{system_id}}:seen:{namespace}:{id} 1 NX EX ttl``.
    """
    key = f"{store.keys.base}:seen:{namespace}:{record_id}"
    result = await guarded(store.settings, "deduplicate",
                           lambda: store.client.set(key, b"1", nx=True, ex=ttl_seconds))
    return bool(result)


# ---------------------------------------------------------------------- inspection


async def describe_groups(store: RedisStore) -> list[dict[str, Any]]:
    """Every consumer group on the system's streams, with its consumers (``papyra redis
    groups``)."""
    from redis.exceptions import ResponseError

    out: list[dict[str, Any]] = []
    for kind in DATA_KINDS:
        stream = store.keys.stream(kind)
        try:
            groups = await guarded(store.settings, "list groups",
                                   functools.partial(store.client.xinfo_groups, stream))
        except StoreUnavailableError as exc:
            if "no such key" in str(exc).lower():
                continue
            raise
        except ResponseError:
            continue
        for g in groups:
            name = text(g.get("name"))
            consumers = await guarded(
                store.settings, "list consumers",
                functools.partial(store.client.xinfo_consumers, stream, name))
            out.append({
                "stream": stream,
                "kind": kind,
                "group": name,
                "consumers": [
                    {"name": text(c.get("name")), "pending": int(c.get("pending", 0)),
                     "idle_ms": int(c.get("idle", 0))}
                    for c in consumers
                ],
                "pending": int(g.get("pending", 0)),
                "last_delivered_id": text(g.get("last-delivered-id")),
                "lag": g.get("lag"),
            })
    return out


async def pending_entries(store: RedisStore, group: str, *, kind: str = "event",
                          count: int = 100, consumer: str | None = None,
                          min_idle_ms: int | None = None) -> list[dict[str, Any]]:
    """Pending entries of a group (``papyra redis pending``), oldest first."""

    stream = store.keys.stream(_one_kind(kind))
    try:
        rows = await guarded(
            store.settings, "list pending entries",
            lambda: store.client.xpending_range(stream, group, "-", "+", count,
                                                consumername=consumer, idle=min_idle_ms))
    except StoreUnavailableError as exc:
        if "NOGROUP" in str(exc):
            raise StoreNotFoundError(f"list pending entries: no consumer group {group!r} on "
                                     f"{stream}") from None
        raise
    return [
        {"stream": stream, "entry_id": text(r["message_id"]), "consumer": text(r["consumer"]),
         "idle_ms": int(r["time_since_delivered"]), "deliveries": int(r["times_delivered"])}
        for r in rows
    ]


async def group_anomalies(store: RedisStore) -> list[Anomaly]:
    """Consumer-group hygiene for scan, for the groups named in the store's ``groups`` option:
    missing, pointing past the end of their stream, or with pending entries idle longer than
    ``stale_pending_ms``. Without ``groups`` scan does not judge consumer groups (a downstream
    processor being down must not stop the actor system from starting)."""
    from redis.exceptions import ResponseError

    anomalies: list[Anomaly] = []
    expected: dict[str, set[str]] = {}
    for name, kind in store.expected_groups:
        expected.setdefault(kind, set()).add(name)
    for kind in DATA_KINDS:
        if kind not in expected:
            continue
        stream = store.keys.stream(kind)
        try:
            groups = await store.client.xinfo_groups(stream)
            info = await store.client.xinfo_stream(stream)
        except ResponseError:
            groups, info = [], {}
        except Exception as exc:
            raise_unavailable(store, exc, "scan consumer groups")
        names = {text(g.get("name")) for g in groups}
        for missing in sorted(expected[kind] - names):
            anomalies.append(Anomaly(kind="missing_group", stream=stream,
                                     detail=f"consumer group {missing!r} is expected but "
                                            f"missing"))
        last = info.get("last-generated-id") if info else None
        for g in groups:
            name = text(g.get("name"))
            if name not in expected[kind]:
                continue
            delivered = g.get("last-delivered-id")
            if last is not None and delivered is not None and \
                    parse_id(delivered) > parse_id(last):
                anomalies.append(Anomaly(
                    kind="missing_group", stream=stream,
                    detail=f"consumer group {name!r} points past the end of the stream "
                           f"(last-delivered-id {text(delivered)} > last id {text(last)}): "
                           f"it belongs to an older stream; new entries would be skipped"))
            if not int(g.get("pending", 0)):
                continue
            try:
                stale = await store.client.xpending_range(
                    stream, name, "-", "+", 1000, idle=store.stale_pending_ms)
                consumers = await store.client.xinfo_consumers(stream, name)
            except Exception as exc:
                raise_unavailable(store, exc, "scan consumer groups")
            if not stale:
                continue
            oldest = max(int(r["time_since_delivered"]) for r in stale)
            idle = [f"{text(c.get('name'))} idle {int(c.get('idle', 0)) // 1000}s with "
                    f"{int(c.get('pending', 0))} pending"
                    for c in consumers if int(c.get("idle", 0)) >= store.stale_pending_ms]
            more = "+" if len(stale) >= 1000 else ""
            detail = (f"group {name!r}: {len(stale)}{more} pending entries idle longer than "
                      f"{store.stale_pending_ms // 1000}s (oldest {oldest // 1000}s)")
            if idle:
                detail += "; idle consumers: " + ", ".join(idle)
            anomalies.append(Anomaly(kind="stale_pending", stream=stream,
                                     entry_id=text(stale[0]["message_id"]), detail=detail))
    return anomalies
