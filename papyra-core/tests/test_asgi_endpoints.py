"""papyra.asgi driven as plain ASGI (no framework installed): health, metrics, token, lifespan.
The same endpoints under real Starlette/FastAPI/uvicorn are tested in the root tests."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import papyra
import papyra.asgi
import pytest
from papyra.backends.memory import MemoryStore
from papyra.reports import Anomaly, ScanReport


def fresh_store() -> Any:
    return papyra.PluginManager(entry_points=False).open_store("memory://")


async def call(app: Any, path: str, *, method: str = "GET", root_path: str = "",
               headers: list[tuple[bytes, bytes]] | None = None, query: bytes = b""
               ) -> tuple[int, dict[bytes, bytes], bytes]:
    scope = {"type": "http", "method": method, "path": root_path + path, "root_path": root_path,
             "headers": headers or [], "query_string": query}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start, body = sent[0], sent[1]
    return start["status"], dict(start["headers"]), body["body"]


class CorruptMemoryStore(MemoryStore):
    """A memory store whose scan reports a mid-log checksum failure."""

    async def _scan(self) -> ScanReport:
        report = await super()._scan()
        bad = Anomaly(kind="checksum_mismatch", file="mem", line=1, detail="crc mismatch")
        return ScanReport(store=report.store, backend=report.backend, records=report.records,
                          anomalies=[bad])


class System:
    """The smallest thing the lifespan helper drives: async start()/aclose(), running, store."""

    def __init__(self, store: Any = None) -> None:
        self.store = store
        self.calls: list[str] = []
        self.running = False
        self.closed = False

    async def start(self) -> None:
        self.calls.append("start")
        self.running = True

    async def aclose(self) -> None:
        self.calls.append("aclose")
        self.running = False
        self.closed = True


async def test_live_answers_200_and_ready_answers_200_for_a_clean_store() -> None:
    store = fresh_store()
    await store.scan()
    app = papyra.asgi.HealthEndpoints(store)
    status, headers, body = await call(app, "/live", root_path="/health")
    assert status == 200
    assert orjson.loads(body) == {"status": "alive"}
    status, headers, body = await call(app, "/ready", root_path="/health")
    assert status == 200
    assert headers[b"content-type"] == b"application/json"
    doc = orjson.loads(body)
    assert doc["ready"] is True
    assert doc["checks"]["store"]["last_scan"]["clean"] is True


async def test_ready_is_503_with_the_reason_when_the_last_scan_found_anomalies() -> None:
    store = CorruptMemoryStore()
    await store.scan()
    status, _, body = await call(papyra.asgi.HealthEndpoints(store), "/health/ready")
    doc = orjson.loads(body)
    assert status == 503
    assert doc["reason"] == "anomalies"
    assert "checksum_mismatch" in doc["detail"]


async def test_ready_is_503_until_the_system_runs_and_after_it_closed() -> None:
    system = System(fresh_store())
    app = papyra.asgi.HealthEndpoints(system)
    status, _, body = await call(app, "/ready")
    assert status == 503
    assert orjson.loads(body)["reason"] == "not_started"
    await system.start()
    status, _, body = await call(app, "/ready")
    assert status == 200
    assert orjson.loads(body)["checks"]["system"]["state"] == "running"
    await system.aclose()
    status, _, body = await call(app, "/ready")
    assert (status, orjson.loads(body)["reason"]) == (503, "closing")


async def test_ready_rescans_when_a_scan_interval_is_given() -> None:
    store = fresh_store()
    app = papyra.asgi.HealthEndpoints(store, scan_interval=60)
    await call(app, "/ready")
    assert store.metrics.scans == 1


async def test_ready_reports_a_store_that_failed_durably_as_unhealthy() -> None:
    store = fresh_store()
    store.unhealthy_reason = "fsync failed: EIO"
    status, _, body = await call(papyra.asgi.HealthEndpoints(store), "/ready")
    assert status == 503
    assert orjson.loads(body)["reason"] == "unhealthy"


async def test_metrics_endpoint_serves_prometheus_text_and_json() -> None:
    store = fresh_store()
    await store.record_event(actor_address="orders:1", event_type="ActorStarted")
    app = papyra.asgi.MetricsEndpoint(store, store_gauges=True)
    status, headers, body = await call(app, "/metrics")
    assert status == 200
    assert headers[b"content-type"].startswith(b"text/plain; version=0.0.4")
    assert b'papyra_store_records_written_total{backend="memory",kind="event"} 1.0' in body
    assert b'papyra_store_records{backend="memory",kind="event"} 1.0' in body
    status, headers, body = await call(app, "/metrics", query=b"format=json")
    assert headers[b"content-type"] == b"application/json"
    assert "papyra_store_append_batches_total" in orjson.loads(body)["metrics"]


async def test_endpoints_refuse_other_methods_and_answer_head_without_body() -> None:
    app = papyra.asgi.Endpoints(fresh_store())
    status, headers, _ = await call(app, "/metrics", method="POST")
    assert status == 405
    assert headers[b"allow"] == b"GET, HEAD"
    status, headers, body = await call(app, "/health/live", method="HEAD")
    assert status == 200
    assert body == b""
    assert int(headers[b"content-length"]) > 0


async def test_a_bearer_token_is_required_when_configured(tmp_path: Any) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    app = papyra.asgi.Endpoints(fresh_store(), token_file=token_file)
    status, headers, body = await call(app, "/metrics")
    assert status == 401
    assert headers[b"www-authenticate"].startswith(b"Bearer")
    assert b"s3cret" not in body
    status, _, _ = await call(app, "/metrics", headers=[(b"authorization", b"Bearer wrong")])
    assert status == 401
    status, _, _ = await call(app, "/metrics",
                              headers=[(b"authorization", b"Bearer s3cret-token")])
    assert status == 200


def test_an_empty_token_file_is_a_configuration_error(tmp_path: Any) -> None:
    (tmp_path / "token").write_text("  \n")
    with pytest.raises(papyra.ConfigError, match="empty"):
        papyra.asgi.Endpoints(fresh_store(), token_file=tmp_path / "token")


async def test_lifespan_starts_the_system_before_and_closes_it_after_the_app() -> None:
    system = System()

    class App:
        state = type("State", (), {})()

    async with papyra.asgi.lifespan(system)(App()) as state:
        assert system.calls == ["start"]
        assert state is None
        assert App.state.papyra is system  # type: ignore[attr-defined]
    assert system.calls == ["start", "aclose"]


async def test_lifespan_nests_the_applications_own_lifespan() -> None:
    import contextlib

    system = System()
    order: list[str] = []

    @contextlib.asynccontextmanager
    async def mine(app: Any) -> Any:
        order.append(f"inner up, system {system.calls}")
        yield {"x": 1}
        order.append(f"inner down, system {system.calls}")

    async with papyra.asgi.lifespan(system, inner=mine)(object()) as state:
        assert state == {"x": 1}
    assert order == ["inner up, system ['start']", "inner down, system ['start']"]
    assert system.calls == ["start", "aclose"]


async def run_lifespan(app: Any) -> list[dict[str, Any]]:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for t in ("lifespan.startup", "lifespan.shutdown"):
        queue.put_nowait({"type": t})
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, queue.get, send)
    return sent


async def test_lifespan_middleware_wraps_an_app_without_lifespan_support() -> None:
    async def bare(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise RuntimeError("only http")

    system = System()
    sent = await run_lifespan(papyra.asgi.LifespanMiddleware(bare, system))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete",
                                         "lifespan.shutdown.complete"]
    assert system.calls == ["start", "aclose"]


async def test_lifespan_middleware_lets_the_app_run_its_own_lifespan() -> None:
    seen: list[str] = []
    system = System()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            seen.append(f"{message['type']} with system {system.calls}")
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return

    sent = await run_lifespan(papyra.asgi.LifespanMiddleware(app, system))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete",
                                         "lifespan.shutdown.complete"]
    assert seen == ["lifespan.startup with system ['start']",
                    "lifespan.shutdown with system ['start']"]
    assert system.calls == ["start", "aclose"]


async def test_lifespan_middleware_reports_a_failed_start() -> None:
    class Refuses(System):
        async def start(self) -> None:
            raise papyra.AnomaliesFoundError("the store has anomalies")

    sent = await run_lifespan(papyra.asgi.LifespanMiddleware(lambda *a: None, Refuses()))
    assert sent == [{"type": "lifespan.startup.failed", "message": "the store has anomalies"}]


def test_importing_papyra_asgi_imports_no_web_framework() -> None:
    import subprocess
    import sys

    code = ("import sys, papyra.asgi; "
            "print(sorted(m for m in ('starlette', 'fastapi', 'uvicorn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"


async def test_endpoints_wrapped_in_the_lifespan_middleware_are_a_complete_app() -> None:
    system = System(fresh_store())
    app = papyra.asgi.LifespanMiddleware(papyra.asgi.Endpoints(system), system)
    sent = await run_lifespan(app)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete",
                                         "lifespan.shutdown.complete"]
    assert system.calls == ["start", "aclose"]
    status, _, _ = await call(app, "/health/live")
    assert status == 200
