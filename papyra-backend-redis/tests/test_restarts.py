"""The store across Redis restarts: a short outage is ridden out, an empty restart is a new log."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from papyra import EventRecord
from papyra.errors import StoreNotFoundError
from papyra_backend_redis import RedisStore


def events(n: int) -> list[EventRecord]:
    return [EventRecord(system_id="orders", actor_address=f"a:{i}", event_type="E")
            for i in range(n)]


async def test_appends_ride_out_a_short_restart_with_aof(own_server: Any) -> None:
    server = own_server(True)
    async with RedisStore(server.url(system_id="orders")) as store:
        await store.append(events(5))
        server.stop(kill=True)
        restarter = threading.Thread(target=lambda: (time.sleep(0.3), server.start()))
        restarter.start()
        try:
            stored = await store.append(events(2))
        finally:
            await asyncio.to_thread(restarter.join)
        assert [r.seq for r in stored] == [6, 7]
        assert [r.seq for r in await store.read_all()] == list(range(1, 8))
        assert (await store.scan()).clean


async def test_after_an_empty_restart_the_store_is_missing_and_counts_from_one(
    own_server: Any,
) -> None:
    server = own_server(False)
    async with RedisStore(server.url(system_id="orders")) as store:
        await store.append(events(3))
        await asyncio.to_thread(server.restart, keep_data=False)
        with pytest.raises(StoreNotFoundError):
            await store.scan()
        assert not await store.exists()
        assert [r.seq for r in await store.append(events(1))] == [1]
