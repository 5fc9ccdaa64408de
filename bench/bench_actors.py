"""Actor runtime throughput: papyra's actors beside a bare asyncio.Queue actor loop and
papyra 0.3.0, plus spawning and stopping many actors with a durable store vs memory.

    python bench/bench_actors.py [--quick] [--papyra03-python PATH]

Prints a table and ``BENCH {json}`` lines (ratio_raw = ours / bare loop, ratio_03 = ours /
papyra 0.3.0). ``--papyra03-python`` is an interpreter with ``papyra==0.3.0`` installed (its
import name clashes with ours, hence the separate venv); without it that column is skipped.
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
from pathlib import Path
from typing import Any

import papyra
from papyra import Actor, ActorSystem

MAILBOX = 1024


class Count(Actor):
    def __init__(self) -> None:
        self.n = 0

    async def receive(self, message: Any) -> Any:
        self.n += 1
        return self.n


class Noop(Actor):
    async def receive(self, message: Any) -> Any:
        return None


# ---------------------------------------------------------------- bare asyncio.Queue loop


class BareActor:
    def __init__(self) -> None:
        self.n = 0

    async def receive(self, message: Any) -> Any:
        self.n += 1
        return self.n


async def _bare_loop(q: asyncio.Queue[Any], actor: BareActor) -> None:
    while True:
        item = await q.get()
        if type(item) is tuple:
            msg, fut = item
            fut.set_result(await actor.receive(msg))
        else:
            await actor.receive(item)


async def bare_tell(n: int) -> float:
    q: asyncio.Queue[Any] = asyncio.Queue(MAILBOX)
    actor = BareActor()
    task = asyncio.create_task(_bare_loop(q, actor))
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    for i in range(n):
        await q.put(i)
    fut = loop.create_future()
    await q.put(("sync", fut))
    await fut
    elapsed = time.perf_counter() - start
    task.cancel()
    return n / elapsed


async def bare_ask(n: int, ask_timeout: float | None = None) -> float:
    q: asyncio.Queue[Any] = asyncio.Queue(MAILBOX)
    actor = BareActor()
    task = asyncio.create_task(_bare_loop(q, actor))
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    for i in range(n):
        fut = loop.create_future()
        await q.put((i, fut))
        if ask_timeout is None:
            await fut
        else:
            async with asyncio.timeout(ask_timeout):
                await fut
    elapsed = time.perf_counter() - start
    task.cancel()
    return n / elapsed


# ---------------------------------------------------------------- papyra (this repository)


async def ours_tell(n: int) -> float:
    async with ActorSystem(system_id="bench", persistence="memory://") as system:
        ref = system.spawn(Count, mailbox_capacity=MAILBOX)
        await ref.ask("warm")
        start = time.perf_counter()
        for i in range(n):
            await ref.tell(i)
        await ref.ask("sync")
        elapsed = time.perf_counter() - start
    return n / elapsed


async def ours_ask(n: int, ask_timeout: float | None = None) -> float:
    async with ActorSystem(system_id="bench", persistence="memory://") as system:
        ref = system.spawn(Count, mailbox_capacity=MAILBOX)
        await ref.ask("warm")
        start = time.perf_counter()
        for i in range(n):
            await ref.ask(i, timeout=ask_timeout)
        elapsed = time.perf_counter() - start
    return n / elapsed


async def spawn_stop(n: int, url: str, options: dict[str, Any]) -> float:
    """Spawn n actors, stop them all, close (which flushes every record): actors per second."""
    system = ActorSystem(system_id="bench", persistence=url, persistence_options=options,
                         startup="ignore")
    await system.start()
    start = time.perf_counter()
    refs = [system.spawn(Noop) for _ in range(n)]
    for ref in refs:
        await ref.stop()
    await system.aclose()
    elapsed = time.perf_counter() - start
    written = sum(system.metrics.records_written.values())
    if written != 2 * n:
        raise SystemExit(f"expected {2 * n} records written, got {written}")
    return n / elapsed


def json_plugin_installed() -> bool:
    try:
        papyra.get_plugin_manager().backend_for_scheme("json")
    except papyra.UnknownBackendError:
        return False
    return True


# ---------------------------------------------------------------- papyra 0.3.0 (subprocess)

PAPYRA03 = r"""
import asyncio, json, sys, time
from papyra import ActorSystem, Actor
N = int(sys.argv[1]); MAILBOX = int(sys.argv[2])
class Count(Actor):
    def __init__(self): self.n = 0
    async def receive(self, message):
        self.n += 1
        return self.n
async def main():
    out = {}
    async with ActorSystem(system_id="bench") as system:
        ref = system.spawn(Count, mailbox_capacity=MAILBOX)
        await ref.ask("warm")
        t = time.perf_counter()
        for i in range(N):
            await ref.tell(i)
        await ref.ask("sync")
        out["tell"] = N / (time.perf_counter() - t)
        t = time.perf_counter()
        for i in range(N // 4):
            await ref.ask(i)
        out["ask"] = (N // 4) / (time.perf_counter() - t)
    print(json.dumps(out))
asyncio.run(main())
"""


def papyra03(python: str, n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([python, "-c", PAPYRA03, str(n), str(MAILBOX)], cwd=tmp,
                              capture_output=True, text=True, timeout=600,
                              env={**os.environ, "PYTHONPATH": ""})
    if proc.returncode != 0:
        raise SystemExit(f"papyra 0.3.0 run failed:\n{proc.stderr[-2000:]}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# ---------------------------------------------------------------- main


def best(fn: Any, *args: Any, runs: int = 3) -> float:
    return float(max(asyncio.run(fn(*args)) for _ in range(runs)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--papyra03-python", metavar="PATH",
                        help="interpreter with papyra==0.3.0 installed")
    args = parser.parse_args()
    n_msgs = 20_000 if args.quick else 200_000
    n_asks = 5_000 if args.quick else 50_000
    n_actors = 1_000 if args.quick else 10_000

    rows: list[dict[str, Any]] = []
    old = papyra03(args.papyra03_python, n_msgs) if args.papyra03_python else {}

    tell_ours, tell_raw = best(ours_tell, n_msgs), best(bare_tell, n_msgs)
    rows.append({"bench": "actors", "metric": f"tell throughput ({n_msgs} msgs)",
                 "ours": tell_ours, "raw": tell_raw, "papyra03": old.get("tell"),
                 "unit": "msg/s"})
    ask_ours, ask_raw = best(ours_ask, n_asks), best(bare_ask, n_asks)
    rows.append({"bench": "actors", "metric": f"ask round trips ({n_asks} asks)",
                 "ours": ask_ours, "raw": ask_raw, "papyra03": old.get("ask"),
                 "unit": "asks/s"})

    ask_t_ours, ask_t_raw = best(ours_ask, n_asks, 5.0), best(bare_ask, n_asks, 5.0)
    rows.append({"bench": "actors", "metric": f"ask round trips, timeout=5 ({n_asks} asks)",
                 "ours": ask_t_ours, "raw": ask_t_raw, "papyra03": None, "unit": "asks/s"})

    mem = best(spawn_stop, n_actors, "memory://", {}, runs=1 if not args.quick else 2)
    if not args.quick and json_plugin_installed():
        with tempfile.TemporaryDirectory() as tmp:
            url = f"json://{Path(tmp) / 'bench.ndjson'}"
            durable = asyncio.run(spawn_stop(n_actors, url, {"fsync": "always"}))
        label = "json fsync=always"
    else:
        durable = mem
        label = "memory (json plugin absent or --quick)"
    rows.append({"bench": "actors", "metric": f"spawn+stop {n_actors} actors, {label} "
                 "(raw = memory store)", "ours": durable, "raw": mem, "papyra03": None,
                 "unit": "actors/s"})

    print(f"{'metric':<62} {'ours':>12} {'raw':>12} {'0.3.0':>12} {'ours/raw':>9} "
          f"{'ours/0.3':>9}")
    for row in rows:
        row["ratio_raw"] = row["ours"] / row["raw"] if row["raw"] else None
        row["ratio_03"] = row["ours"] / row["papyra03"] if row["papyra03"] else None
        old_text = f"{row['papyra03']:>12,.0f}" if row["papyra03"] else f"{'-':>12}"
        r03 = f"{row['ratio_03']:>9.2f}" if row["ratio_03"] else f"{'-':>9}"
        print(f"{row['metric']:<62} {row['ours']:>12,.0f} {row['raw']:>12,.0f} {old_text} "
              f"{row['ratio_raw']:>9.2f} {r03}")
    for row in rows:
        print("BENCH " + json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
