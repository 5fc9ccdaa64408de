"""``papyra metrics show`` and ``papyra metrics serve`` as real subprocesses on real JSON stores,
with real HTTP requests: readiness, 503 on a corrupt store, bearer token, SIGTERM, and proof
that a GET never changes a byte of the store."""

from __future__ import annotations

import asyncio
import hashlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import papyra
import pytest

PAPYRA = str(Path(sys.executable).with_name("papyra"))
ENV = dict(os.environ)
for _var in ("PAPYRA_STORE", "PAPYRA_CONFIG", "PAPYRA_DISABLE_PLUGINS"):
    ENV.pop(_var, None)


def promtool_check(exposition: bytes) -> None:
    path = shutil.which("promtool")
    if path is None:
        message = "promtool not found (Debian package 'prometheus')"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    result = subprocess.run([path, "check", "metrics"], input=exposition, capture_output=True,
                            timeout=60, check=False)
    problems = (result.stdout + result.stderr).decode()
    assert result.returncode == 0, problems
    assert not problems.strip(), problems


def seed(path: Path, n: int = 5) -> None:
    async def main() -> None:
        async with papyra.open_store(f"json://{path}") as store:
            await store.append([
                papyra.EventRecord(system_id="orders", actor_address=f"orders:{i}",
                                   event_type="ActorStarted", timestamp=1_763_771_000.0 + i)
                for i in range(n)
            ])
            await store.record_dead_letter(target="orders:9", message_type="Ping",
                                           payload={"n": 1}, expects_reply=False)

    asyncio.run(main())


def corrupt_line(path: Path, line_no: int) -> None:
    """Flip one character inside a record's payload: valid JSON, wrong checksum."""
    lines = path.read_bytes().split(b"\n")
    lines[line_no - 1] = lines[line_no - 1].replace(b"ActorStarted", b"ActorStartee", 1)
    path.write_bytes(b"\n".join(lines))


def fingerprint(directory: Path) -> dict[str, tuple[str, int, float]]:
    out = {}
    for p in sorted(directory.rglob("*")):
        st = p.stat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        out[str(p.relative_to(directory))] = (digest, st.st_mode, st.st_mtime)
    return out


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


def run_papyra(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PAPYRA, *args], capture_output=True, text=True, env=ENV, timeout=120,
                          check=False)


# --------------------------------------------------------------------------- show


def test_show_json_reports_records_by_kind_bytes_age_and_last_scan(store_dir: Path) -> None:
    log = store_dir / "events.ndjson"
    seed(log)
    result = run_papyra("metrics", "show", "--path", str(log), "--json")
    assert result.returncode == 0, result.stderr
    doc = orjson.loads(result.stdout)
    assert doc["records_by_kind"] == {"event": 5, "dead_letter": 1}
    assert doc["records"] == 6
    assert doc["bytes"] == log.stat().st_size
    assert doc["oldest_timestamp"] == 1_763_771_000.0
    assert doc["oldest_record_age_seconds"] > 0
    assert doc["last_scan"]["clean"] is True
    assert doc["store"] == f"json://{log}"


def test_show_prometheus_output_passes_promtool(store_dir: Path) -> None:
    log = store_dir / "events.ndjson"
    seed(log)
    corrupt_line(log, 2)
    result = run_papyra("metrics", "show", "--path", str(log), "--format", "prometheus")
    assert result.returncode == 0, result.stderr
    assert 'papyra_store_records{backend="json",kind="dead_letter"} 1.0' in result.stdout
    assert 'papyra_store_last_scan_clean{backend="json"} 0.0' in result.stdout
    assert ('papyra_store_last_scan_anomalies{anomaly_kind="checksum_mismatch",backend="json"} '
            '1.0') in result.stdout
    promtool_check(result.stdout.encode())


def test_show_prints_a_table_for_people_on_stdout(store_dir: Path) -> None:
    log = store_dir / "events.ndjson"
    seed(log)
    result = run_papyra("metrics", "show", "--path", str(log))
    assert result.returncode == 0
    assert "last scan" in result.stdout
    assert "clean" in result.stdout


def test_show_on_a_missing_store_exits_4_without_a_traceback(store_dir: Path) -> None:
    result = run_papyra("metrics", "show", "--path", str(store_dir / "nope.ndjson"), "--json")
    assert result.returncode == 4
    assert "Traceback" not in result.stderr
    assert not (store_dir / "nope.ndjson").exists()


def test_show_refuses_json_together_with_prometheus(store_dir: Path) -> None:
    result = run_papyra("metrics", "show", "--path", str(store_dir / "x.ndjson"), "--json",
                        "--format", "prometheus")
    assert result.returncode == 2


# --------------------------------------------------------------------------- serve


class Server:
    """``papyra metrics serve`` in a subprocess on a free port."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([PAPYRA, "metrics", "serve", "--port", "0", *args],
                                     stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=ENV)
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        self.port = self._wait_for_port()

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)
            self.lines.put(line)

    def _wait_for_port(self) -> int:
        while True:
            try:
                line = self.lines.get(timeout=60)
            except queue.Empty:
                raise AssertionError(f"server did not start: {''.join(self.stderr)}") from None
            if "serving" in line:
                return int(line.split(" on http://127.0.0.1:")[1].split(" ")[0])

    def get(self, path: str, headers: dict[str, str] | None = None
            ) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                         headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[Server] = []

    def start(*args: str) -> Server:
        server = Server(*args)
        servers.append(server)
        return server

    yield start
    for s in servers:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait(timeout=30)


def test_serve_answers_ready_live_and_metrics_for_a_clean_store(serve: Any,
                                                                store_dir: Path) -> None:
    log = store_dir / "events.ndjson"
    seed(log)
    server = serve("--path", str(log))
    status, _, body = server.get("/health/live")
    assert (status, orjson.loads(body)) == (200, {"status": "alive"})
    status, headers, body = server.get("/health/ready")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert orjson.loads(body)["ready"] is True
    status, headers, body = server.get("/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert b'papyra_store_records{backend="json",kind="event"} 5.0' in body
    assert b'papyra_store_up{backend="json"} 1.0' in body
    promtool_check(body)
    status, headers, body = server.get("/metrics?format=json")
    assert "papyra_store_size_bytes" in orjson.loads(body)["metrics"]
    assert server.stop() == 0


def test_serve_is_not_ready_with_the_reason_as_json_on_a_corrupt_store(serve: Any,
                                                                       store_dir: Path) -> None:
    log = store_dir / "events.ndjson"
    seed(log)
    corrupt_line(log, 3)
    server = serve("--path", str(log))
    status, _, body = server.get("/health/ready")
    doc = orjson.loads(body)
    assert status == 503
    assert doc["ready"] is False
    assert doc["reason"] == "anomalies"
    assert "checksum_mismatch x1" in doc["detail"]
    assert server.get("/health/live")[0] == 200
    assert server.stop() == 0


def test_serve_treats_a_store_without_a_log_as_a_first_boot(serve: Any,
                                                            store_dir: Path) -> None:
    log = store_dir / "later.ndjson"
    server = serve("--path", str(log))
    status, _, body = server.get("/health/ready")
    assert status == 200
    assert orjson.loads(body)["checks"]["store"]["exists"] is False
    assert not log.exists()
    assert server.stop() == 0


def test_serve_requires_the_bearer_token_from_the_token_file(serve: Any, store_dir: Path,
                                                             tmp_path: Path) -> None:
    log = store_dir / "events.ndjson"
    seed(log)
    token_file = tmp_path / "token"
    token_file.write_text("tok-3f9a\n")
    token_file.chmod(0o600)
    server = serve("--path", str(log), "--token-file", str(token_file))
    for path in ("/metrics", "/health/ready", "/health/live"):
        status, headers, _body = server.get(path)
        assert status == 401
        assert headers["WWW-Authenticate"].startswith("Bearer")
        assert server.get(path, {"Authorization": "Bearer wrong"})[0] == 401
        assert server.get(path, {"Authorization": "Bearer tok-3f9a"})[0] == 200
    assert server.stop() == 0
    assert "tok-3f9a" not in "".join(server.stderr)


def test_serve_shuts_down_cleanly_on_sigterm(serve: Any, store_dir: Path) -> None:
    log = store_dir / "events.ndjson"
    seed(log)
    server = serve("--path", str(log))
    assert server.get("/metrics")[0] == 200
    assert server.stop() == 0
    stderr = "".join(server.stderr)
    assert "metrics server stopped" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("damaged", [False, True], ids=["clean", "corrupt"])
def test_a_get_never_changes_a_byte_of_the_store(serve: Any, store_dir: Path,
                                                 damaged: bool) -> None:
    log = store_dir / "events.ndjson"
    seed(log)
    if damaged:
        corrupt_line(log, 2)
        with log.open("ab") as f:
            f.write(b'{"v":1,"seq":7,"id":"torn')  # a torn tail as well
    before = fingerprint(store_dir)
    server = serve("--path", str(log), "--scan-interval", "0", "--cache-seconds", "0")
    for _ in range(3):
        for path in ("/metrics", "/health/ready", "/health/live", "/metrics?format=json",
                     "/nothing"):
            server.get(path)
    assert server.stop() == 0
    assert fingerprint(store_dir) == before


def test_a_get_never_changes_a_byte_of_a_rotation_store(serve: Any, store_dir: Path) -> None:
    async def fill() -> None:
        async with papyra.open_store(f"rotation://{store_dir}") as store:
            await store.append([papyra.EventRecord(system_id="orders", actor_address="a:1",
                                                   event_type="ActorStarted")
                                for _ in range(4)])

    asyncio.run(fill())
    corrupt_line(next(store_dir.glob("segment-*.ndjson")), 2)
    before = fingerprint(store_dir)
    server = serve("--path", str(store_dir), "--scan-interval", "0", "--cache-seconds", "0")
    status, _, body = server.get("/health/ready")
    assert status == 503
    assert orjson.loads(body)["reason"] == "anomalies"
    for path in ("/metrics", "/health/ready", "/metrics?format=json"):
        assert server.get(path)[0] in (200, 503)
    assert server.stop() == 0
    assert fingerprint(store_dir) == before


def test_serve_refuses_a_port_in_use_with_exit_2(serve: Any, store_dir: Path) -> None:
    server = serve("--path", str(store_dir / "events.ndjson"))
    result = run_papyra("metrics", "serve", "--path", str(store_dir / "events.ndjson"),
                        "--port", str(server.port))
    assert result.returncode == 2
    assert "cannot listen" in result.stderr
    assert server.stop() == 0


def test_serve_refuses_other_methods(serve: Any, store_dir: Path) -> None:
    server = serve("--path", str(store_dir / "events.ndjson"))
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}/metrics", data=b"x",
                                     method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=30)
    assert info.value.code == 405
    assert server.stop() == 0


# --------------------------------------------------------------------------- redis

REDIS_SECRET = "metrics-Pa55-secret"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from papyra_backend_redis.testing import RedisServer, require_redis_server

    require_redis_server()
    server = RedisServer(Path(tmp_path_factory.mktemp("redis-metrics")),
                         users=[("papyra", REDIS_SECRET)]).start()
    yield server
    server.stop()


def test_serve_is_ready_on_a_reachable_redis_and_shows_its_records(serve: Any,
                                                                   redis_server: Any) -> None:
    url = redis_server.url(user="papyra", password=REDIS_SECRET, prefix="metricsok",
                           system_id="orders")

    async def seed_redis() -> None:
        async with papyra.open_store(url) as store:
            await store.append([papyra.EventRecord(system_id="orders", actor_address="a:1",
                                                   event_type="E") for _ in range(3)])

    asyncio.run(seed_redis())
    server = serve("--store", url)
    status, _, body = server.get("/health/ready")
    assert status == 200, body
    status, _, body = server.get("/metrics")
    assert b'papyra_store_records{backend="redis",kind="event"} 3.0' in body
    assert server.stop() == 0
    assert REDIS_SECRET not in "".join(server.stderr)


def test_serve_is_not_ready_while_redis_is_unreachable_and_never_shows_the_password(
    serve: Any,
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    url = f"redis://papyra:{REDIS_SECRET}@127.0.0.1:{closed_port}/0?system_id=orders"
    server = serve("--store", url, "--timeout", "3")
    status, _, body = server.get("/health/ready")
    doc = orjson.loads(body)
    assert status == 503
    assert doc["reason"] == "unreachable"
    assert doc["checks"]["store"]["store"].startswith("redis://papyra:***@")
    assert REDIS_SECRET.encode() not in body
    status, _, body = server.get("/metrics")
    assert b'papyra_store_up{backend="redis"} 0.0' in body
    assert server.stop() == 0
    assert REDIS_SECRET not in "".join(server.stderr)
