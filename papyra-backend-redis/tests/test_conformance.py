"""papyra's backend conformance suite against a real redis-server."""

from __future__ import annotations

from typing import Any

import pytest
from papyra.store import Store
from papyra.testing import StoreConformance
from papyra_backend_redis import RedisStore
from papyra_backend_redis.keys import text


async def corrupt_one_entry(store: Store) -> None:
    """Flip a byte in the data of the middle entry of the events stream.

    Stream entries cannot be edited in place, so the stream is rebuilt with the same entry ids
    and the same fields, one of them damaged: what a bad writer or a bit flip leaves behind.
    """
    assert isinstance(store, RedisStore)
    client, key = store.client, store.keys.stream("event")
    rows = await client.xrange(key)
    assert len(rows) >= 3
    victim = len(rows) // 2
    await client.delete(key)
    for i, (eid, fields) in enumerate(rows):
        fields = {text(k): v for k, v in fields.items()}
        if i == victim:
            data = bytearray(fields["data"])
            data[20] ^= 0x01
            fields["data"] = bytes(data)
        await client.xadd(key, fields, id=eid)


class TestRedisStoreConformance(StoreConformance):
    @pytest.fixture
    def store_factory(self, redis_url: str) -> Any:
        async def factory(**options: Any) -> RedisStore:
            return RedisStore(redis_url, **options)

        return factory

    @pytest.fixture
    def damage(self) -> Any:
        return corrupt_one_entry
