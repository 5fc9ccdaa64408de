"""Rotation backend: appends, scan, newest-N reads and append latency across rotations.

    python bench/bench_rotation.py [--quick] [--papyra03-python PATH]

Side by side in one run, on the same records:

- ``ours``: the rotation store (segments of ``--segment-bytes``, fsync ``always``, group commit);
- ``raw``: the machine's limit for the same work (pre-encoded lines, one ``os.write`` + one
  ``fsync`` per batch into one file; for reads, plain line splitting of the same bytes);
- ``json``: the JSON backend (one file) doing the same work, to show that segmenting costs
  nothing (issue 4: appends within 10% of the JSON backend; scan and newest-N as fast as on one
  file);
- ``papyra03``: papyra 0.3.0's ``RotatingFilePersistence`` (needs ``--papyra03-python``), on
  4,000 records in about as many segments: append, ``scan()`` and ``list_events(limit=100)``
  rates. It reads the whole log for the newest 100, so on 10x fewer records its newest-100
  rate is flattered about 10x.

Append rates are the median of 9 rounds that alternate ours / json / raw; scan and newest-100
times are the medians of 21 and 301 rounds that alternate ours / json (and which goes
first).

Latency: single-record appends; the p99 of the appends that rotated a segment against the p99
of all the others (issue 4: within 2x). The appends right after a rotation (which wait for the
writer thread to reserve the next segment) are reported too, as ``after_ms``; they are part of
"the others".

Prints a table and one ``BENCH {json}`` line per metric on stdout.
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

from papyra import codec
from papyra.records import EventRecord, Record
from papyra_backend_json.store import JsonStore
from papyra_backend_rotation import RotationStore

SCAN_ROUNDS = 21
NEWEST_ROUNDS = 301
P03_RECORDS = 4_000
LAT_ROTATIONS = 150
APPEND_ROUNDS = 9


def make_records(n: int) -> list[Record]:
    base = 1_763_771_234.0
    return [EventRecord(system_id="orders", actor_address=f"orders:{i % 50}",
                        event_type=("ActorStarted", "ActorCrashed", "ActorStopped")[i % 3],
                        payload={"error": "ValueError: boom", "attempt": i % 5,
                                 "reason": "supervisor restarted the actor"},
                        timestamp=base + i * 0.001) for i in range(n)]


def emit(metric: str, ours: float, raw: float | None, p03: float | None, unit: str,
         **extra: Any) -> dict[str, Any]:
    row = {"bench": "rotation", "metric": metric, "ours": ours, "raw": raw, "papyra03": p03,
           "unit": unit,
           "ratio_raw": (ours / raw) if raw else None,
           "ratio_03": (ours / p03) if p03 else None, **extra}
    print("BENCH " + json.dumps(row), flush=True)
    return row


async def append_rate(store: Any, records: list[Record], batch: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(records), batch):
        await store.append(records[i:i + batch])
    await store.aclose()
    return len(records) / (time.perf_counter() - start)


def raw_append_rate(path: Path, records: list[Record], batch: int) -> float:
    lines = [codec.encode(r, i + 1) for i, r in enumerate(records)]
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    start = time.perf_counter()
    try:
        for i in range(0, len(lines), batch):
            os.write(fd, b"".join(lines[i:i + batch]))
            os.fsync(fd)
    finally:
        os.close(fd)
    return len(lines) / (time.perf_counter() - start)


def raw_scan_rate(path: Path) -> float:
    start = time.perf_counter()
    n = 0
    with open(path, "rb") as f:
        for line in f:
            codec.decode(line.rstrip(b"\n"))
            n += 1
    return n / (time.perf_counter() - start)


def p03_rates(python: str, directory: Path, n: int, segment_bytes: int) -> dict[str, float]:
    """papyra 0.3.0's rotating backend on ``n`` records: append, scan and newest-100 rates
    (records/s); empty when its run fails."""
    directory.mkdir(exist_ok=True)
    snippet = f"""
import asyncio, json, statistics, time
from papyra.persistence.backends.rotating import RotatingFilePersistence
from papyra.persistence.models import PersistedEvent
async def main():
    p = RotatingFilePersistence({str(directory / 'rot.ndjson')!r}, max_bytes={segment_bytes},
                                max_files=1000)
    evs = [PersistedEvent(system_id="orders", actor_address=f"orders:{{i % 50}}",
           event_type="ActorCrashed", payload={{"error": "ValueError: boom", "attempt": i % 5,
           "reason": "supervisor restarted the actor"}}, timestamp=1763771234.0 + i)
           for i in range({n})]
    t = time.perf_counter()
    for e in evs:
        await p.record_event(e)
    append = {n} / (time.perf_counter() - t)
    scans, news = [], []
    for _ in range(5):
        t = time.perf_counter()
        await p.scan()
        scans.append(time.perf_counter() - t)
        t = time.perf_counter()
        got = await p.list_events(limit=100)
        news.append(time.perf_counter() - t)
        assert len(got) == 100
    await p.aclose()
    print(json.dumps({{"append": append, "scan": {n} / statistics.median(scans),
                      "newest": 100 / statistics.median(news)}}))
asyncio.run(main())
"""
    try:
        out = subprocess.run([python, "-c", snippet], capture_output=True, text=True,
                             timeout=600, check=True)
        rates: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
        return rates
    except (subprocess.SubprocessError, ValueError, OSError) as exc:
        print(f"papyra 0.3.0 run failed: {exc}", file=sys.stderr)
        return {}


def segment_lines(directory: Path) -> list[int]:
    """Lines per segment, oldest first."""
    return [p.read_bytes().count(b"\n") for p in sorted(directory.glob("segment-*.ndjson"))]


def seg_records(directory: Path) -> int:
    """Records in the oldest (full, sealed) segment."""
    return segment_lines(directory)[0]


async def newest_row(rstore: Any, jstore: Any, rot_dir: Path, metric: str,
                     p03: float | None = None) -> dict[str, Any]:
    """Medians of interleaved newest-100 reads on both stores."""

    async def newest_rot() -> None:
        assert len(await rstore.read_all(limit=100)) == 100

    async def newest_json() -> None:
        assert len(await jstore.read_all(limit=100)) == 100

    news: list[float] = []
    news_json: list[float] = []
    for k in range(NEWEST_ROUNDS):
        if k % 2:
            news_json.append(await timed(newest_json, 1))
        news.append(await timed(newest_rot, 1))
        if not k % 2:
            news_json.append(await timed(newest_json, 1))
    t_new, t_new_json = statistics.median(news), statistics.median(news_json)
    # below 100 records in the newest segment, the read opens the previous segment too
    return emit(metric, 100 / t_new, None, p03, "records/s", json=100 / t_new_json,
                ratio_json=t_new_json / t_new, seconds=t_new, json_seconds=t_new_json,
                newest_segment_records=segment_lines(rot_dir)[-1])


async def timed(fn: Any, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        await fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--papyra03-python")
    ap.add_argument("--segment-bytes", type=int, default=None)
    args = ap.parse_args()
    root = Path(os.environ.get("PAPYRA_BENCH_DIR") or tempfile.mkdtemp(prefix="bench-rot-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(run(args, root))
    finally:
        if not os.environ.get("PAPYRA_BENCH_DIR"):
            shutil.rmtree(root, ignore_errors=True)


async def run(args: argparse.Namespace, root: Path) -> None:
    n = 4_000 if args.quick else 40_000
    batch = 100
    records = make_records(n)
    line_bytes = sum(len(codec.encode(r, i + 1)) for i, r in enumerate(records))
    seg = args.segment_bytes or max(line_bytes // 6, 4096)
    rows: list[dict[str, Any]] = []
    # ---------------------------------------------------------------- appends
    # rounds alternate ours / json / raw so load on a shared machine hits all alike
    # and each rate is the median of its rounds (one slow fsync on a shared disk moves a best-of
    # or a mean; the median of interleaved rounds compares like with like)
    ours_rates: list[float] = []
    json_rates: list[float] = []
    raw_rates: list[float] = []
    for k in range(APPEND_ROUNDS):
        rot_dir = root / f"rot{k}"
        json_file = root / f"one{k}.ndjson"
        ours_rates.append(await append_rate(
            RotationStore(rot_dir, max_segment_bytes=seg), records, batch))
        json_rates.append(await append_rate(
            JsonStore("json://" + str(json_file), path=json_file), records, batch))
        raw_rates.append(await asyncio.to_thread(
            raw_append_rate, root / f"raw{k}.ndjson", records, batch))
    ours = statistics.median(ours_rates)
    json_rate = statistics.median(json_rates)
    raw = statistics.median(raw_rates)
    p03: dict[str, float] = {}
    if args.papyra03_python:
        d03 = root / "p03"
        d03.mkdir()
        n03 = min(n, P03_RECORDS)  # 0.3.0 is slow: fewer records, segments scaled to match
        p03 = p03_rates(args.papyra03_python, d03, n03, max(seg * n03 // n, 4096))
    segments = len(list(rot_dir.glob("segment-*.ndjson")))
    rows.append(emit(f"append, batches of {batch}, fsync always", ours, raw, p03.get("append"),
                     "records/s", json=json_rate, ratio_json=ours / json_rate,
                     segments=segments))

    # ---------------------------------------------------------------- reads
    rstore = RotationStore(rot_dir, max_segment_bytes=seg)
    jstore = JsonStore("json://" + str(json_file), path=json_file)
    try:
        # interleaved rounds, medians: one call of each per round, so drift on a shared machine
        # hits both alike (a best-of on a sub-millisecond read mostly measures luck)
        scans: list[float] = []
        scans_json: list[float] = []
        raw_scan = 0.0
        for k in range(SCAN_ROUNDS):
            # which one goes first alternates too (the first after the raw loop's garbage pays
            # more for it; swapping the order moved a 9-round median from 0.94 to 1.03)
            first, second = (rstore, jstore) if k % 2 == 0 else (jstore, rstore)
            t_first = await timed(first.scan, 1)
            t_second = await timed(second.scan, 1)
            scans.append(t_first if first is rstore else t_second)
            scans_json.append(t_second if first is rstore else t_first)
            raw_scan = max(raw_scan, await asyncio.to_thread(
                raw_scan_rate, root / "raw0.ndjson"))
        t_scan, t_scan_json = statistics.median(scans), statistics.median(scans_json)
        rows.append(emit("scan", n / t_scan, raw_scan, p03.get("scan"), "records/s",
                         json=n / t_scan_json, ratio_json=t_scan_json / t_scan))

        rows.append(await newest_row(rstore, jstore, rot_dir, "newest 100 of the log",
                                     p03.get("newest")))
        # the same read once the newest segment holds more than 100 records (the usual case:
        # only a read right after a rotation crosses into the previous segment's file)
        more = make_records(seg_records(rot_dir) // 2)
        for i in range(0, len(more), batch):
            await rstore.append(more[i:i + batch])
            await jstore.append(more[i:i + batch])
        rows.append(await newest_row(rstore, jstore, rot_dir,
                                     "newest 100 of the log, inside the newest segment"))
    finally:
        await rstore.aclose()
        await jstore.aclose()

    # ---------------------------------------------------------------- latency
    lat_dir = root / "lat"
    lat_n = 1_500 if args.quick else 6_000
    # enough rotations that their p99 is not simply the slowest one (15 made it the max, and
    # one slow fsync on a shared disk decided the row)
    lat_seg = max(sum(len(codec.encode(r, 1)) for r in records[:lat_n]) // LAT_ROTATIONS, 2048)
    store = RotationStore(lat_dir, max_segment_bytes=lat_seg)
    rot_lat: list[float] = []
    other: list[float] = []
    after: list[float] = []
    await store.append(records[:1])
    assert store._segment_writer is not None
    w = store._segment_writer
    rotated = False
    for r in records[1:lat_n]:
        before = w.rotations
        t = time.perf_counter()
        await store.append([r])
        dt = time.perf_counter() - t
        if w.rotations != before:
            rot_lat.append(dt)
            rotated = True
            continue
        other.append(dt)
        if rotated:
            after.append(dt)
        rotated = False
    reserved = w.reservations_used
    await store.aclose()

    def p99(xs: list[float]) -> float:
        return sorted(xs)[int(len(xs) * 0.99)] if xs else float("nan")

    p99_other = p99(other)
    p99_rot = p99(rot_lat)
    rows.append(emit("append latency p99, rotating appends vs others", p99_rot * 1000,
                     None, None, "ms", others_ms=p99_other * 1000,
                     ratio_others=p99_rot / p99_other, rotations=len(rot_lat),
                     into_reserved=reserved, after_ms=p99(after) * 1000,
                     ratio_after=p99(after) / p99_other))

    print()
    print(f"{'metric':52} {'ours':>12} {'json':>12} {'raw':>12} {'0.3.0':>12}  unit",
          file=sys.stderr)
    for r in rows:
        def f(v: Any) -> str:
            return f"{v:12.1f}" if isinstance(v, int | float) else f"{'-':>12}"
        print(f"{r['metric']:52} {f(r['ours'])} {f(r.get('json', r.get('others_ms')))} "
              f"{f(r['raw'])} {f(r['papyra03'])}  {r['unit']}", file=sys.stderr)


if __name__ == "__main__":
    main()
