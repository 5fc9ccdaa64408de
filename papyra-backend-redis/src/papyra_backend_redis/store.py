"""The Redis Streams store (DESIGN §11).

Log order and ``seq``: every append runs one Lua script that takes a contiguous block of seqs
from the system's counter (``INCRBY``) and adds the entries, atomically, in one round trip.
``seq`` is therefore unique and contiguous across the three kind streams, and it is what
``read()`` merges the streams by (entry ids order each stream; across streams their milliseconds
can tie or, after a clock step, disagree with commit order, so they are only the tie-breaker for
legacy entries without a seq, which come first).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import operator
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs
from papyra import codec
from papyra.codec import DecodeError
from papyra.errors import ConfigError, RecordTooLargeError, StoreNotFoundError
from papyra.records import GapRecord, Record, StoredRecord, stamp
from papyra.reports import (
    Anomaly,
    CompactionReport,
    Health,
    RecoveryAction,
    ScanReport,
    StoreStats,
)
from papyra.retention import RetentionPolicy, RetentionWalk
from papyra.store import FSYNC_POLICIES, Capabilities, ReadQuery, Store
from papyra.urls import StoreURL

from papyra_backend_redis import scripts
from papyra_backend_redis.connection import (
    PAPYRA_OPTIONS,
    RedisSettings,
    guarded,
    make_client,
    translate,
)
from papyra_backend_redis.keys import (
    DATA_KINDS,
    Entry,
    Keys,
    decode_entry,
    next_id,
    order_key,
    parse_id,
    text,
)

CHUNK = 1000
TAIL_LIMIT = 10_000  # records after ``after_seq`` worth finding from the newest end
STREAM_INDEX = {"event": 2, "audit": 3, "dead_letter": 4}  # KEYS index in the append script
_KIND = operator.attrgetter("kind")
# what the append script takes per run of records of one kind: stream index, count, the lines
_Run = tuple[int, int, bytes]


@attrs.frozen
class _Cut:
    """Where retention cuts the log (found by one newest-first walk)."""

    refused_key: tuple[int, ...] | None
    oldest_kept: dict[str, str]
    oldest_kept_seq: int | None
    kept: int
    kinds: Counter[str] = attrs.field(factory=Counter)
    oldest_ts: float | None = None
    newest_ts: float | None = None
    oldest_kept_key: tuple[int, ...] | None = None


class RedisStore(Store):
    """Records in Redis Streams, one stream per kind, under one hash tag per system."""

    backend_name = "redis"
    capabilities = Capabilities(multi_process=True, consumer_groups=True)

    def __init__(
        self,
        url: str | None = None,
        *,
        settings: RedisSettings | None = None,
        client: Any = None,
        chunk: int = CHUNK,
        **options: Any,
    ) -> None:
        ours = {k: options.pop(k) for k in list(options) if k in PAPYRA_OPTIONS - {"system_id"}}
        if settings is None:
            if url is None:
                raise ConfigError("a Redis store needs a URL")
            settings = RedisSettings.parse(url, system_id=options.get("system_id"), **ours)
        elif ours:
            settings = RedisSettings.parse(_raw(settings), **ours)
        options.setdefault("system_id", settings.system_id)
        unknown = set(options) - {"system_id", "retention", "metrics", "plugins"}
        if unknown:
            raise ConfigError(f"unknown option(s) for the redis backend: "
                              f"{', '.join(sorted(unknown))}")
        super().__init__(url=settings.redacted, **options)
        self.settings = settings
        self.keys = Keys(settings.prefix, self.system_id)
        opts = settings.options
        self.trim_on_write = _bool(opts.get("trim_on_write", "0"))
        self.stale_pending_ms = _int_option(opts, "stale_pending_ms", 3_600_000)
        mrb = _int_option(opts, "max_record_bytes", 0)
        self.max_record_bytes: int | None = mrb or None
        self.fsync = str(opts.get("fsync", "always"))
        if self.fsync not in FSYNC_POLICIES:
            raise ConfigError(f"fsync must be one of {', '.join(FSYNC_POLICIES)}, "
                              f"got {self.fsync!r}")
        try:
            self.expected_groups: tuple[tuple[str, str], ...] = tuple(
                _group_spec(g) for g in str(opts.get("groups", "")).split(",") if g.strip()
            )
        except ValueError as exc:
            raise ConfigError(f"bad groups option: {exc}") from None
        self.chunk = chunk
        self._client = client
        self._own_client = client is None
        self._scripts: dict[str, Any] = {}
        self._pending: list[tuple[list[_Run], int, asyncio.Future[int]]] = []
        self._drainer: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ plumbing

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_client(self.settings)
        return self._client

    async def _call(self, doing: str, func: Any, *args: Any, **kwargs: Any) -> Any:
        return await guarded(self.settings, doing, lambda: func(*args, **kwargs))

    def _script(self, name: str) -> Any:
        script = self._scripts.get(name)
        if script is None:
            script = self.client.register_script(getattr(scripts, name.upper()))
            self._scripts[name] = script
        return script

    async def _aclose(self) -> None:
        drainer = self._drainer
        if drainer is not None and not drainer.done():
            with contextlib.suppress(Exception):  # failures reached the callers already
                await asyncio.wait_for(asyncio.shield(drainer), timeout=30)
        if self._client is not None and self._own_client:
            with contextlib.suppress(Exception):  # closing a dead connection is no error
                await asyncio.wait_for(self._client.aclose(), timeout=5)

    async def _health(self) -> Health:
        try:
            await asyncio.wait_for(self._call("ping", self.client.ping), timeout=5)
        except Exception as exc:
            return Health(ok=False, reason=str(exc) if str(exc) else "unreachable")
        return Health(ok=True)

    async def exists(self) -> bool:
        keys = (*self.keys.data_streams, self.keys.gaps, self.keys.seq)
        found = await self._call("check the store", self._exists_count, keys)
        return bool(found)

    async def _exists_count(self, keys: Sequence[str]) -> int:
        pipe = self.client.pipeline(transaction=False)
        for k in keys:
            pipe.exists(k)
        return sum(int(n) for n in await pipe.execute())

    # ------------------------------------------------------------------ append

    async def _append(self, records: Sequence[Record]) -> tuple[list[Record], Counter[str]]:
        runs: list[_Run] = []
        sizes: Counter[str] = Counter()
        frame = codec.frame
        limit = self.max_record_bytes
        for kind, group in itertools.groupby(records, _KIND):
            # one script argument per run: the codec's lines (without seq: the seq is a field
            # of its own), each ending with the newline the script splits on (JSON escapes
            # newlines inside values: a line holds no other)
            lines = list(map(frame, codec.encode_bodies(list(group))))
            if limit is not None:
                longest = max(map(len, lines)) - 1
                if longest > limit:
                    raise RecordTooLargeError(
                        f"record of {longest} bytes exceeds max_record_bytes={limit}")
            blob = b"".join(lines)
            runs.append((STREAM_INDEX[kind], len(lines), blob))
            sizes[kind] += len(blob) - len(lines)
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.append((runs, len(records), fut))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        first = await fut
        return list(map(stamp, records, range(first, first + len(records)))), sizes

    async def _drain(self) -> None:
        """Write everything queued, one script call (one round trip) per group of callers."""
        while self._pending:
            batch, self._pending = self._pending, []
            runs = [run for group, _, _ in batch for run in group]
            try:
                first = await self._write(runs, sum(n for _, n, _ in batch))
            except Exception as exc:
                for _, _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            offset = 0
            for _, n, fut in batch:
                if not fut.done():
                    fut.set_result(first + offset)
                offset += n

    def _trim_args(self) -> tuple[str, str]:
        if not self.trim_on_write:
            return "", ""
        maxlen = "" if self.retention.max_records is None else str(self.retention.max_records)
        minid = ""
        if self.retention.max_age_seconds is not None:
            minid = f"{int((time.time() - self.retention.max_age_seconds) * 1000)}-0"
        return maxlen, minid

    async def _write(self, runs: list[_Run], n: int) -> int:
        """Add ``n`` records given as runs of one kind each; returns the first seq taken."""
        maxlen, minid = self._trim_args()
        args: list[Any] = [n, maxlen, minid]
        for run in runs:
            args += run
        keys = [self.keys.seq, *self.keys.data_streams, self.keys.gaps]
        script = self._script("append")
        try:
            return int(await script(keys=keys, args=args))
        except Exception as exc:
            raise translate(exc, self.settings, "append") from None

    # ------------------------------------------------------------------ raw stream access

    async def _range(self, kind: str, lo: str, hi: str, count: int,
                     reverse: bool = False) -> list[tuple[Any, Any]]:
        key = self.keys.stream(kind)
        if reverse:
            rows = await self._call("read", self.client.xrevrange, key, hi, lo, count)
        else:
            rows = await self._call("read", self.client.xrange, key, lo, hi, count)
        return list(rows or [])

    async def _raw_forward(self, kind: str, start: str = "-",
                           chunk: int | None = None) -> AsyncIterator[tuple[str, Any]]:
        chunk = chunk or self.chunk
        lo = start
        while True:
            rows = await self._range(kind, lo, "+", chunk)
            for eid, fields in rows:
                yield text(eid), fields
            if len(rows) < chunk:
                return
            lo = "(" + text(rows[-1][0])

    async def _raw_backward(self, kind: str, first: list[tuple[Any, Any]] | None = None,
                            first_count: int | None = None) -> AsyncIterator[tuple[str, Any]]:
        hi = "+"
        count = first_count or self.chunk
        rows = first
        while True:
            if rows is None:
                rows = await self._range(kind, "-", hi, count, reverse=True)
            for eid, fields in rows:
                yield text(eid), fields
            if len(rows) < count:
                return
            hi = "(" + text(rows[-1][0])
            count = min(max(count * 2, 64), self.chunk * 10)
            rows = None

    async def _decoded(self, kind: str, raw: AsyncIterator[tuple[str, Any]]
                       ) -> AsyncIterator[Entry]:
        async for eid, fields in raw:
            try:
                yield decode_entry(kind, eid, fields)
            except DecodeError:
                continue  # reads skip damaged entries; scan reports them

    async def _load_gaps(self) -> list[Entry]:
        """Gap entries, sorted by seq (repair adds them after the fact, out of id order)."""
        out = [e async for e in self._decoded("gap", self._raw_forward("gap"))]
        out.sort(key=lambda e: e.key)
        return out

    # ------------------------------------------------------------------ reading

    def _walk(self, policy: RetentionPolicy) -> RetentionWalk:
        return RetentionWalk(policy, self.retention_rules())

    async def _read(self, query: ReadQuery) -> AsyncIterator[StoredRecord]:
        if query.limit == 0:
            return
        kinds = [k for k in DATA_KINDS if query.kinds is None or k in query.kinds]
        bounded = query.apply_retention and not self._walk(self.retention).unbounded
        gaps = await self._load_gaps() if query.include_gaps else []
        if query.limit is not None and query.newest_limit:
            picked = await self._newest(query, kinds, gaps, bounded)
            for rec in picked if query.newest_first else reversed(picked):
                yield rec
            return
        if bounded and query.after_seq is not None:
            tail = await self._tail_after(query, kinds, gaps)
            if tail is not None:
                for rec in tail:
                    yield rec
                return
        starts: dict[str, str | None] = {k: "-" for k in kinds}
        floor: tuple[int, ...] | None = None
        if bounded:
            cut = await self._cut(self.retention)
            if cut.kept == 0:
                return
            floor = cut.oldest_kept_key  # nothing older shows, gaps included
            if cut.refused_key is not None:
                for k in kinds:
                    starts[k] = cut.oldest_kept.get(k)
        if query.after_seq is not None:
            for k in kinds:
                if starts[k] is None:
                    continue
                located = await self._locate_after_seq(k, query.after_seq)
                starts[k] = _later(starts[k], located)
        iters: list[AsyncIterator[Entry]] = [
            self._decoded(k, self._raw_forward(k, s)) for k, s in starts.items() if s is not None
        ]
        if query.after_seq is not None:
            gaps = [g for g in gaps if g.seq is not None and g.seq > query.after_seq]
        if gaps:
            iters.append(_aiter(gaps))
        out: list[StoredRecord] = []
        emitted = 0
        async for e in _merge(iters):
            if floor is not None and e.key < floor:
                continue
            if not query.matches(e.record):
                continue
            emitted += 1
            if query.newest_first:
                out.append(e.record)
            else:
                yield e.record
            if query.limit is not None and emitted >= query.limit:
                break
        if query.newest_first:
            for rec in reversed(out):
                yield rec

    async def _tail_after(self, query: ReadQuery, kinds: list[str], gaps: list[Entry]
                          ) -> list[StoredRecord] | None:
        """Records after ``after_seq`` under retention, found by walking back from the newest:
        O(records after the seq), which is what following a log costs (``--follow`` polls).
        None when more than ``TAIL_LIMIT`` records follow (the caller pages forward instead)."""
        assert query.after_seq is not None
        walk = self._walk(self.retention)
        first_count = 64
        prefetched = await self._prefetch_newest(DATA_KINDS, first_count)
        iters: list[AsyncIterator[Entry]] = [
            self._decoded(k, self._raw_backward(k, prefetched[k], first_count))
            for k in DATA_KINDS
        ]
        after = [g for g in gaps if g.seq is not None and g.seq > query.after_seq]
        if after:
            iters.append(_aiter(list(reversed(after))))
        found: list[StoredRecord] = []  # newest first
        held: list[StoredRecord] = []
        seen = 0
        async for e in _merge(iters, reverse=True):
            rec = e.record
            if isinstance(rec, GapRecord):
                if query.matches(rec):
                    held.append(rec)
                continue
            if not walk.keep(e.seq, rec.timestamp, e.size):
                break
            found.extend(held)
            held.clear()
            if e.seq is None or e.seq <= query.after_seq:
                break
            seen += 1
            if seen > TAIL_LIMIT:
                return None
            if rec.kind in kinds and query.matches(rec):
                found.append(rec)
        found.reverse()
        if query.limit is not None:
            found = found[: query.limit]
        if query.newest_first:
            found.reverse()
        return found

    async def _newest(self, query: ReadQuery, kinds: list[str], gaps: list[Entry],
                      bounded: bool) -> list[StoredRecord]:
        """The newest ``limit`` matching records, newest first, in O(limit) when unfiltered."""
        assert query.limit is not None
        walk = self._walk(self.retention) if bounded else None
        source = list(DATA_KINDS) if bounded else kinds
        first_count = min(max(query.limit, 16), self.chunk)
        prefetched = await self._prefetch_newest(source, first_count)
        if len(source) == 1 and not gaps and walk is None:
            return await self._newest_one(query, source[0], prefetched[source[0]], first_count)
        iters: list[AsyncIterator[Entry]] = [
            self._decoded(k, self._raw_backward(k, prefetched[k], first_count)) for k in source
        ]
        if gaps:
            iters.append(_aiter(list(reversed(gaps))))
        picked: list[StoredRecord] = []
        held: list[StoredRecord] = []  # gaps not yet known to lie inside the kept suffix
        async for e in _merge(iters, reverse=True):
            rec = e.record
            if isinstance(rec, GapRecord):
                if query.matches(rec):
                    (held if walk is not None else picked).append(rec)
            else:
                if walk is not None and not walk.keep(e.seq, rec.timestamp, e.size):
                    break
                # under retention a gap shows only when a kept record is older than it
                for gap in held:
                    if len(picked) >= query.limit:
                        break
                    picked.append(gap)
                held.clear()
                if rec.kind in kinds and query.matches(rec) and len(picked) < query.limit:
                    picked.append(rec)
            if len(picked) >= query.limit:
                break
        return picked

    async def _newest_one(self, query: ReadQuery, kind: str, rows: list[tuple[Any, Any]],
                          count: int) -> list[StoredRecord]:
        """``_newest`` for one stream without retention: plain loops over the replies (the
        common ``inspect events --limit N`` and dashboard case, kept free of generator hops)."""
        assert query.limit is not None
        picked: list[StoredRecord] = []
        while True:
            for eid, fields in rows:
                try:
                    rec = decode_entry(kind, eid, fields).record
                except DecodeError:
                    continue
                if query.matches(rec):
                    picked.append(rec)
                    if len(picked) >= query.limit:
                        return picked
            if len(rows) < count:
                return picked
            hi = "(" + text(rows[-1][0])
            count = min(max(count * 2, 64), self.chunk * 10)
            rows = await self._range(kind, "-", hi, count, reverse=True)

    async def _prefetch_newest(self, kinds: Sequence[str], count: int
                               ) -> dict[str, list[tuple[Any, Any]]]:
        if len(kinds) == 1:
            return {kinds[0]: await self._range(kinds[0], "-", "+", count, reverse=True)}

        async def fetch() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            for k in kinds:
                pipe.xrevrange(self.keys.stream(k), "+", "-", count)
            return list(await pipe.execute())

        results = await guarded(self.settings, "read", fetch)
        return {k: list(rows or []) for k, rows in zip(kinds, results, strict=True)}

    async def _locate_after_seq(self, kind: str, after_seq: int) -> str | None:
        """Inclusive XRANGE start of the first entry with seq > ``after_seq`` (None: none)."""
        probe = 64
        rows = await self._range(kind, "-", "+", probe, reverse=True)
        if not rows:
            return None
        newest_first = [(text(eid), _seq_of(fields)) for eid, fields in rows]
        if newest_first[0][1] <= after_seq:
            return None
        for i, (_eid, seq) in enumerate(newest_first):
            if seq <= after_seq:
                return newest_first[i - 1][0]
        if len(rows) < probe:
            return "-"
        # bisect over the milliseconds of the entry ids: O(log range) probes
        head = await self._range(kind, "-", "+", 1)
        if _seq_of(head[0][1]) > after_seq:
            return "-"
        lo = parse_id(head[0][0])[0]
        hi = parse_id(newest_first[-1][0])[0]
        while lo < hi:
            mid = (lo + hi) // 2
            row = await self._range(kind, f"{mid}-0", "+", 1)
            if row and _seq_of(row[0][1]) > after_seq:
                hi = mid
            else:
                lo = mid + 1
        # the boundary is just below lo-0: walk back to the last entry with seq <= after_seq
        hi_id = f"({lo}-0"
        prev: str | None = None
        async for eid, fields in self._raw_backward_from(kind, hi_id):
            if _seq_of(fields) <= after_seq:
                return prev if prev is not None else f"{lo}-0"
            prev = eid
        return "-"

    async def _raw_backward_from(self, kind: str, hi: str) -> AsyncIterator[tuple[str, Any]]:
        while True:
            rows = await self._range(kind, "-", hi, self.chunk, reverse=True)
            for eid, fields in rows:
                yield text(eid), fields
            if len(rows) < self.chunk:
                return
            hi = "(" + text(rows[-1][0])

    async def _cut(self, policy: RetentionPolicy) -> _Cut:
        """One newest-first walk of all data streams: where retention cuts the log."""
        walk = self._walk(policy)
        oldest_kept: dict[str, str] = {}
        oldest_seq: int | None = None
        kept = 0
        refused: tuple[int, ...] | None = None
        kinds: Counter[str] = Counter()
        oldest_ts: float | None = None
        newest_ts: float | None = None
        oldest_key: tuple[int, ...] | None = None
        if walk.unbounded:
            return _Cut(None, oldest_kept, None, 0)
        prefetched = await self._prefetch_newest(DATA_KINDS, min(self.chunk, 256))
        iters = [self._decoded(k, self._raw_backward(k, prefetched[k], min(self.chunk, 256)))
                 for k in DATA_KINDS]
        async for e in _merge(iters, reverse=True):
            assert not isinstance(e.record, GapRecord)
            if not walk.keep(e.seq, e.record.timestamp, e.size):
                refused = e.key
                break
            oldest_kept[e.stream_kind] = e.entry_id
            oldest_key = e.key
            oldest_seq = e.seq if e.seq is not None else oldest_seq
            kept += 1
            kinds[e.stream_kind] += 1
            ts = e.record.timestamp
            oldest_ts = ts if oldest_ts is None else min(oldest_ts, ts)
            newest_ts = ts if newest_ts is None else max(newest_ts, ts)
        return _Cut(refused, oldest_kept, oldest_seq, kept, kinds, oldest_ts, newest_ts,
                    oldest_key)

    # ------------------------------------------------------------------ stats

    async def _heads(self) -> dict[str, tuple[Entry | None, Entry | None]]:
        """First and last decodable entry of each data stream (one round trip)."""
        async def fetch() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            for k in DATA_KINDS:
                pipe.xrange(self.keys.stream(k), "-", "+", 1)
                pipe.xrevrange(self.keys.stream(k), "+", "-", 1)
            return list(await pipe.execute())

        rows = await guarded(self.settings, "read", fetch)
        out: dict[str, tuple[Entry | None, Entry | None]] = {}
        for i, k in enumerate(DATA_KINDS):
            pair: list[Entry | None] = []
            for r in (rows[2 * i], rows[2 * i + 1]):
                try:
                    pair.append(decode_entry(k, r[0][0], r[0][1]) if r else None)
                except DecodeError:
                    pair.append(None)
            out[k] = (pair[0], pair[1])
        return out

    async def _memory(self) -> int:
        async def fetch() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            for key in (*self.keys.data_streams, self.keys.gaps):
                pipe.memory_usage(key, samples=0)
            return list(await pipe.execute())

        sizes = await guarded(self.settings, "measure memory", fetch)
        return sum(int(s or 0) for s in sizes)

    async def _lengths(self) -> dict[str, int]:
        async def fetch() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            for key in self.keys.data_streams:
                pipe.xlen(key)
            return list(await pipe.execute())

        lens = await guarded(self.settings, "count records", fetch)
        return {k: int(n) for k, n in zip(DATA_KINDS, lens, strict=True)}

    async def _stats(self) -> StoreStats:
        heads = await self._heads()
        if not self._walk(self.retention).unbounded:
            cut = await self._cut(self.retention)
            if cut.refused_key is not None:
                tops = [h[1].seq for h in heads.values() if h[1] is not None and h[1].seq]
                return StoreStats(
                    records_by_kind=dict(cut.kinds), bytes=await self._memory(),
                    first_seq=cut.oldest_kept_seq, last_seq=max(tops) if tops else None,
                    oldest_timestamp=cut.oldest_ts, newest_timestamp=cut.newest_ts)
        lengths = await self._lengths()
        firsts = [h[0] for h in heads.values() if h[0] is not None]
        lasts = [h[1] for h in heads.values() if h[1] is not None]
        first_seqs = [e.seq for e in firsts if e.seq is not None]
        last_seqs = [e.seq for e in lasts if e.seq is not None]
        return StoreStats(
            records_by_kind={k: n for k, n in lengths.items() if n},
            bytes=await self._memory(),
            first_seq=min(first_seqs) if first_seqs else None,
            last_seq=max(last_seqs) if last_seqs else None,
            oldest_timestamp=min((e.record.timestamp for e in firsts), default=None),
            newest_timestamp=max((e.record.timestamp for e in lasts), default=None),
        )

    # ------------------------------------------------------------------ scan

    async def _scan(self) -> ScanReport:
        if not await self.exists():
            raise StoreNotFoundError(f"no papyra streams for system {self.system_id!r} at "
                                     f"{self.url}")
        anomalies: list[Anomaly] = []
        records = legacy = size = 0
        first_seq: int | None = None
        last_seq: int | None = None
        heads = await self._heads()
        head_seqs = [h[0].seq for h in heads.values() if h[0] is not None and h[0].seq]
        check_from = max(head_seqs) if head_seqs else None
        expected: int | None = None
        last_in_stream: dict[str, int] = {}
        iters: list[AsyncIterator[_Scanned]] = [self._scan_stream(k) for k in DATA_KINDS]
        iters.append(_aiter([_Scanned("gap", e.entry_id, e.seq, e, None, e.size)
                             for e in await self._load_gaps()]))
        async for item in _merge(iters):
            stream = self.keys.stream(item.kind)
            if item.error is not None:
                anomalies.append(Anomaly(kind=item.error.kind, stream=stream,
                                         entry_id=item.entry_id, length=item.size,
                                         detail=item.error.detail))
            elif item.entry is not None and not isinstance(item.entry.record, GapRecord):
                records += 1
                size += item.size
                if item.entry.record.legacy:
                    legacy += 1
            seq = item.seq
            if seq is None:
                continue
            prev = last_in_stream.get(item.kind)
            if item.kind != "gap" and prev is not None and seq <= prev:
                anomalies.append(Anomaly(kind="seq_regression", stream=stream,
                                         entry_id=item.entry_id, length=item.size,
                                         detail=f"seq {seq} after seq {prev} in this stream"))
                continue
            last_in_stream[item.kind] = seq
            if item.entry is not None and not isinstance(item.entry.record, GapRecord):
                first_seq = seq if first_seq is None else min(first_seq, seq)
                last_seq = seq if last_seq is None else max(last_seq, seq)
            through = seq
            if item.entry is not None and isinstance(item.entry.record, GapRecord):
                through = item.entry.record.through
            if expected is not None and seq > expected and (
                check_from is not None and expected >= check_from
            ):
                anomalies.append(Anomaly(kind="seq_gap", stream=stream, entry_id=item.entry_id,
                                         offset=expected, length=seq - expected,
                                         detail=f"seqs {expected}..{seq - 1} are missing"))
            elif expected is not None and seq < expected and item.kind != "gap":
                anomalies.append(Anomaly(kind="seq_regression", stream=stream,
                                         entry_id=item.entry_id, length=item.size,
                                         detail=f"seq {seq} appears twice"))
            expected = max(expected or 0, through + 1)
        from papyra_backend_redis.groups import group_anomalies

        anomalies.extend(await group_anomalies(self))
        return ScanReport(store=self.url, backend=self.backend_name, records=records - legacy,
                          legacy_records=legacy, bytes=size,
                          anomalies=anomalies,  # type: ignore[arg-type]
                          first_seq=first_seq, last_seq=last_seq)

    async def _scan_stream(self, kind: str) -> AsyncIterator[_Scanned]:
        async for eid, fields in self._raw_forward(kind):
            try:
                entry = decode_entry(kind, eid, fields)
            except DecodeError as exc:
                yield _Scanned(kind, eid, _maybe_seq(fields), None, exc, _data_size(fields))
                continue
            yield _Scanned(kind, eid, entry.seq, entry, None, entry.size)

    # ------------------------------------------------------------------ recovery

    async def _execute(self, plan: list[RecoveryAction], before: ScanReport, *,
                       quarantine_dir: str | None) -> list[RecoveryAction]:
        done: list[RecoveryAction] = []
        dropped_seqs: list[int] = []
        quarantined: set[tuple[str, str]] = set()
        for action in plan:
            a = action.anomaly
            if action.action == "quarantine" and a is not None and a.entry_id and a.stream:
                seq = await self._entry_seq(a.stream, a.entry_id)
                moved = await self._call(
                    "quarantine", self._script("quarantine"),
                    keys=[a.stream, self.keys.quarantine],
                    args=[a.entry_id, a.kind, a.detail, repr(time.time())])
                if int(moved):
                    quarantined.add((a.stream, a.entry_id))
                    if seq is not None and a.kind != "seq_regression":
                        dropped_seqs.append(seq)
                    self.metrics.add("records_quarantined")
                done.append(attrs.evolve(action, to=self.keys.quarantine))
            elif action.action == "drop" and a is not None and a.entry_id and a.stream:
                if (a.stream, a.entry_id) not in quarantined:
                    seq = await self._entry_seq(a.stream, a.entry_id)
                    removed = await self._call("repair", self.client.xdel, a.stream, a.entry_id)
                    # a repeated seq is still held by the first entry: no gap for it
                    if int(removed) and seq is not None and a.kind != "seq_regression":
                        dropped_seqs.append(seq)
                    self.metrics.records_dropped.inc("repair", int(removed))
                done.append(action)
            elif action.action == "gap" and a is not None and a.offset and a.length:
                gap = GapRecord(seq=a.offset, through=a.offset + a.length - 1, reason="repair")
                await self._add_gap(gap)
                done.append(attrs.evolve(action, file=self.keys.gaps,
                                         detail=f"gap {gap.seq}..{gap.through}"))
        for lo, hi in _runs(sorted(set(dropped_seqs))):
            reason = "quarantine" if quarantined else "repair"
            gap = GapRecord(seq=lo, through=hi, reason=reason,
                            quarantine=self.keys.quarantine if quarantined else None)
            await self._add_gap(gap)
            done.append(RecoveryAction(action="gap", file=self.keys.gaps,
                                       detail=f"gap {lo}..{hi}"))
        return done

    async def _entry_seq(self, stream: str, entry_id: str) -> int | None:
        rows = await self._call("read", self.client.xrange, stream, entry_id, entry_id)
        if not rows:
            return None
        return _maybe_seq(rows[0][1])

    async def _add_gap(self, gap: GapRecord) -> None:
        data = codec.encode(gap)[:-1]
        await self._call("write a gap record", self.client.xadd, self.keys.gaps,
                         {"data": data, "seq": str(gap.seq)})

    # ------------------------------------------------------------------ compaction

    async def _compact(self, policy: RetentionPolicy, *, dry_run: bool) -> CompactionReport:
        lengths = await self._lengths()
        before = sum(lengths.values())
        before_bytes = await self._memory()
        heads = await self._heads()
        cut = await self._cut(policy)

        def report(after: int, after_bytes: int, first_kept: int | None = None
                   ) -> CompactionReport:
            return CompactionReport(store=self.url, backend=self.backend_name, dry_run=dry_run,
                                    before_records=before, after_records=after,
                                    before_bytes=before_bytes, after_bytes=after_bytes,
                                    first_kept_seq=first_kept)

        if cut.refused_key is None:
            return report(before, before_bytes)
        if dry_run:
            return report(min(before, cut.kept), before_bytes)
        minids: list[str] = []
        removed_seqs: list[int] = []
        for k in DATA_KINDS:
            first, last = heads[k]
            if k in cut.oldest_kept:
                minids.append(cut.oldest_kept[k])
            elif last is not None:
                minids.append(next_id(last.entry_id))
            else:
                minids.append("")  # empty, or its newest entry is damaged: scan's business
            if first is not None and first.seq is not None and first.key <= cut.refused_key:
                removed_seqs.append(first.seq)
        through: int | None = None
        if cut.oldest_kept_seq is not None:
            through = cut.oldest_kept_seq - 1
        else:
            tops = [h[1].seq for h in heads.values() if h[1] is not None and h[1].seq]
            through = max(tops) if tops else None
        gaps = await self._load_gaps()
        old = [g for g in gaps if through is not None and isinstance(g.record, GapRecord)
               and g.record.through <= through]
        starts = removed_seqs + [g.record.seq for g in old if isinstance(g.record, GapRecord)]
        args: list[Any] = list(minids)
        if through is not None and starts and min(starts) <= through:
            gap = GapRecord(seq=min(starts), through=through, reason="retention")
            args += [codec.encode(gap)[:-1], str(gap.seq), *[g.entry_id for g in old]]
        else:
            args += ["", ""]
        keys = [*self.keys.data_streams, self.keys.gaps]
        await self._call("compact", self._script("compact"), keys=keys, args=args)
        after = sum((await self._lengths()).values())
        return report(after, await self._memory(),
                      first_kept=through + 1 if through is not None else None)


@attrs.frozen
class _Scanned:
    kind: str
    entry_id: str
    seq: int | None
    entry: Entry | None
    error: DecodeError | None
    size: int

    @property
    def key(self) -> tuple[int, ...]:
        return order_key(self.seq, self.entry_id)


def _raw(settings: RedisSettings) -> str:
    # the client URL lost papyra's options and the password is in it; rebuild from both
    from urllib.parse import urlencode, urlsplit, urlunsplit

    parts = urlsplit(settings.client_url)
    query = "&".join(p for p in (parts.query, urlencode(dict(settings.options))) if p)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _int_option(opts: Mapping[str, Any], name: str, default: int) -> int:
    raw = opts.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = -1
    if value < 0:
        raise ConfigError(f"{name} must be a non-negative integer, got {raw!r}")
    return value


def _bool(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _group_spec(spec: str) -> tuple[str, str]:
    """``"indexer"`` (events stream) or ``"indexer:audits"`` → (group, kind)."""
    from papyra.records import normalize_kinds

    name, _, kind = spec.strip().partition(":")
    kinds = normalize_kinds(kind or "event")
    assert kinds is not None
    return name, next(iter(kinds))


def _field(fields: Mapping[Any, Any] | None, name: bytes) -> Any:
    if not fields:
        return None
    if name in fields:
        return fields[name]
    return fields.get(name.decode())


def _maybe_seq(fields: Mapping[Any, Any] | None) -> int | None:
    raw = _field(fields, b"seq")
    try:
        seq = int(raw) if raw is not None else None
    except ValueError:
        return None
    return seq if seq is not None and seq > 0 else None


def _seq_of(fields: Mapping[Any, Any] | None) -> int:
    """For locating: entries without a seq (legacy) count as seq 0."""
    return _maybe_seq(fields) or 0


def _data_size(fields: Mapping[Any, Any] | None) -> int:
    data = _field(fields, b"data")
    return len(data) if isinstance(data, bytes | str) else 0


def _later(a: str | None, b: str | None) -> str | None:
    """The later of two inclusive XRANGE starts (None means: nothing to read)."""
    if a is None or b is None:
        return None
    if a == "-":
        return b
    if b == "-":
        return a
    return a if parse_id(a) >= parse_id(b) else b


def _runs(seqs: Iterable[int]) -> Iterator[tuple[int, int]]:
    run: list[int] = []
    for s in seqs:
        if run and s != run[-1] + 1:
            yield run[0], run[-1]
            run = []
        run.append(s)
    if run:
        yield run[0], run[-1]


async def _aiter(items: Sequence[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


async def _merge(iters: Sequence[AsyncIterator[Any]], reverse: bool = False
                 ) -> AsyncIterator[Any]:
    """Merge iterators already sorted by ``.key`` (descending when ``reverse``)."""
    heads: list[Any] = []
    live: list[AsyncIterator[Any]] = []
    for it in iters:
        try:
            heads.append(await anext(it))
            live.append(it)
        except StopAsyncIteration:
            continue
    while live:
        best = 0
        for i in range(1, len(live)):
            if (heads[i].key > heads[best].key) if reverse else (heads[i].key < heads[best].key):
                best = i
        yield heads[best]
        try:
            heads[best] = await anext(live[best])
        except StopAsyncIteration:
            del heads[best]
            del live[best]


def create(url: StoreURL, **options: Any) -> RedisStore:
    """Factory registered for ``redis://``, ``rediss://`` and ``unix://``."""
    return RedisStore(url.raw, **options)
