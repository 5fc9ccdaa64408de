"""Benchmark of the JSON backend against the machine's raw limits and papyra 0.3.0.

    python bench/bench_json.py [--quick] [--papyra03-python PATH] [--keep-dir]

Every measurement runs in its own subprocess (this script re-invoked with ``--child``) and its
peak RSS is read from the kernel when the child is reaped (``os.wait4``, the per-child form of
``getrusage(RUSAGE_CHILDREN)``). Raw limits are measured in the same run on the same files:

- append: ours = ``JsonStore`` (fsync ``always``) fed by 64 concurrent producers, each
  appending batches of ``--batch`` records; raw = ``orjson.dumps`` + ``os.write`` + ``fsync``
  every 1000 records, one thread; 0.3.0 = ``JsonFilePersistence.record_event`` from 64 tasks.
- newest 100: ours = ``read(limit=100)`` on an N-record log; raw = seek near the end, split,
  ``orjson.loads`` the last 100 lines; 0.3.0 = ``list_events(limit=100)``.
- scan: ours = ``scan()``; raw = read in 1 MiB blocks + ``orjson.loads`` of every line.
- recover: ours = ``recover("repair")`` of a log with 10 bad lines; 0.3.0 = ``recover(REPAIR)``.
- compaction: ours = ``compact(max_records=N/2)``; raw = read + write copy of the file + fsync.

Appends and scans run three times each, ours and raw alternating, and the median run counts
(one slow fsync or a busy moment of a shared machine moves a single run a lot).

Prints a table and ``BENCH {json}`` lines (ratios: ``ratio_raw`` = ours/raw, ``ratio_03`` =
ours/papyra03, both as rates so higher is better).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROUNDS = 3
"""Appends and scans: ours and raw run this many times, alternating; medians are reported."""


# --------------------------------------------------------------------------- children


def _event(i: int) -> Any:
    from papyra.records import EventRecord

    return EventRecord(system_id="bench", actor_address=f"bench:{i % 64}",
                       event_type="ActorCrashed", payload={"error": "ValueError: boom", "n": i})


def child_gen(path: str, n: int, bad: int) -> dict[str, Any]:
    """An n-record v1 log (``bad`` lines damaged, evenly spread, none at the end)."""
    from papyra.filelog.writer import encode_body, sequence_line

    step = n // (bad + 1) if bad else 0
    with open(path, "wb") as f:
        chunk: list[bytes] = []
        for i in range(n):
            line = sequence_line(encode_body(_event(i)), i + 1)
            if bad and i % step == step // 2 and i // step < bad:
                line = line[:40] + b"#" + line[41:]
            chunk.append(line)
            if len(chunk) >= 10_000:
                f.write(b"".join(chunk))
                chunk.clear()
        f.write(b"".join(chunk))
    return {"bytes": os.path.getsize(path)}


def child_gen_legacy(path: str, n: int, bad: int) -> dict[str, Any]:
    """An n-record papyra 0.3.0 (legacy) log for the old version's measurements."""
    step = n // (bad + 1) if bad else 0
    with open(path, "w") as f:
        for i in range(n):
            line = json.dumps({"kind": "event", "system_id": "bench",
                               "actor_address": f"bench:{i % 64}", "event_type": "ActorCrashed",
                               "payload": {"error": "ValueError: boom", "n": i},
                               "timestamp": 1763771234.0 + i}, ensure_ascii=False)
            if bad and i % step == step // 2 and i // step < bad:
                line = line[:40]
            f.write(line + "\n")
    return {"bytes": os.path.getsize(path)}


def _fresh(path: str) -> None:
    if os.path.exists(path):
        os.unlink(path)


def child_append_ours(path: str, n: int, producers: int, batch: int) -> dict[str, Any]:
    from papyra.urls import StoreURL
    from papyra_backend_json import create

    _fresh(path)

    async def main() -> float:
        store = create(StoreURL.parse(f"json://{path}"), fsync="always")
        per = n // producers
        # records are built before timing: what is measured is the backend, not the
        # construction of record objects (uuid4 ids etc.), which the raw loop does not do
        batches = [[[_event(p * per + i + j) for j in range(min(batch, per - i))]
                    for i in range(0, per, batch)] for p in range(producers)]

        async def producer(p: int) -> None:
            for recs in batches[p]:
                await store.append(recs)

        t0 = time.perf_counter()
        await asyncio.gather(*(producer(p) for p in range(producers)))
        await store.aclose()
        elapsed = time.perf_counter() - t0
        return elapsed

    elapsed = asyncio.run(main())
    return {"seconds": elapsed, "records": n}


def child_append_raw(path: str, n: int) -> dict[str, Any]:
    import orjson

    _fresh(path)

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    t0 = time.perf_counter()
    buf: list[bytes] = []
    for i in range(n):
        d = {"v": 1, "seq": i + 1, "id": "0123456789abcdef0123456789abcdef", "kind": "event",
             "timestamp": time.time(), "system_id": "bench", "actor_address": f"bench:{i % 64}",
             "event_type": "ActorCrashed", "payload": {"error": "ValueError: boom", "n": i}}
        buf.append(orjson.dumps(d) + b"\n")
        if len(buf) >= 1000:
            os.write(fd, b"".join(buf))
            os.fsync(fd)
            buf.clear()
    if buf:
        os.write(fd, b"".join(buf))
        os.fsync(fd)
    elapsed = time.perf_counter() - t0
    os.close(fd)
    return {"seconds": elapsed, "records": n}


def _median_runs(fn: Any, runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def child_newest_ours(path: str) -> dict[str, Any]:
    from papyra.urls import StoreURL
    from papyra_backend_json import create

    async def main() -> float:
        store = create(StoreURL.parse(f"json://{path}"))
        times = []
        for _ in range(7):
            t0 = time.perf_counter()
            got = await store.read_all(limit=100)
            times.append(time.perf_counter() - t0)
            assert len(got) == 100
        await store.aclose()
        return statistics.median(times)

    return {"seconds": asyncio.run(main()), "records": 100}


def child_newest_raw(path: str) -> dict[str, Any]:
    import orjson

    def once() -> None:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            back = 1 << 16
            while True:
                f.seek(max(0, size - back))
                lines = f.read().split(b"\n")
                if len(lines) > 102 or back >= size:
                    break
                back *= 2
            got = [orjson.loads(x) for x in lines[-101:-1]]
            assert len(got) == 100

    return {"seconds": _median_runs(once), "records": 100}


def child_scan_ours(path: str) -> dict[str, Any]:
    from papyra.urls import StoreURL
    from papyra_backend_json import create

    async def main() -> tuple[float, int]:
        store = create(StoreURL.parse(f"json://{path}"))
        t0 = time.perf_counter()
        report = await store.scan()
        elapsed = time.perf_counter() - t0
        await store.aclose()
        assert report.clean, report.anomalies[:3]
        return elapsed, report.records

    elapsed, records = asyncio.run(main())
    return {"seconds": elapsed, "records": records}


def child_scan_raw(path: str) -> dict[str, Any]:
    import orjson

    t0 = time.perf_counter()
    n = 0
    carry = b""
    with open(path, "rb") as f:
        while True:
            block = f.read(1 << 20)
            if not block:
                break
            lines = (carry + block).split(b"\n")
            carry = lines.pop()
            for line in lines:
                orjson.loads(line)
                n += 1
    return {"seconds": time.perf_counter() - t0, "records": n}


def child_recover_ours(path: str) -> dict[str, Any]:
    from papyra.urls import StoreURL
    from papyra_backend_json import create

    async def main() -> tuple[float, bool, int]:
        store = create(StoreURL.parse(f"json://{path}"))
        t0 = time.perf_counter()
        report = await store.recover("repair")
        elapsed = time.perf_counter() - t0
        await store.aclose()
        return elapsed, report.clean, len(report.before.anomalies)

    elapsed, clean, found = asyncio.run(main())
    assert clean, "recovery left anomalies"
    assert found == 10, found
    return {"seconds": elapsed, "records": 0}


def child_compact_ours(path: str, keep: int) -> dict[str, Any]:
    from papyra.retention import RetentionPolicy
    from papyra.urls import StoreURL
    from papyra_backend_json import create

    async def main() -> tuple[float, int]:
        store = create(StoreURL.parse(f"json://{path}"))
        t0 = time.perf_counter()
        report = await store.compact(RetentionPolicy(max_records=keep))
        elapsed = time.perf_counter() - t0
        await store.aclose()
        return elapsed, report.before_records

    elapsed, before = asyncio.run(main())
    return {"seconds": elapsed, "records": before}


def child_copy_raw(path: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    n = 0
    with open(path, "rb") as src, open(path + ".copy", "wb") as dst:
        while True:
            block = src.read(1 << 20)
            if not block:
                break
            n += block.count(b"\n")
            dst.write(block)
        dst.flush()
        os.fsync(dst.fileno())
    elapsed = time.perf_counter() - t0
    os.unlink(path + ".copy")
    return {"seconds": elapsed, "records": n}


CHILDREN = {
    "gen": lambda a: child_gen(a[0], int(a[1]), int(a[2])),
    "gen_legacy": lambda a: child_gen_legacy(a[0], int(a[1]), int(a[2])),
    "append_ours": lambda a: child_append_ours(a[0], int(a[1]), int(a[2]), int(a[3])),
    "append_raw": lambda a: child_append_raw(a[0], int(a[1])),
    "newest_ours": lambda a: child_newest_ours(a[0]),
    "newest_raw": lambda a: child_newest_raw(a[0]),
    "scan_ours": lambda a: child_scan_ours(a[0]),
    "scan_raw": lambda a: child_scan_raw(a[0]),
    "recover_ours": lambda a: child_recover_ours(a[0]),
    "compact_ours": lambda a: child_compact_ours(a[0], int(a[1])),
    "copy_raw": lambda a: child_copy_raw(a[0]),
}


# --------------------------------------------------------------------------- papyra 0.3.0

OLD = r'''
import asyncio, json, os, sys, time, statistics
from papyra.persistence.json import JsonFilePersistence
from papyra.persistence.models import (
    PersistedEvent, PersistenceRecoveryConfig, PersistenceRecoveryMode)

what, path = sys.argv[1], sys.argv[2]

async def append(n, producers):
    backend = JsonFilePersistence(path)
    per = n // producers
    async def producer(p):
        for i in range(per):
            await backend.record_event(PersistedEvent(
                system_id="bench", actor_address=f"bench:{p}", event_type="ActorCrashed",
                payload={"error": "ValueError: boom", "n": i}, timestamp=time.time()))
    t0 = time.perf_counter()
    await asyncio.gather(*(producer(p) for p in range(producers)))
    return time.perf_counter() - t0, per * producers

async def newest():
    backend = JsonFilePersistence(path)
    t0 = time.perf_counter()
    got = await backend.list_events(limit=100)
    assert len(got) == 100
    return time.perf_counter() - t0, 100

async def scan():
    backend = JsonFilePersistence(path)
    t0 = time.perf_counter()
    await backend.scan()
    return time.perf_counter() - t0, 0

async def recover():
    backend = JsonFilePersistence(path)
    t0 = time.perf_counter()
    await backend.recover(PersistenceRecoveryConfig(mode=PersistenceRecoveryMode.REPAIR))
    return time.perf_counter() - t0, 0

if what == "append":
    secs, n = asyncio.run(append(int(sys.argv[3]), int(sys.argv[4])))
else:
    secs, n = asyncio.run({"newest": newest, "scan": scan, "recover": recover}[what]())
print(json.dumps({"seconds": secs, "records": n}))
'''


# --------------------------------------------------------------------------- parent


def run_child(cmd: list[str]) -> dict[str, Any]:
    """Run one measurement; returns its JSON result plus ``peak_rss_mb`` of that process."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stderr is not None
    out = proc.stdout.read()
    err = proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"measurement failed: {' '.join(cmd[:4])}...\n{err.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024.0
    return result


def ours(*args: str) -> dict[str, Any]:
    return run_child([sys.executable, str(HERE), "--child", *args])


def old(python: str, *args: str) -> dict[str, Any]:
    return run_child([python, "-c", OLD, *args])


def alternated(
    a: tuple[str, ...], b: tuple[str, ...], rounds: int = ROUNDS
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run two measurements ``rounds`` times, alternating (a load change hits both alike); each
    result is the run with the median time, with the highest peak RSS of its runs."""
    runs_a: list[dict[str, Any]] = []
    runs_b: list[dict[str, Any]] = []
    for _ in range(rounds):
        runs_a.append(ours(*a))
        runs_b.append(ours(*b))
    return _median_run(runs_a), _median_run(runs_b)


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    pick = dict(sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2])
    pick["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    return pick


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--papyra03-python", metavar="PATH",
                        help="interpreter of a venv with papyra==0.3.0 installed")
    parser.add_argument("--batch", type=int, default=100, help="records per append call")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(CHILDREN[args.child[0]](args.child[1:])))
        return

    big = 100_000 if args.quick else 1_000_000
    mid = 10_000 if args.quick else 100_000
    n_append = 20_000 if args.quick else 200_000
    n_append_03 = 2_000 if args.quick else 10_000
    py03 = args.papyra03_python
    work = Path(tempfile.mkdtemp(prefix="papyra-bench-json-"))
    rows: list[dict[str, Any]] = []

    def row(bench: str, metric: str, o: dict[str, Any], raw: dict[str, Any] | None,
            o3: dict[str, Any] | None, unit: str, count: int, note: str = "") -> None:
        def rate(r: dict[str, Any] | None, n: int) -> float | None:
            return None if r is None else n / r["seconds"]

        ours_rate = rate(o, count)
        raw_rate = rate(raw, count)
        n03 = o3.get("_count", count) if o3 else count
        old_rate = rate(o3, n03)
        rows.append({
            "bench": bench, "metric": metric, "ours": ours_rate, "raw": raw_rate,
            "papyra03": old_rate, "unit": unit,
            "ratio_raw": (ours_rate / raw_rate) if ours_rate and raw_rate else None,
            "ratio_03": (ours_rate / old_rate) if ours_rate and old_rate else None,
            "ours_seconds": o["seconds"], "raw_seconds": raw["seconds"] if raw else None,
            "papyra03_seconds": o3["seconds"] if o3 else None,
            "ours_peak_rss_mb": round(o["peak_rss_mb"], 1),
            "raw_peak_rss_mb": round(raw["peak_rss_mb"], 1) if raw else None,
            "note": note,
        })

    try:
        # append
        a_ours, a_raw = alternated(
            ("append_ours", str(work / "append.ndjson"), str(n_append), "64", str(args.batch)),
            ("append_raw", str(work / "append_raw.ndjson"), str(n_append)))
        a_03 = None
        if py03:
            a_03 = old(py03, "append", str(work / "append03.ndjson"), str(n_append_03), "64")
            a_03["_count"] = a_03["records"]
        row("json_append", "append fsync=always, 64 producers", a_ours, a_raw, a_03,
            "records/s", n_append,
            f"batches of {args.batch}; raw fsyncs every 1000; 0.3.0 never fsyncs, "
            f"{n_append_03} records")

        # newest 100 / scan / compaction on the big log
        log = work / "big.ndjson"
        ours("gen", str(log), str(big), "0")
        legacy_mid = work / "legacy_mid.ndjson"
        if py03:
            ours("gen_legacy", str(legacy_mid), str(mid), "0")
        n_ours = ours("newest_ours", str(log))
        n_raw = ours("newest_raw", str(log))
        n_03 = None
        if py03:
            n_03 = old(py03, "newest", str(legacy_mid))
            n_03["_count"] = 100
        row("json_newest", f"newest 100 of {big:,} records", n_ours, n_raw, n_03,
            "reads/s", 1, f"0.3.0 measured on {mid:,} records")
        rows[-1]["ours"] = 1 / n_ours["seconds"]
        rows[-1]["raw"] = 1 / n_raw["seconds"]
        if n_03:
            rows[-1]["papyra03"] = 1 / n_03["seconds"]
            rows[-1]["ratio_03"] = n_03["seconds"] / n_ours["seconds"]
        rows[-1]["ratio_raw"] = n_raw["seconds"] / n_ours["seconds"]

        s_ours, s_raw = alternated(("scan_ours", str(log)), ("scan_raw", str(log)))
        s_03 = None
        if py03:
            s_03 = old(py03, "scan", str(legacy_mid))
            s_03["_count"] = mid
        row("json_scan", f"scan of {big:,} records", s_ours, s_raw, s_03, "records/s", big,
            f"0.3.0 measured on {mid:,} records")

        c_raw = ours("copy_raw", str(log))
        c_ours = ours("compact_ours", str(log), str(big // 2))
        row("json_compact", f"compaction of {big:,} records (keep {big // 2:,})", c_ours,
            c_raw, None, "records/s", big, "raw = read + write copy of the whole file + fsync")
        log.unlink()

        # recover with 10 bad lines
        bad = work / "bad.ndjson"
        ours("gen", str(bad), str(mid), "10")
        r_ours = ours("recover_ours", str(bad))
        r_03 = None
        if py03:
            bad03 = work / "bad03.ndjson"
            ours("gen_legacy", str(bad03), str(mid), "10")
            r_03 = old(py03, "recover", str(bad03))
            r_03["_count"] = 1
        row("json_recover", f"recover (repair) of {mid:,} records with 10 bad lines", r_ours,
            None, r_03, "recoveries/s", 1)
        if r_03:
            rows[-1]["ratio_03"] = r_03["seconds"] / r_ours["seconds"]
    finally:
        if "--keep-dir" not in sys.argv:
            shutil.rmtree(work, ignore_errors=True)

    def fmt(v: float | None, spec: str = ",.0f") -> str:
        return "-" if v is None else format(v, spec)

    print(f"{'metric':<58} {'ours':>12} {'raw':>12} {'0.3.0':>10} {'ours/raw':>9} "
          f"{'ours/0.3':>9} {'RSS MB':>7}")
    for r in rows:
        print(f"{r['metric']:<58} {fmt(r['ours'])!s:>12} {fmt(r['raw'])!s:>12} "
              f"{fmt(r['papyra03'], ',.2f')!s:>10} {fmt(r['ratio_raw'], '.2f')!s:>9} "
              f"{fmt(r['ratio_03'], ',.1f')!s:>9} {r['ours_peak_rss_mb']:>7}")
        raw_s = fmt(r["raw_seconds"], ".4f")
        print(f"  {r['unit']}; seconds ours={r['ours_seconds']:.4f} raw={raw_s} "
              f"0.3.0={fmt(r['papyra03_seconds'], '.3f')}; {r['note']}")
    for r in rows:
        print("BENCH " + json.dumps(r))


if __name__ == "__main__":
    main()
