"""Redis Streams backend: pipelined appends and newest-N reads, against redis-py at its best and
against papyra 0.3.0's RedisStreamsPersistence, side by side in one run.

    python bench/bench_redis.py [--quick] [--papyra03-python PATH] [--url redis://...]

Without ``--url`` a throwaway redis-server (no persistence) is started on a free loopback port.

- append: records/s. ``ours`` = ``store.append(batch)`` (encoding, crc, one Lua call per batch
  that also takes the seqs); ``raw`` = redis-py's own pipeline of XADDs with the same bytes
  already encoded (asyncio, and the sync client as a second reference); ``papyra03`` =
  ``RedisStreamsPersistence.record_event`` as 0.3.0 does it (one XADD per record; 100 calls in
  flight at a time, its best).
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


async def ours_append(url: str, recs: list[EventRecord], batch: int) -> float:
    async with RedisStore(url + f"?prefix={prefix()}&system_id=bench") as store:
        await store.append(recs[:batch])  # warm: connection, script load
        t = time.perf_counter()
        for k in range(0, len(recs), batch):
            await store.append(recs[k:k + batch])
        elapsed = time.perf_counter() - t
        await store.client.flushdb()
    return len(recs) / elapsed


async def ours_append_concurrent(url: str, recs: list[EventRecord], tasks: int) -> float:
    """Many tasks appending small batches at once: coalesced into one round trip per group."""
    async with RedisStore(url + f"?prefix={prefix()}&system_id=bench") as store:
        await store.append(recs[:10])
        per = len(recs) // tasks

        async def writer(w: int) -> None:
            mine = recs[w * per:(w + 1) * per]
            for k in range(0, len(mine), 20):
                await store.append(mine[k:k + 20])

        t = time.perf_counter()
        await asyncio.gather(*(writer(w) for w in range(tasks)))
        elapsed = time.perf_counter() - t
        await store.client.flushdb()
    return per * tasks / elapsed


async def raw_append_async(url: str, data: list[bytes], batch: int) -> float:
    client = aredis.Redis.from_url(url)
    key = f"{prefix()}:{{bench}}:events"
    try:
        t = time.perf_counter()
        for k in range(0, len(data), batch):
            pipe = client.pipeline(transaction=False)
            for i, d in enumerate(data[k:k + batch], start=k):
                pipe.xadd(key, {"data": d, "seq": i + 1})
            await pipe.execute()
        elapsed = time.perf_counter() - t
        await client.flushdb()
    finally:
        await client.aclose()
    return len(data) / elapsed


def raw_append_sync(url: str, data: list[bytes], batch: int) -> float:
    client = redis.Redis.from_url(url)
    key = f"{prefix()}:{{bench}}:events"
    try:
        t = time.perf_counter()
        for k in range(0, len(data), batch):
            pipe = client.pipeline(transaction=False)
            for i, d in enumerate(data[k:k + batch], start=k):
                pipe.xadd(key, {"data": d, "seq": i + 1})
            pipe.execute()
        elapsed = time.perf_counter() - t
        client.flushdb()
    finally:
        client.close()
    return len(data) / elapsed


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


async def ours_newest(url: str, reads: int, kinds: str | None) -> float:
    async with RedisStore(url) as store:
        got = await store.read_all(kinds=kinds, limit=100)
        assert len(got) == 100
        assert got[-1].seq == (await store.stats()).last_seq
        t = time.perf_counter()
        for _ in range(reads):
            async for _rec in store.read(kinds=kinds, limit=100):
                pass
        return reads / (time.perf_counter() - t)


async def raw_newest(url: str, key: str, reads: int) -> float:
    client = aredis.Redis.from_url(url)
    try:
        await client.xrevrange(key, count=100)
        t = time.perf_counter()
        for _ in range(reads):
            await client.xrevrange(key, "+", "-", 100)
        return reads / (time.perf_counter() - t)
    finally:
        await client.aclose()


# ------------------------------------------------------------------------------- papyra 0.3.0

P03_APPEND = textwrap.dedent("""
    import asyncio, json, sys, time
    from papyra.persistence.backends.redis import RedisStreamsConfig, RedisStreamsPersistence
    from papyra.persistence.models import PersistedEvent

    async def main(url, n):
        p = RedisStreamsPersistence(RedisStreamsConfig(url=url, prefix=sys.argv[3],
                                                       system_id="bench"))
        evs = [PersistedEvent(system_id="bench", actor_address=f"bench:{i % 64}",
                              event_type="ActorStarted", payload={"i": i, "note": "ok"},
                              timestamp=time.time()) for i in range(n)]
        await p.record_event(evs[0])
        best = 0.0
        for _ in range(2):
            t = time.perf_counter()
            for k in range(0, n, 100):
                await asyncio.gather(*(p.record_event(e) for e in evs[k:k + 100]))
            best = max(best, n / (time.perf_counter() - t))
        seq = 0.0
        t = time.perf_counter()
        for e in evs[: n // 4]:
            await p.record_event(e)
        seq = (n // 4) / (time.perf_counter() - t)
        await p.aclose()
        print(json.dumps({"concurrent": best, "sequential": seq}))

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
""")

P03_READ = textwrap.dedent("""
    import asyncio, json, sys, time
    from papyra.persistence.backends.redis import RedisStreamsConfig, RedisStreamsPersistence

    async def main(url, reads, prefix):
        p = RedisStreamsPersistence(RedisStreamsConfig(url=url, prefix=prefix,
                                                       system_id="bench"))
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
    reads = 300 if args.quick else 2000
    runs = 2 if args.quick else 3
    recs = records(n)
    data = [codec.encode(r)[:-1] for r in recs]
    out: list[dict[str, Any]] = []

    raw_a = raw_s = ours_a = ours_c = 0.0
    for _ in range(runs):  # interleaved, best of each: the machine is shared and noisy
        raw_a = max(raw_a, await raw_append_async(url, data, batch))
        raw_s = max(raw_s, await asyncio.to_thread(raw_append_sync, url, data, batch))
        ours_a = max(ours_a, await ours_append(url, recs, batch))
        ours_c = max(ours_c, await ours_append_concurrent(url, recs, 50))
    p03 = papyra03(args.papyra03_python, P03_APPEND, url, str(min(n, 20_000)), prefix())
    p03_rate = max(p03["concurrent"], p03["sequential"]) if p03 else None  # its best
    out.append(row(f"append batch={batch} vs asyncio pipeline", "append", ours_a, raw_a,
                   p03_rate, "records/s"))
    out.append(row(f"append batch={batch} vs sync pipeline", "append_vs_sync", ours_a, raw_s,
                   p03_rate, "records/s"))
    out.append(row("append 50 tasks x 20 (coalesced)", "append_concurrent", ours_c, raw_a,
                   p03_rate, "records/s"))
    if p03:
        print(f"papyra 0.3.0 appends: {p03['concurrent']:,.0f}/s with 100 in flight, "
              f"{p03['sequential']:,.0f}/s one at a time", file=sys.stderr)

    filled = await fill(url, big)
    pfx = filled.split("prefix=")[1].split("&")[0]
    key = f"{pfx}:{{bench}}:events"
    raw_r = ours_r = ours_all = 0.0
    for _ in range(runs):
        raw_r = max(raw_r, await raw_newest(url, key, reads))
        ours_r = max(ours_r, await ours_newest(filled, reads, "event"))
        ours_all = max(ours_all, await ours_newest(filled, reads, None))
    pfx03 = prefix()
    await fill_papyra03(url, pfx03, big)
    p03r = papyra03(args.papyra03_python, P03_READ, url, str(max(reads // 100, 3)), pfx03)
    if p03r:
        verdict = "the newest" if p03r["last_i"] == big - 1 else "NOT the newest"
        print(f"papyra 0.3.0 list_events(limit=100) returned payload i={p03r['first_i']}.."
              f"{p03r['last_i']} of 0..{big - 1}: {verdict}", file=sys.stderr)
    out.append(row(f"newest-100 of {big:,} (kinds=event)", "newest_100", ours_r, raw_r,
                   p03r["rate"] if p03r else None, "reads/s"))
    out.append(row(f"newest-100 of {big:,} (all kinds)", "newest_100_all_kinds", ours_all,
                   raw_r, p03r["rate"] if p03r else None, "reads/s"))
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
    print(f"redis-py {redis.__version__}, hiredis: "
          f"{'yes' if _has_hiredis() else 'no'}, pid {os.getpid()}", file=sys.stderr)
    emit(rows)


def _has_hiredis() -> bool:
    try:
        import hiredis  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
