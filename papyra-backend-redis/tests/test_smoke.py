from __future__ import annotations

import asyncio

import pytest
from papyra import EventRecord
from papyra.errors import ConfigError
from papyra_backend_redis import RedisStore


async def test_appended_records_read_back_in_order_with_contiguous_seqs(store: RedisStore) -> None:
    await store.record_event(actor_address="orders:1", event_type="ActorStarted")
    await store.record_audit(total_actors=1, alive_actors=1, stopping_actors=0,
                             restarting_actors=0, registry_size=1, dead_letters_count=0)
    await store.record_dead_letter(target=None, message_type="Ping", payload={"a": 1})
    recs = await store.read_all()
    assert [r.seq for r in recs] == [1, 2, 3]
    assert [r.kind for r in recs] == ["event", "audit", "dead_letter"]
    newest = await store.read_all(limit=2)
    assert [r.seq for r in newest] == [2, 3]
    report = await store.scan()
    assert report.clean, report.anomalies
    assert report.records == 3


async def script_calls(store: RedisStore) -> int:
    stats = await store.client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k in ("cmdstat_evalsha",
                                                                   "cmdstat_eval"))


async def test_concurrent_appends_are_coalesced_into_fewer_round_trips(
    store: RedisStore,
) -> None:
    await store.record_event(actor_address="warm", event_type="E")
    before = await script_calls(store)

    async def one(i: int) -> None:
        await store.append([EventRecord(system_id="orders", actor_address=f"a:{i}",
                                        event_type="E")])

    await asyncio.gather(*(one(i) for i in range(50)))
    calls = await script_calls(store) - before
    assert store.metrics.append_batches == 51
    assert calls < 50, f"{calls} script calls for 50 concurrent appends"
    recs = await store.read_all()
    assert [r.seq for r in recs] == list(range(1, 52))


@pytest.mark.parametrize("query", ["stale_pending_ms=soon", "max_record_bytes=-3",
                                   "groups=indexer:bogus", "fsync=sometimes"])
def test_bad_options_are_configuration_errors(query: str) -> None:
    with pytest.raises(ConfigError):
        RedisStore(f"redis://127.0.0.1:1/0?system_id=o&{query}")


def test_unknown_options_are_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="max_segment_bytes"):
        RedisStore("redis://127.0.0.1:1/0", max_segment_bytes=10)


def test_braces_in_the_system_id_are_refused() -> None:
    with pytest.raises(ConfigError):
        RedisStore("redis://127.0.0.1:1/0?system_id=a{b}")
