"""Redis Streams backend: pipelined appends and newest-N reads, against redis-py at its best and
against papyra 0.3.0's RedisStreamsPersistence, side by side in one run.

    python bench/bench_redis.py [--quick] [--papyra03-python PATH] [--url redis://...]

Without ``--url`` a throwaway redis-server (no persistence) is started on a free loopback port.

- append: records/s. ``ours`` = ``store.append(batch)`` (encoding, crc, one Lua call per batch
  that also takes the seqs); ``raw`` = redis-py's own pipeline of XADDs with the same bytes
  already encoded (asyncio, and the sync client as a second reference); ``papyra03`` =
  ``RedisStreamsPersistence.record_event`` as 0.3.0 does it (one XADD per record), one at a
  time and with 100 calls in flight, whichever is faster; it runs in its own venv, one block per
  round between ours.
- newest-100: reads/s of the newest 100 events of a 200,000-entry stream. ``ours`` =
  ``store.read(kinds="event", limit=100)``; ``raw`` = ``XREVRANGE key + - COUNT 100`` (entries
  not even decoded); ``papyra03`` = ``list_events(limit=100)`` (which returns the *oldest*
  entries: it reads the first 50,000 and keeps the last 100 of those).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aredis
from papyra import EventRecord, codec
from papyra_backend_redis import RedisStore
from papyra_backend_redis.testing import RedisServer


def records(n: int) -> list[EventRecord]:
    now = time.time()
    return [EventRecord(system_id="bench", actor_address=f"bench:{i % 64}",
                        event_type="ActorStarted", payload={"i": i, "note": "ok"},
                        timestamp=now + i * 1e-6) for i in range(n)]


def prefix() -> str:
    return f"bench{uuid.uuid4().hex[:8]}"


# ------------------------------------------------------------------------------- appends
#
# The machine may be shared: each variant runs in short blocks, interleaved round after round,
# and a rate is the total of its blocks, so load changes hit every variant alike.


class Appenders:
    """Every append variant with its client open, each writing one block when called."""

    def __init__(self, url: str, recs: list[EventRecord], batch: int) -> None:
        self.url, self.recs, self.batch = url, recs, batch
        self.data = [codec.encode(r)[:-1] for r in recs]
        self.store = RedisStore(url + f"?prefix={prefix()}&system_id=bench")
        self.aclient = aredis.Redis.from_url(url)
        self.sclient = redis.Redis.from_url(url)
        self.key = f"{prefix()}:{{bench}}:events"
        self.skey = f"{prefix()}:{{bench}}:events"

    async def ours(self, lo: int, hi: int) -> None:
        for k in range(lo, hi, self.batch):
            await self.store.append(self.recs[k:min(k + self.batch, hi)])

    async def ours_concurrent(self, lo: int, hi: int, tasks: int = 50) -> None:
        """Many tasks appending 20 records at a time: coalesced into one call per group."""
        per = (hi - lo) // tasks

        async def writer(w: int) -> None:
            mine = self.recs[lo + w * per:lo + (w + 1) * per]
            for k in range(0, len(mine), 20):
                await self.store.append(mine[k:k + 20])

        await asyncio.gather(*(writer(w) for w in range(tasks)))

    async def raw_async(self, lo: int, hi: int) -> None:
        for k in range(lo, hi, self.batch):
            pipe = self.aclient.pipeline(transaction=False)
            for i in range(k, min(k + self.batch, hi)):
                pipe.xadd(self.key, {"data": self.data[i], "seq": i + 1})
            await pipe.execute()

    def raw_sync(self, lo: int, hi: int) -> None:
        for k in range(lo, hi, self.batch):
            pipe = self.sclient.pipeline(transaction=False)
            for i in range(k, min(k + self.batch, hi)):
                pipe.xadd(self.skey, {"data": self.data[i], "seq": i + 1})
            pipe.execute()

    async def close(self) -> None:
        await self.store.aclose()
        await self.aclient.flushdb()
        await self.aclient.aclose()
        self.sclient.close()


async def measure_appends(url: str, n: int, batch: int, rounds: int,
                          p03_python: str | None) -> dict[str, float]:
    recs = records(n)
    app = Appenders(url, recs, batch)
    block = n // rounds
    spent = dict.fromkeys(("ours", "ours_concurrent", "raw_async", "raw_sync"), 0.0)
    p03_concurrent = p03_sequential = 0.0
    try:
        await app.ours(0, batch)  # warm up: connections, script load
        await app.raw_async(0, batch)
        app.raw_sync(0, batch)
        for r in range(rounds):
            lo, hi = r * block, (r + 1) * block
            for name in spent:
                t = time.perf_counter()
                if name == "raw_sync":
                    app.raw_sync(lo, hi)  # blocking on purpose: it is the sync client
                else:
                    await getattr(app, name)(lo, hi)
                spent[name] += time.perf_counter() - t
            if p03_python:  # papyra 0.3.0 in its own venv: one block per round, its best mode
                got = await asyncio.to_thread(papyra03, p03_python, P03_APPEND, url,
                                              str(block), prefix())
                if got:
                    p03_concurrent += got["concurrent"]
                    p03_sequential += got["sequential"]
    finally:
        await app.close()
    rates = {name: block * rounds / t for name, t in spent.items()}
    if p03_concurrent and p03_sequential:
        rates["papyra03"] = block * rounds / min(p03_concurrent, p03_sequential)
        rates["papyra03_concurrent"] = block * rounds / p03_concurrent
        rates["papyra03_sequential"] = block * rounds / p03_sequential
    return rates


# ------------------------------------------------------------------------------- reads


async def fill(url: str, n: int) -> str:
    url = url + f"?prefix={prefix()}&system_id=bench"
    async with RedisStore(url) as store:
        recs = records(n)
        for k in range(0, n, 2000):
            await store.append(recs[k:k + 2000])
    return url


async def fill_papyra03(url: str, pfx: str, n: int) -> None:
    """The same events in papyra 0.3.0's layout (key without hash tag, JSON without crc)."""
    client = aredis.Redis.from_url(url)
    try:
        now = time.time()
        for k in range(0, n, 2000):
            pipe = client.pipeline(transaction=False)
            for i in range(k, min(n, k + 2000)):
                pipe.xadd(f"{pfx}:bench:events", {"data": json.dumps({
                    "kind": "event", "system_id": "bench", "actor_address": f"bench:{i % 64}",
                    "event_type": "ActorStarted", "payload": {"i": i, "note": "ok"},
                    "timestamp": now})})
            await pipe.execute()
    finally:
        await client.aclose()


async def measure_newest(url: str, filled: str, reads: int, rounds: int) -> dict[str, float]:
    pfx = filled.split("prefix=")[1].split("&")[0]
    key = f"{pfx}:{{bench}}:events"
    client = aredis.Redis.from_url(url)
    store = RedisStore(filled)
    spent = {"raw": 0.0, "ours": 0.0, "ours_all_kinds": 0.0}
    block = max(reads // rounds, 1)
    try:
        got = await store.read_all(kinds="event", limit=100)
        assert len(got) == 100
        assert got[-1].seq == (await store.stats()).last_seq
        await client.xrevrange(key, "+", "-", 100)
        for _ in range(rounds):
            for name in spent:
                t = time.perf_counter()
                for _ in range(block):
                    if name == "raw":
                        await client.xrevrange(key, "+", "-", 100)
                    else:
                        kinds = "event" if name == "ours" else None
                        async for _rec in store.read(kinds=kinds, limit=100):
                            pass
                spent[name] += time.perf_counter() - t
    finally:
        await store.aclose()
        await client.aclose()
    return {name: block * rounds / t for name, t in spent.items()}


# ------------------------------------------------------------------------------- papyra 0.3.0

P03_APPEND = textwrap.dedent("""
    import asyncio, json, sys, time
    from papyra.persistence.backends.redis import RedisStreamsConfig, RedisStreamsPersistence
    from papyra.persistence.models import PersistedEvent

    async def main(url, n, prefix):
        p = RedisStreamsPersistence(RedisStreamsConfig(url=url, prefix=prefix,
                                                       system_id="bench"))
        evs = [PersistedEvent(system_id="bench", actor_address=f"bench:{i % 64}",
                              event_type="ActorStarted", payload={"i": i, "note": "ok"},
                              timestamp=time.time()) for i in range(n)]
        await p.record_event(evs[0])
        t = time.perf_counter()
        for k in range(0, n, 100):
            await asyncio.gather(*(p.record_event(e) for e in evs[k:k + 100]))
        concurrent = time.perf_counter() - t
        t = time.perf_counter()
        for e in evs:
            await p.record_event(e)
        sequential = time.perf_counter() - t
        await p.aclose()
        print(json.dumps({"concurrent": concurrent, "sequential": sequential}))

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
""")

P03_READ = textwrap.dedent("""
    import asyncio, json, sys, time
    from papyra.persistence.backends.redis import RedisStreamsConfig, RedisStreamsPersistence

    async def main(url, reads, prefix):
        p = RedisStreamsPersistence(RedisStreamsConfig(
            url=url + "?socket_timeout=120", prefix=prefix, system_id="bench"))
        got = await p.list_events(limit=100)
        t = time.perf_counter()
        for _ in range(reads):
            await p.list_events(limit=100)
        rate = reads / (time.perf_counter() - t)
        await p.aclose()
        print(json.dumps({"rate": rate, "first_i": got[0].payload.get("i"),
                          "last_i": got[-1].payload.get("i")}))

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
""")


def papyra03(python: str | None, snippet: str, *args: str) -> dict[str, Any] | None:
    if not python:
        return None
    proc = subprocess.run([python, "-c", snippet, *args], capture_output=True, text=True,
                          timeout=900, cwd=tempfile.gettempdir())
    if proc.returncode != 0:
        print(f"papyra 0.3.0 run failed: {proc.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# ------------------------------------------------------------------------------- output


def emit(rows: list[dict[str, Any]]) -> None:
    print(f"{'bench':<40}{'unit':<12}{'ours':>12}{'raw':>12}{'papyra03':>12}"
          f"{'ours/raw':>10}{'ours/03':>10}")
    for r in rows:
        p03 = "-" if r["papyra03"] is None else (
            f"{r['papyra03']:,.0f}" if r["papyra03"] >= 10 else f"{r['papyra03']:.2f}")
        r03 = "-" if r["ratio_03"] is None else f"{r['ratio_03']:.1f}x"
        print(f"{r['bench']:<40}{r['unit']:<12}{r['ours']:>12,.0f}{r['raw']:>12,.0f}{p03:>12}"
              f"{r['ratio_raw']:>9.2f}x{r03:>10}")
    for r in rows:
        print("BENCH " + json.dumps(r))


def row(bench: str, metric: str, ours: float, raw: float, p03: float | None,
        unit: str) -> dict[str, Any]:
    return {"bench": bench, "metric": metric, "ours": round(ours, 1), "raw": round(raw, 1),
            "papyra03": None if p03 is None else round(p03, 3), "unit": unit,
            "ratio_raw": round(ours / raw, 3),
            "ratio_03": None if not p03 else round(ours / p03, 2)}


async def run(args: argparse.Namespace, url: str) -> list[dict[str, Any]]:
    n = 20_000 if args.quick else 100_000
    batch = 500
    big = 20_000 if args.quick else 200_000
    reads = 400 if args.quick else 3000
    rounds = 10 if args.quick else 20
    out: list[dict[str, Any]] = []

    a = await measure_appends(url, n, batch, rounds, args.papyra03_python)
    p03_rate = a.get("papyra03")
    out.append(row(f"append batch={batch} vs asyncio pipeline", "append", a["ours"],
                   a["raw_async"], p03_rate, "records/s"))
    out.append(row(f"append batch={batch} vs sync pipeline", "append_vs_sync", a["ours"],
                   a["raw_sync"], p03_rate, "records/s"))
    out.append(row("append 50 tasks x 20 (coalesced)", "append_concurrent",
                   a["ours_concurrent"], a["raw_async"], p03_rate, "records/s"))
    if p03_rate:
        print(f"papyra 0.3.0 appends: {a['papyra03_concurrent']:,.0f}/s with 100 in flight, "
              f"{a['papyra03_sequential']:,.0f}/s one at a time", file=sys.stderr)

    filled = await fill(url, big)
    r = await measure_newest(url, filled, reads, rounds)
    pfx03 = prefix()
    p03r = None
    if args.papyra03_python:
        await fill_papyra03(url, pfx03, big)
        p03r = papyra03(args.papyra03_python, P03_READ, url, "3", pfx03)
    if p03r:
        verdict = "the newest" if p03r["last_i"] == big - 1 else "NOT the newest"
        print(f"papyra 0.3.0 list_events(limit=100) returned payload i={p03r['first_i']}.."
              f"{p03r['last_i']} of 0..{big - 1}: {verdict}", file=sys.stderr)
    p03_read = p03r["rate"] if p03r else None
    out.append(row(f"newest-100 of {big:,} (kinds=event)", "newest_100", r["ours"], r["raw"],
                   p03_read, "reads/s"))
    out.append(row(f"newest-100 of {big:,} (all kinds)", "newest_100_all_kinds",
                   r["ours_all_kinds"], r["raw"], p03_read, "reads/s"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--papyra03-python", help="python of a venv with papyra[redis]==0.3.0")
    parser.add_argument("--url", help="use this Redis (its db is FLUSHED) instead of a new one")
    args = parser.parse_args()
    server = None
    url = args.url
    if url is None:
        server = RedisServer(Path(tempfile.mkdtemp(prefix="papyra-bench-redis-"))).start()
        url = f"redis://127.0.0.1:{server.port}/0"
    try:
        rows = asyncio.run(run(args, url))
    finally:
        if server is not None:
            server.stop()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"redis-py {redis.__version__}, hiredis: {'yes' if _has_hiredis() else 'no'}, "
          f"{os.cpu_count()} CPUs, load average {load}", file=sys.stderr)
    emit(rows)


def _has_hiredis() -> bool:
    try:
        import hiredis  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
