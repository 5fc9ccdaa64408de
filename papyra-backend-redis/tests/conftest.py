"""A real redis-server per test session (and a fresh key prefix per test).

Without redis-server the tests skip, except in CI (``CI=true``) where a missing Redis fails.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from papyra_backend_redis import RedisStore
from papyra_backend_redis.testing import RedisServer, require_redis_server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    require_redis_server()
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def redis_url(redis_server: RedisServer, prefix: str) -> str:
    return redis_server.url(prefix=prefix, system_id="orders")


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    s = RedisStore(redis_url)
    try:
        yield s
    finally:
        await s.aclose()


@pytest.fixture
def server_dir(tmp_path: Path) -> Path:
    return tmp_path / "server"
