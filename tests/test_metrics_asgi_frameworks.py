"""papyra.asgi with current Starlette and FastAPI releases (their TestClients run the lifespan)
and once under uvicorn in a subprocess with real HTTP requests: the lifespan starts and stops a
real ActorSystem on a real JSON store; health and metrics are mounted and answer."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import papyra
import papyra.asgi
import pytest
from fastapi import FastAPI
from papyra import Actor, ActorSystem
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.testclient import TestClient


class Counter(Actor):
    async def on_start(self) -> None:
        self.n = 0

    async def receive(self, message: Any) -> Any:
        self.n += 1
        return self.n


def events(log: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in log.read_bytes().splitlines() if line]


def check_app_lifecycle(client_app: Any, system: ActorSystem, log: Path) -> None:
    with TestClient(client_app) as client:
        assert system.running
        async def spawn_and_ask() -> Any:
            return await system.spawn(Counter, name="counter").ask("hi")

        assert client.portal.call(spawn_and_ask) == 1  # type: ignore[union-attr]
        live = client.get("/health/live")
        assert live.status_code == 200
        ready = client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["system"]["state"] == "running"
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert "papyra_actor_spawned_total 1.0" in metrics.text
        assert "papyra_actors 1.0" in metrics.text
        assert 'papyra_store_scans_total{backend="json"}' in metrics.text
        doc = client.get("/metrics?format=json").json()
        assert "papyra_persistence_queue_records" in doc["metrics"]
    assert system.closed
    kinds = [(r["kind"], r.get("event_type")) for r in events(log)]
    assert ("event", "ActorStarted") in kinds
    assert ("event", "ActorStopped") in kinds


def test_starlette_lifespan_starts_and_stops_the_system_with_health_and_metrics_mounted(
    tmp_path: Path,
) -> None:
    log = tmp_path / "papyra.ndjson"
    system = ActorSystem(system_id="web", persistence=f"json://{log}")
    app = Starlette(
        lifespan=papyra.asgi.lifespan(system),
        routes=[
            Mount("/health", papyra.asgi.HealthEndpoints(system)),
            Route("/metrics", papyra.asgi.MetricsEndpoint(system)),
        ],
    )
    check_app_lifecycle(app, system, log)
    assert app.state.papyra is system


def test_fastapi_lifespan_starts_and_stops_the_system_with_health_and_metrics_mounted(
    tmp_path: Path,
) -> None:
    log = tmp_path / "papyra.ndjson"
    system = ActorSystem(system_id="web", persistence=f"json://{log}")
    app = FastAPI(lifespan=papyra.asgi.lifespan(system))
    app.mount("/health", papyra.asgi.HealthEndpoints(system))
    app.add_route("/metrics", papyra.asgi.MetricsEndpoint(system))

    @app.get("/orders")
    async def orders() -> dict[str, int]:
        return {"count": 0}

    check_app_lifecycle(app, system, log)


def test_fastapi_app_refuses_to_start_on_a_corrupt_store_and_changes_no_byte(
    tmp_path: Path,
) -> None:
    log = tmp_path / "papyra.ndjson"
    seed = ActorSystem(system_id="web", persistence=f"json://{log}")
    async def spawn() -> None:
        seed.spawn(Counter, name="c")

    with TestClient(Starlette(lifespan=papyra.asgi.lifespan(seed))) as client:
        client.portal.call(spawn)  # type: ignore[union-attr]
    lines = log.read_bytes().split(b"\n")
    lines[0] = lines[0].replace(b"ActorStarted", b"ActorStartee")
    log.write_bytes(b"\n".join(lines))
    before = log.read_bytes()
    system = ActorSystem(system_id="web", persistence=f"json://{log}",
                         startup=papyra.StartupConfig(mode="fail_on_anomaly"))
    app = FastAPI(lifespan=papyra.asgi.lifespan(system))
    with pytest.raises(papyra.AnomaliesFoundError), TestClient(app):
        pass
    assert log.read_bytes() == before
    assert not system.running


def test_the_combined_endpoints_answer_under_one_mount(tmp_path: Path) -> None:
    system = ActorSystem(system_id="web", persistence=f"json://{tmp_path / 'p.ndjson'}")
    app = Starlette(lifespan=papyra.asgi.lifespan(system),
                    routes=[Mount("/ops", papyra.asgi.Endpoints(system, store_gauges=True))])
    with TestClient(app) as client:
        assert client.get("/ops/health/live").status_code == 200
        assert client.get("/ops/health/ready").status_code == 200
        body = client.get("/ops/metrics").text
        assert 'papyra_store_up{backend="json"} 1.0' in body
        assert client.get("/ops/nowhere").status_code == 404


def test_lifespan_middleware_runs_the_system_around_any_asgi_app(tmp_path: Path) -> None:
    system = ActorSystem(system_id="web", persistence=f"json://{tmp_path / 'p.ndjson'}")
    inner = Starlette(routes=[Mount("/health", papyra.asgi.HealthEndpoints(system))])
    with TestClient(papyra.asgi.LifespanMiddleware(inner, system)) as client:
        assert system.running
        assert client.get("/health/ready").status_code == 200
    assert system.closed


# --------------------------------------------------------------------------- uvicorn

APP_MODULE = """
import papyra.asgi
from papyra import Actor, ActorSystem
from starlette.applications import Starlette
from starlette.routing import Mount, Route

system = ActorSystem(system_id="web", persistence={url!r})
app = Starlette(
    lifespan=papyra.asgi.lifespan(system),
    routes=[
        Mount("/health", papyra.asgi.HealthEndpoints(system)),
        Route("/metrics", papyra.asgi.MetricsEndpoint(system, store_gauges=True)),
    ],
)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_uvicorn_serves_health_and_metrics_and_closes_the_system_on_sigterm(
    tmp_path: Path,
) -> None:
    log = tmp_path / "papyra.ndjson"
    (tmp_path / "webapp.py").write_text(textwrap.dedent(APP_MODULE.format(url=f"json://{log}")))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "webapp:app", "--host", "127.0.0.1",
         "--port", str(port), "--lifespan", "on"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _ = get(f"http://127.0.0.1:{port}/health/live")
                break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(proc.stdout.read().decode()  # type: ignore[union-attr]
                                         ) from None
                time.sleep(0.2)
        assert status == 200
        status, body = get(f"http://127.0.0.1:{port}/health/ready")
        assert status == 200, body
        status, body = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        assert b'papyra_store_up{backend="json"} 1.0' in body
        assert b"papyra_actor_spawned_total 0.0" in body
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=60)[0].decode()
    # uvicorn shuts down gracefully, then re-raises the signal it caught (exit -SIGTERM)
    assert proc.returncode in (0, -signal.SIGTERM), output
    assert "Traceback" not in output
    assert "Application startup complete" in output
    assert "Application shutdown complete" in output


def test_a_system_built_by_a_factory_is_found_by_the_endpoints_through_app_state(
    tmp_path: Path,
) -> None:
    url = f"json://{tmp_path / 'p.ndjson'}"
    app = Starlette(
        lifespan=papyra.asgi.lifespan(lambda: ActorSystem(system_id="web", persistence=url)),
        routes=[Mount("/ops", papyra.asgi.Endpoints(lambda: getattr(app.state, "papyra", None)))],
    )
    client = TestClient(app)
    assert client.get("/ops/health/ready").json()["reason"] == "not_started"
    with client:
        assert client.get("/ops/health/ready").status_code == 200
        assert "papyra_actors 0.0" in client.get("/ops/metrics").text
    assert client.get("/ops/health/ready").json()["reason"] == "closing"


def test_a_system_started_in_scan_only_mode_on_a_damaged_store_is_not_ready(
    tmp_path: Path,
) -> None:
    log = tmp_path / "papyra.ndjson"
    seed = ActorSystem(system_id="web", persistence=f"json://{log}")

    async def spawn() -> None:
        seed.spawn(Counter, name="c")

    with TestClient(Starlette(lifespan=papyra.asgi.lifespan(seed))) as client:
        client.portal.call(spawn)  # type: ignore[union-attr]
    lines = log.read_bytes().split(b"\n")
    lines[0] = lines[0].replace(b"ActorStarted", b"ActorStartee")
    log.write_bytes(b"\n".join(lines))
    system = ActorSystem(system_id="web", persistence=f"json://{log}",
                         startup=papyra.StartupConfig(mode="scan_only"))
    app = FastAPI(lifespan=papyra.asgi.lifespan(system))
    app.mount("/health", papyra.asgi.HealthEndpoints(system))
    with TestClient(app) as client:
        assert system.running
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["reason"] == "anomalies"
        assert client.get("/health/live").status_code == 200
