"""A real 3-master Redis Cluster built from redis-server processes on loopback ports: the
conformance suite and a consumer group run against it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from papyra import EventRecord
from papyra.testing import StoreConformance
from papyra_backend_redis import ConsumerGroup, RedisStore
from papyra_backend_redis.testing import RedisClusterProcesses, require_redis_server

from .test_conformance import corrupt_one_entry


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcesses]:
    require_redis_server()
    c = RedisClusterProcesses(Path(tmp_path_factory.mktemp("cluster")), masters=3).start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def cluster_url(cluster: RedisClusterProcesses) -> str:
    return cluster.url(prefix=f"c{uuid.uuid4().hex[:8]}", system_id="orders")


class TestRedisClusterConformance(StoreConformance):
    @pytest.fixture
    def store_factory(self, cluster_url: str) -> Any:
        async def factory(**options: Any) -> RedisStore:
            return RedisStore(cluster_url, **options)

        return factory

    @pytest.fixture
    def damage(self) -> Any:
        return corrupt_one_entry


async def test_a_consumer_group_works_on_the_cluster(cluster_url: str) -> None:
    async with RedisStore(cluster_url) as store:
        appended = await store.append([
            EventRecord(system_id="orders", actor_address=f"a:{i}", event_type="E")
            for i in range(6)])
        seen: list[str] = []
        group = ConsumerGroup(store, "indexer", "c1", block_ms=50)
        await group.run(lambda d: seen.append(d.record_id or ""), max_idle_polls=1)
        assert seen == [r.id for r in appended]
        assert (await store.scan()).clean


async def test_systems_land_on_different_nodes_but_each_stays_in_one_slot(
    cluster: RedisClusterProcesses,
) -> None:
    from redis.asyncio import RedisCluster

    client = RedisCluster.from_url(cluster.url().replace("?cluster=1", ""))
    try:
        slots = set()
        for sid in ("orders", "billing", "shipping", "users", "search"):
            keys = RedisStore(cluster.url(system_id=sid)).keys
            mine = {client.keyslot(k) for k in (*keys.data_streams, keys.seq, keys.gaps)}
            assert len(mine) == 1
            slots |= mine
        assert len(slots) > 1
    finally:
        await client.aclose()
