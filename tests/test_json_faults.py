"""Fault injection against the JSON backend with real processes and real files.

Writer processes print the ids of every batch ``append`` acknowledged; the parent kills them,
limits their file size, or compacts under them, then checks that no acknowledged record was
lost, duplicated or interleaved.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from papyra.records import GapRecord
from papyra.urls import StoreURL
from papyra_backend_json import JsonStore, create

WRITER = textwrap.dedent("""
    import asyncio, json, sys
    from papyra.records import EventRecord
    from papyra.urls import StoreURL
    from papyra_backend_json import create

    path, tag, batches, size, tasks, fsync = sys.argv[1:7]
    batches, size, tasks = int(batches), int(size), int(tasks)

    async def worker(store, t):
        b = 0
        while batches < 0 or b < batches:
            recs = [EventRecord(system_id="faults", actor_address=f"{tag}:{t}",
                                event_type="E", payload={"b": b, "i": i, "pad": "x" * 64})
                    for i in range(size)]
            try:
                stored = await store.append(recs)
            except Exception as exc:
                print(json.dumps({"error": type(exc).__name__, "message": str(exc),
                                  "exit_code": getattr(exc, "exit_code", None)}), flush=True)
                return False
            print(json.dumps({"ids": [r.id for r in stored], "seqs": [r.seq for r in stored]}),
                  flush=True)
            b += 1
        return True

    async def main():
        store = create(StoreURL.parse("json://" + path), fsync=fsync)
        try:
            await asyncio.gather(*(worker(store, t) for t in range(tasks)))
        finally:
            await store.aclose()

    asyncio.run(main())
""")


def start_writer(path: Path, tag: str, *, batches: int, size: int, tasks: int = 1,
                 fsync: str = "always", **popen: object) -> subprocess.Popen[str]:
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-c", WRITER, str(path), tag, str(batches), str(size), str(tasks),
         fsync],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def acknowledged(output: str) -> tuple[list[str], list[int], list[dict[str, object]]]:
    ids: list[str] = []
    seqs: list[int] = []
    errors: list[dict[str, object]] = []
    for line in output.splitlines():
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by SIGKILL was never a complete acknowledgement
        if "error" in msg:
            errors.append(msg)
        else:
            ids += msg["ids"]
            seqs += msg["seqs"]
    return ids, seqs, errors


def wait_for_data(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() or path.stat().st_size == 0:
        assert time.monotonic() < deadline, "the writer never wrote"
        time.sleep(0.02)


def wait_for_growth(path: Path, size: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while path.stat().st_size <= size:
        assert time.monotonic() < deadline, "the writer never wrote"
        time.sleep(0.01)


def open_store(path: Path) -> JsonStore:
    return create(StoreURL.parse(f"json://{path}"))


async def physical(path: Path) -> list[object]:
    store = open_store(path)
    try:
        return await store.read_all(include_gaps=True, apply_retention=False)
    finally:
        await store.aclose()


@pytest.mark.parametrize("delay", [0.3, 0.6, 0.9])
async def test_a_writer_killed_mid_append_loses_no_acknowledged_record(
    tmp_path: Path, delay: float
) -> None:
    path = tmp_path / "log.ndjson"
    proc = start_writer(path, "k", batches=-1, size=400, tasks=4)
    await asyncio.sleep(delay)
    await asyncio.to_thread(wait_for_data, path)
    proc.send_signal(signal.SIGKILL)
    out, _err = await asyncio.to_thread(proc.communicate)
    ids, _seqs, errors = acknowledged(out)
    assert not errors
    store = open_store(path)
    scan = await store.scan()
    assert all(a.kind == "truncated_tail" for a in scan.anomalies), scan.anomalies
    report = await store.recover("repair")
    assert report.clean
    back = [r.id for r in await store.read_all()]
    assert set(ids) <= set(back), "an acknowledged record was lost"
    assert len(back) == len(set(back))
    assert [r.seq for r in await store.read_all()] == list(range(1, len(back) + 1))
    await store.aclose()


async def test_four_writer_processes_never_interleave_or_reuse_a_seq(tmp_path: Path) -> None:
    path = tmp_path / "log.ndjson"
    procs = [start_writer(path, f"w{n}", batches=25, size=15, tasks=2) for n in range(4)]
    outputs = await asyncio.gather(*(asyncio.to_thread(p.communicate) for p in procs))
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outputs]
    all_ids: list[str] = []
    for out, _err in outputs:
        ids, _seqs, errors = acknowledged(out)
        assert not errors
        all_ids += ids
        assert len(ids) == 25 * 15 * 2
    store = open_store(path)
    scan = await store.scan()
    assert scan.clean, scan.anomalies
    records = await store.read_all()
    assert [r.seq for r in records] == list(range(1, 4 * 750 + 1))
    assert sorted(r.id for r in records) == sorted(all_ids)
    # each task's batches appear whole and in the order that task wrote them
    for tag in (f"w{n}:{t}" for n in range(4) for t in range(2)):
        mine = [r.payload for r in records if getattr(r, "actor_address", None) == tag]
        assert [(p["b"], p["i"]) for p in mine] == [(b, i) for b in range(25) for i in range(15)]
    await store.aclose()


COMPACT = textwrap.dedent("""
    import asyncio, json, sys
    from papyra.retention import RetentionPolicy
    from papyra.urls import StoreURL
    from papyra_backend_json import create

    async def main():
        store = create(StoreURL.parse("json://" + sys.argv[1]))
        report = await store.compact(RetentionPolicy(max_records=int(sys.argv[2])))
        await store.aclose()
        print(json.dumps(report.to_dict()))

    asyncio.run(main())
""")


async def test_compaction_in_another_process_while_one_appends_loses_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.ndjson"
    writer = start_writer(path, "c", batches=800, size=5, tasks=2)
    communicate = asyncio.ensure_future(asyncio.to_thread(writer.communicate))  # drain stdout
    compactions = 0
    while not communicate.done():
        if path.exists():
            done = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-c", COMPACT, str(path), "300"],
                capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
            compactions += 1
        await asyncio.sleep(0.05)
    out, err = await communicate
    assert writer.returncode == 0, err
    ids, seqs, errors = acknowledged(out)
    assert not errors
    assert compactions >= 1
    store = open_store(path)
    scan = await store.scan()
    assert scan.clean, scan.anomalies
    phys = await store.read_all(include_gaps=True)
    expected = 1
    for rec in phys:  # one leading gap at most, then contiguous seqs
        assert rec.seq == expected
        expected = (rec.through if isinstance(rec, GapRecord) else rec.seq) + 1  # type: ignore[union-attr,operator]
    assert expected - 1 == len(ids) == 800 * 5 * 2
    kept = [r for r in phys if not isinstance(r, GapRecord)]
    by_seq = dict(zip(seqs, ids, strict=True))
    assert [r.id for r in kept] == [by_seq[r.seq] for r in kept]  # type: ignore[index]
    assert len({r.id for r in kept}) == len(kept)
    assert sum(isinstance(r, GapRecord) for r in phys) <= 1
    await store.aclose()


def _limit_file_size(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


async def test_the_file_size_limit_fails_the_append_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "log.ndjson"
    limit = 64 * 1024
    proc = start_writer(path, "f", batches=200, size=7, tasks=1,
                        preexec_fn=lambda: _limit_file_size(limit))
    out, err = await asyncio.to_thread(proc.communicate)
    ids, _seqs, errors = acknowledged(out)
    assert errors, err
    assert errors[0]["error"] == "StoreUnavailableError"
    assert "file too large" in str(errors[0]["message"])
    assert str(path) in str(errors[0]["message"])
    assert errors[0]["exit_code"] == 4
    assert "Traceback" not in err
    assert path.stat().st_size <= limit
    store = open_store(path)
    scan = await store.scan()
    assert scan.clean, scan.anomalies  # the partial batch was cut back
    assert [r.id for r in await store.read_all()] == ids
    await store.aclose()


async def test_a_killed_maintenance_run_leaves_the_old_or_the_new_log_and_converges(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.ndjson"
    writer = start_writer(path, "m", batches=40, size=50)
    await asyncio.to_thread(writer.communicate)
    before = path.read_bytes()
    proc = await asyncio.to_thread(
        subprocess.Popen, [sys.executable, "-c", COMPACT, str(path), "10"])
    await asyncio.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    await asyncio.to_thread(proc.wait)
    after = path.read_bytes()
    store = open_store(path)
    if after == before:
        report = await store.recover("repair")  # deletes the dead run's temp file, if any
        assert report.clean
        assert path.read_bytes() == before
    else:
        assert (await store.scan()).records == 10
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    await store.aclose()


RECOVER = textwrap.dedent("""
    import asyncio, json, sys
    from papyra.urls import StoreURL
    from papyra_backend_json import create

    async def main():
        store = create(StoreURL.parse("json://" + sys.argv[1]))
        report = await store.recover(sys.argv[2], quarantine_dir=sys.argv[3])
        await store.aclose()
        print(json.dumps({"clean": report.clean, "actions": len(report.actions)}))

    asyncio.run(main())
""")


async def test_repair_in_another_process_while_one_appends_keeps_every_acknowledged_record(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.ndjson"
    first = start_writer(path, "a", batches=10, size=5)
    out0, _ = await asyncio.to_thread(first.communicate)
    early, _s, _e = acknowledged(out0)
    data = bytearray(path.read_bytes())
    starts = [0, *[i + 1 for i, b in enumerate(data) if b == 0x0A][:-1]]
    data[starts[10] + 30] ^= 0x04  # damage record 11
    path.write_bytes(bytes(data))
    writer = start_writer(path, "b", batches=300, size=5, tasks=2)
    communicate = asyncio.ensure_future(asyncio.to_thread(writer.communicate))
    await asyncio.to_thread(wait_for_growth, path, len(data))  # the writer is live
    runs = 0
    while not communicate.done() or runs == 0:
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", RECOVER, str(path), "quarantine", str(tmp_path / "q")],
            capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        runs += 1
    out, err = await communicate
    assert writer.returncode == 0, err
    late, _seqs, errors = acknowledged(out)
    assert not errors
    store = open_store(path)
    report = await store.recover("repair")
    assert report.clean
    back = [r.id for r in await store.read_all()]
    assert set(late) <= set(back)
    assert set(early) - set(back) == {early[10]}  # only the damaged record is gone
    assert len(back) == len(set(back))
    assert list((tmp_path / "q").glob("*.bad"))
    await store.aclose()
