"""The machine's raw limits, measured with plain Python and no papyra at all.

    python bench/bench_raw.py [--quick] [--papyra03-python PATH]

What a log store on this machine cannot beat: appending lines with one fsync per batch, the
latency of one fsync, reading and parsing lines back, CRC-32 throughput, and (when
``redis-server`` is installed) pipelined XADD and XREVRANGE against a local Redis. Prints a table
and ``BENCH {json}`` lines whose value is in ``raw`` (``ours`` and ``papyra03`` are null here;
``--papyra03-python`` is accepted for the common protocol and ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

LINE = (b'{"v":1,"seq":%d,"id":"5f0c2d1e9a8b7c6d5e4f3a2b1c0d9e8f","kind":"event",'
        b'"timestamp":1763771234.125,"system_id":"bench","actor_address":"bench:%d",'
        b'"event_type":"ActorStarted","payload":{"n":%d},"crc":"0a1b2c3d"}\n')
BATCH = 100


def lines(n: int) -> list[bytes]:
    return [LINE % (i, i, i) for i in range(1, n + 1)]


def append_fsync_per_batch(directory: Path, data: list[bytes]) -> float:
    path = directory / "append.ndjson"
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
    start = time.perf_counter()
    for i in range(0, len(data), BATCH):
        os.write(fd, b"".join(data[i:i + BATCH]))
        os.fsync(fd)
    elapsed = time.perf_counter() - start
    os.close(fd)
    return len(data) / elapsed


def append_no_fsync(directory: Path, data: list[bytes]) -> float:
    path = directory / "append-nosync.ndjson"
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
    start = time.perf_counter()
    for i in range(0, len(data), BATCH):
        os.write(fd, b"".join(data[i:i + BATCH]))
    elapsed = time.perf_counter() - start
    os.close(fd)
    return len(data) / elapsed


def fsync_latency_ms(directory: Path, rounds: int) -> float:
    fd = os.open(directory / "fsync.ndjson", os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
    samples = []
    for i in range(rounds):
        os.write(fd, LINE % (i, i, i))
        start = time.perf_counter()
        os.fsync(fd)
        samples.append(time.perf_counter() - start)
    os.close(fd)
    return statistics.median(samples) * 1000


def read_lines(path: Path) -> float:
    start = time.perf_counter()
    with open(path, "rb") as f:
        n = sum(1 for _ in f)
    return n / (time.perf_counter() - start)


def read_and_parse(path: Path) -> tuple[float, str]:
    try:
        import orjson

        loads: Any = orjson.loads
        name = "orjson"
    except ImportError:
        loads, name = json.loads, "json"
    start = time.perf_counter()
    n = 0
    with open(path, "rb") as f:
        for line in f:
            loads(line)
            n += 1
    return n / (time.perf_counter() - start), name


def read_newest(path: Path, count: int, rounds: int = 50) -> float:
    """Newest ``count`` lines by reading backwards from the end: lines/s over ``rounds``."""
    size = path.stat().st_size
    start = time.perf_counter()
    got = 0
    for _ in range(rounds):
        with open(path, "rb") as f:
            pos, buf = size, b""
            while pos > 0 and buf.count(b"\n") <= count:
                step = min(65536, pos)
                pos -= step
                f.seek(pos)
                buf = f.read(step) + buf
            got += len(buf.splitlines()[-count:])
    return got / (time.perf_counter() - start)


def crc32_mb_s(data: bytes) -> float:
    start = time.perf_counter()
    for _ in range(20):
        zlib.crc32(data)
    return 20 * len(data) / (time.perf_counter() - start) / 1e6


def redis_limits(n: int) -> dict[str, float]:
    server = shutil.which("redis-server")
    if server is None:
        return {}
    try:
        import redis
    except ImportError:
        return {}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save",
                                 "", "--appendonly", "no", "--dir", tmp],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            client = redis.Redis(port=port)
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        return {}
                    time.sleep(0.05)
            data = lines(n)
            start = time.perf_counter()
            for i in range(0, n, BATCH):
                pipe = client.pipeline(transaction=False)
                for line in data[i:i + BATCH]:
                    pipe.xadd("raw:{bench}:events", {"data": line})
                pipe.execute()
            xadd = n / (time.perf_counter() - start)
            reads = 200
            start = time.perf_counter()
            for _ in range(reads):
                client.xrevrange("raw:{bench}:events", count=100)
            xrev = reads * 100 / (time.perf_counter() - start)
            client.close()
            return {"xadd": xadd, "xrevrange": xrev}
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--papyra03-python", metavar="PATH", help="accepted and ignored")
    args = parser.parse_args()
    n = 5_000 if args.quick else 100_000
    rows: list[dict[str, Any]] = []

    def emit(metric: str, value: float, unit: str) -> None:
        rows.append({"bench": "raw", "metric": metric, "ours": None, "raw": value,
                     "papyra03": None, "unit": unit, "ratio_raw": None, "ratio_03": None})

    with tempfile.TemporaryDirectory(dir=os.environ.get("PAPYRA_BENCH_DIR")) as tmp:
        d = Path(tmp)
        data = lines(n)
        emit(f"append, fsync per {BATCH}-line batch", append_fsync_per_batch(d, data),
             "records/s")
        emit("append, no fsync", append_no_fsync(d, data), "records/s")
        emit("fsync latency (median)", fsync_latency_ms(d, 50 if args.quick else 300), "ms")
        path = d / "append.ndjson"
        emit("read lines", read_lines(path), "records/s")
        rate, parser_name = read_and_parse(path)
        emit(f"read + parse ({parser_name})", rate, "records/s")
        emit("read newest 100 lines (backwards)", read_newest(path, 100), "records/s")
        emit("crc32", crc32_mb_s(b"".join(data[:20_000])), "MB/s")
    for metric, value in redis_limits(2_000 if args.quick else 50_000).items():
        label = {"xadd": f"redis XADD, pipelined by {BATCH}",
                 "xrevrange": "redis XREVRANGE COUNT 100"}[metric]
        emit(label, value, "records/s")

    print(f"{'raw machine limit':<40} {'value':>14}  unit")
    for row in rows:
        print(f"{row['metric']:<40} {row['raw']:>14,.1f}  {row['unit']}")
    for row in rows:
        print("BENCH " + json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
