"""The operator workflows against a real redis-server (started on a free loopback port), with
a password that must never appear in any output."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cli_subprocess import clean_env, cli, error_lines, ndjson, out_json, papyra
from papyra import EventRecord, open_store

redis_testing = pytest.importorskip("papyra_backend_redis.testing")

SECRET = "op-S3cret-pw"
pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    redis_testing.require_redis_server()
    s = redis_testing.RedisServer(Path(tmp_path_factory.mktemp("redis-cli-e2e")),
                                  users=[("papyra", SECRET)]).start()
    yield s
    s.stop()


@pytest.fixture
def prefix() -> str:
    return f"e2e{uuid.uuid4().hex[:8]}"


@pytest.fixture
def url(server: object, prefix: str) -> str:
    return server.url(user="papyra", password=SECRET, prefix=prefix,  # type: ignore[attr-defined]
                      system_id="orders")


def seed(url: str, n: int = 6) -> None:
    async def go() -> None:
        async with open_store(url) as store:
            await store.append([EventRecord(system_id="orders", actor_address=f"orders:{i % 2}",
                                            event_type="ActorStarted") for i in range(n)])

    asyncio.run(go())


def break_one_entry(server: object, prefix: str) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=server.port,  # type: ignore[attr-defined]
                         username="papyra", password=SECRET)
    client.xadd(f"{prefix}:{{orders}}:events", {"data": b"{not json"})
    client.close()


def no_secret(*procs: object) -> None:
    for p in procs:
        assert SECRET not in p.stdout + p.stderr  # type: ignore[attr-defined]


def test_scan_recover_and_doctor_on_redis_never_print_the_password(
        server: object, prefix: str, url: str) -> None:
    seed(url)
    env = clean_env(PAPYRA_STORE=url)
    clean = papyra("persistence", "scan", "--json", env=env)
    assert clean.returncode == 0, clean.stderr
    data = out_json(clean)
    assert data["records"] == 6
    assert "***" in data["store"]
    break_one_entry(server, prefix)
    dirty = cli("persistence", "scan", "--json", env=env)
    assert dirty.returncode == 1
    assert [a["kind"] for a in out_json(dirty)["anomalies"]] == ["malformed_entry"]
    gate = cli("doctor", "run", "--mode", "FAIL_ON_ANOMALY", env=env)
    assert gate.returncode == 1
    fixed = cli("doctor", "run", "--mode", "RECOVER", "--recovery-mode", "QUARANTINE", "--json",
                env=env)
    assert fixed.returncode == 0, fixed.stderr
    assert out_json(fixed)["recovery"]["after"]["clean"] is True
    again = cli("persistence", "startup-check", "--mode", "fail_on_anomaly", env=env)
    assert again.returncode == 0
    no_secret(clean, dirty, gate, fixed, again)


def test_inspect_and_compact_on_redis(url: str) -> None:
    seed(url, 8)
    env = clean_env(PAPYRA_STORE=url)
    events = cli("inspect", "events", "--limit", "3", "--json", env=env)
    assert events.returncode == 0, events.stderr
    assert [e["seq"] for e in ndjson(events)] == [6, 7, 8]
    compact = cli("persistence", "compact", "--max-records", "2", "--json", env=env)
    assert compact.returncode == 0, compact.stderr
    assert out_json(compact)["after_records"] == 2
    summary = cli("inspect", "summary", "--json", env=env)
    assert out_json(summary)["records_by_kind"] == {"event": 2}
    no_secret(events, compact, summary)


def test_a_wrong_password_or_an_unreachable_redis_is_exit_4(server: object, prefix: str) -> None:
    wrong = server.url(user="papyra", password="Wr0ng-" + SECRET,  # type: ignore[attr-defined]
                       prefix=prefix, system_id="orders")
    proc = papyra("persistence", "scan", "--store", wrong)
    assert proc.returncode == 4
    assert len(error_lines(proc)) == 1
    no_secret(proc)
    down = f"redis://papyra:{SECRET}@127.0.0.1:1/0?prefix={prefix}&system_id=orders"
    proc = cli("doctor", "run", "--store", down)
    assert proc.returncode == 4
    no_secret(proc)
