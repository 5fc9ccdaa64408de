"""The actor system against every installed durable backend (json, rotation, redis).

A backend whose plugin is not installed is skipped (``open_store`` raises
UnknownBackendError); Redis runs on a real redis-server started for the session.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import papyra
import pytest
from papyra import (
    Actor,
    ActorStoppedError,
    ActorSystem,
    AnomaliesFoundError,
    Strategy,
    SupervisionPolicy,
)

ROOT = Path(__file__).resolve().parents[1]
FILE_BACKENDS = ("json", "rotation")


@pytest.fixture(scope="module")
def redis_base() -> Iterator[str]:
    try:
        from papyra_backend_redis.testing import RedisServer, require_redis_server
    except ImportError:
        pytest.skip("papyra-backend-redis (with its testing helpers) is not installed")
    import tempfile

    require_redis_server()
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp)).start()
        try:
            yield server.url(prefix="PREFIX", system_id="orders")
        finally:
            server.stop()


def _url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "json":
        return f"json://{tmp_path / 'papyra.ndjson'}"
    if backend == "rotation":
        (tmp_path / "log").mkdir()
        return f"rotation://{tmp_path / 'log'}"
    base: str = request.getfixturevalue("redis_base")
    return base.replace("PREFIX", f"t{uuid.uuid4().hex[:10]}")


@pytest.fixture(params=["json", "rotation", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    backend: str = request.param
    url = _url(backend, tmp_path, request)
    try:
        papyra.get_plugin_manager().backend_for_scheme(papyra.StoreURL.parse(url).scheme)
    except papyra.UnknownBackendError:
        pytest.skip(f"the {backend} backend plugin is not installed")
    return url


class Worker(Actor):
    async def on_start(self) -> None:
        self.done = 0

    async def receive(self, message: Any) -> Any:
        if message == "boom":
            raise ValueError("kaboom")
        self.done += 1
        return self.done


class Team(Actor):
    async def on_start(self) -> None:
        self.workers = [
            self.context.spawn_child(Worker, policy=SupervisionPolicy(strategy=Strategy.RESTART))
            for _ in range(3)
        ]

    async def receive(self, message: Any) -> Any:
        return self.workers


async def _workload(url: str) -> ActorSystem:
    system = ActorSystem(system_id="orders", persistence=url,
                         persistence_options={"fsync": "always"} if "redis" not in url else {})
    async with system:
        teams = [system.spawn(Team, name=f"team-{i}") for i in range(3)]
        workers = await teams[0].ask("workers")
        await workers[0].tell("boom")
        assert await workers[0].ask("work") == 1
        gone = system.spawn(Worker)
        await gone.stop()
        with pytest.raises(ActorStoppedError):
            await gone.ask({"order": 7})
        system.audit()
    return system


async def test_every_fact_of_a_run_is_in_the_store_after_close(store_url: str) -> None:
    system = await _workload(store_url)
    assert system.metrics.records_dropped == {}
    async with papyra.open_store(store_url) as store:
        rows = await store.read_all()
        report = await store.scan()
    assert report.clean, report.anomalies
    events = [r for r in rows if r.kind == "event"]
    started = {r.actor_address for r in events if r.event_type == "ActorStarted"}
    stopped = {r.actor_address for r in events if r.event_type == "ActorStopped"}
    assert len(started) == 13
    assert stopped == started
    assert [r.event_type for r in events].count("ActorRestarted") == 1
    [letter] = [r for r in rows if r.kind == "dead_letter"]
    assert (letter.target, letter.payload, letter.expects_reply) == ("orders:13",
                                                                       {"order": 7}, True)
    [audit] = [r for r in rows if r.kind == "audit"]
    assert audit.total_actors == 12
    assert all(r.system_id == "orders" for r in rows)
    assert len({r.id for r in rows}) == len(rows)


async def test_a_second_run_appends_after_a_clean_startup_check(store_url: str) -> None:
    await _workload(store_url)
    await _workload(store_url)
    async with papyra.open_store(store_url) as store:
        rows = await store.read_all(kinds="event")
    assert sum(1 for r in rows if r.event_type == "ActorStopped") == 26


def _digest(path: Path) -> str:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def _damage(url: str) -> Path:
    path = papyra.StoreURL.parse(url).file_path()
    target = path if path.is_file() else sorted(path.glob("segment-*.ndjson"))[0]
    data = target.read_bytes()
    lines = data.split(b"\n")
    lines[1] = lines[1][:20] + b"#" + lines[1][21:]  # a flipped byte mid-file
    target.write_bytes(b"\n".join(lines))
    return path


@pytest.mark.parametrize("backend", FILE_BACKENDS)
async def test_a_damaged_file_store_refuses_to_start_unchanged_then_recovers(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = _url(backend, tmp_path, request)
    try:
        papyra.get_plugin_manager().backend_for_scheme(backend)
    except papyra.UnknownBackendError:
        pytest.skip(f"the {backend} backend plugin is not installed")
    await _workload(url)
    path = _damage(url)
    before = _digest(path)
    with pytest.raises(AnomaliesFoundError):
        await ActorSystem(system_id="orders", persistence=url,
                          startup="fail_on_anomaly").start()
    assert _digest(path) == before
    async with ActorSystem(system_id="orders", persistence=url,
                           startup={"mode": "recover", "recovery_mode": "repair"}) as system:
        assert system.startup_result is not None
        assert system.startup_result.recovery is not None
        system.spawn(Worker)
    async with papyra.open_store(url) as store:
        assert (await store.scan()).clean


def test_the_orders_example_runs_against_a_json_store(tmp_path: Path) -> None:
    try:
        papyra.get_plugin_manager().backend_for_scheme("json")
    except papyra.UnknownBackendError:
        pytest.skip("the json backend plugin is not installed")
    url = f"json://{tmp_path / 'demo' / 'papyra.ndjson'}"
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "orders_app.py"),
                           "--store", url, "--duration", "0.2"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "payments actor restarted" in proc.stdout
    assert "dead letter recorded" in proc.stdout
    assert "persisted: 1 audit, 1 dead_letter" in proc.stdout
