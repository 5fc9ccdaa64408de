"""What papyra's metrics cost: appends with metrics on vs off, and a Prometheus scrape vs
prometheus-client's own metrics, beside papyra 0.3.0's per-record metrics.

    python bench/bench_metrics.py [--quick] [--papyra03-python PATH]

Rows:
- ``append`` — records/s through ``Store.append`` on the memory backend (batches of 100, so the
  store itself costs little and the metrics' share shows). raw = the same with a StoreMetrics
  whose updates do nothing (metrics off); ratio_raw close to 1 means metrics are cheap.
  papyra03 = 0.3.0's ``InMemoryPersistence.record_event`` (one record per call, metrics under an
  anyio lock per record).
- ``scrape`` — Prometheus scrapes/s of one store + one actor system's metrics. raw = the same
  number of series as prometheus-client's own Counter/Gauge/Histogram objects on a registry.

Both rows are CPU-bound and single-threaded, so they are timed in process CPU time
(``time.process_time``): other load on the machine then hardly moves the figures.

Prints a table and ``BENCH {json}`` lines. ``--papyra03-python`` is an interpreter with
``papyra==0.3.0`` installed; without it that column is skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from typing import Any

import papyra
from papyra.exporters.catalog import collect
from papyra.exporters.prometheus import render
from papyra.metrics import StoreMetrics

BATCH = 100


class MetricsOff(StoreMetrics):
    """Counts nothing: the baseline for the metrics' own cost."""

    def observe_append(self, kinds: Counter[str], sizes: Counter[str], seconds: float) -> None:
        return None


async def append_rate(n_batches: int, *, metrics_on: bool) -> float:
    options: dict[str, Any] = {} if metrics_on else {"metrics": MetricsOff("memory")}
    store = papyra.PluginManager(entry_points=False).open_store("memory://", **options)
    batch = [papyra.EventRecord(system_id="bench", actor_address="bench:1",
                                event_type="ActorStarted") for _ in range(BATCH)]
    await store.append(batch)
    t = time.process_time()
    for _ in range(n_batches):
        await store.append(batch)
    return n_batches * BATCH / (time.process_time() - t)


class _System:
    """An actor system's metrics snapshot as the exporters see it (same keys as
    ``papyra.actors.metrics.SystemMetrics``)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.metrics = self

    def snapshot(self) -> dict[str, Any]:
        return {"actors_spawned": 10, "actors_stopped": 2, "messages_processed": 12345,
                "messages_failed": 3, "restarts": 1, "dead_letters": 4, "asks_timed_out": 0,
                "hook_errors": 0, "records_enqueued": {"event": 20, "audit": 1},
                "records_written": {"event": 20, "audit": 1}, "records_dropped": {},
                "persist_failures": 0, "persist_batches": 5, "actors_alive": 8,
                "mailbox_depth": 0, "persistence_queue_depth": 0}


def scrape_rate(n: int) -> tuple[float, float, int]:
    store = papyra.PluginManager(entry_points=False).open_store("memory://")

    async def fill() -> None:
        for kind_record in (
            papyra.EventRecord(system_id="b", actor_address="b:1", event_type="E"),
            papyra.DeadLetterRecord(system_id="b", target=None, message_type="M", payload=None,
                                    expects_reply=False),
        ):
            await store.append([kind_record] * 10)
        await store.scan()

    asyncio.run(fill())
    sources = [store, _System(store)]
    families = collect(sources)
    series = sum(max(len(f.values), len(f.histograms)) for f in families)

    t = time.process_time()
    for _ in range(n):
        render(*sources)
    ours = n / (time.process_time() - t)

    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client import Counter as PCounter
    from prometheus_client import Gauge as PGauge
    from prometheus_client import Histogram as PHistogram

    registry = CollectorRegistry()
    for f in families:
        labels = list(f.spec.labels)
        if f.spec.type == "histogram":
            h = PHistogram(f.spec.name, f.spec.help, labels, registry=registry,
                           buckets=[b for b, _ in next(iter(f.histograms.values())).buckets])
            for key in f.histograms:
                (h.labels(*key) if labels else h).observe(0.001)
        elif f.spec.type == "counter":
            c = PCounter(f.spec.base_name, f.spec.help, labels, registry=registry)
            for key, v in f.values.items():
                (c.labels(*key) if labels else c).inc(v)
        else:
            g = PGauge(f.spec.name, f.spec.help, labels, registry=registry)
            for key, v in f.values.items():
                (g.labels(*key) if labels else g).set(v)
    t = time.process_time()
    for _ in range(n):
        generate_latest(registry)
    raw = n / (time.process_time() - t)
    return ours, raw, series


PAPYRA03 = r"""
import asyncio, json, sys, time
from papyra.persistence.backends.memory import InMemoryPersistence
from papyra.persistence.models import PersistedEvent
N = int(sys.argv[1])
async def main():
    p = InMemoryPersistence()
    evs = [PersistedEvent(system_id="bench", actor_address="bench:1", event_type="ActorStarted",
                          payload={}, timestamp=time.time()) for _ in range(N)]
    t = time.process_time()
    for e in evs:
        await p.record_event(e)
    print(json.dumps({"append": N / (time.process_time() - t)}))
asyncio.run(main())
"""


def papyra03(python: str, n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([python, "-c", PAPYRA03, str(n)], cwd=tmp, capture_output=True,
                              text=True, timeout=600, env={**os.environ, "PYTHONPATH": ""})
    if proc.returncode != 0:
        raise SystemExit(f"papyra 0.3.0 run failed:\n{proc.stderr[-2000:]}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--papyra03-python", metavar="PATH",
                        help="interpreter with papyra==0.3.0 installed")
    args = parser.parse_args()
    n_batches = 100 if args.quick else 1000
    n_scrapes = 50 if args.quick else 500

    on = off = 0.0
    for _ in range(5):  # interleaved, best of each: a busy machine slows both alike
        on = max(on, asyncio.run(append_rate(n_batches, metrics_on=True)))
        off = max(off, asyncio.run(append_rate(n_batches, metrics_on=False)))
    scrape_ours, scrape_raw, series = scrape_rate(n_scrapes)
    old = papyra03(args.papyra03_python, n_batches * BATCH // 4) if args.papyra03_python else {}

    rows = [
        {"bench": "metrics", "metric": f"append, batches of {BATCH} (raw = metrics off)",
         "ours": on, "raw": off, "papyra03": old.get("append"), "unit": "records/cpu-s"},
        {"bench": "metrics",
         "metric": f"prometheus scrape, {series} series (raw = prometheus-client metrics)",
         "ours": scrape_ours, "raw": scrape_raw, "papyra03": None, "unit": "scrapes/cpu-s"},
    ]
    print(f"{'metric':<66} {'ours':>12} {'raw':>12} {'papyra03':>12} {'ours/raw':>9}")
    for row in rows:
        row["ratio_raw"] = row["ours"] / row["raw"]
        row["ratio_03"] = row["ours"] / row["papyra03"] if row["papyra03"] else None
        old_text = f"{row['papyra03']:>12,.0f}" if row["papyra03"] else f"{'-':>12}"
        print(f"{row['metric']:<66} {row['ours']:>12,.0f} {row['raw']:>12,.0f} {old_text} "
              f"{row['ratio_raw']:>9.2f}")
    for row in rows:
        print("BENCH " + json.dumps(row))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
