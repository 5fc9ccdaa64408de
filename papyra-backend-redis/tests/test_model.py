"""Property test: the Redis store answers every query like papyra's memory backend (the model),
for random batches of mixed kinds, random retention and small read chunks."""

from __future__ import annotations

import asyncio
import time
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st
from papyra import AuditRecord, DeadLetterRecord, EventRecord, RetentionPolicy
from papyra.backends.memory import MemoryStore
from papyra.records import Record
from papyra_backend_redis import RedisStore
from papyra_backend_redis.testing import RedisServer

KINDS = ("event", "audit", "dead_letter")


def make(kind: str, i: int, ts: float) -> Record:
    if kind == "event":
        return EventRecord(system_id="m", actor_address=f"a:{i}", event_type="E",
                           payload={"i": i}, timestamp=ts)
    if kind == "audit":
        return AuditRecord(system_id="m", total_actors=i, alive_actors=0, stopping_actors=0,
                           restarting_actors=0, registry_size=0, dead_letters_count=0,
                           timestamp=ts)
    return DeadLetterRecord(system_id="m", target=None, message_type="M", payload=i,
                            timestamp=ts)


batches = st.lists(st.lists(st.sampled_from(KINDS), min_size=1, max_size=6), min_size=1,
                   max_size=6)
queries = st.fixed_dictionaries({
    "kinds": st.one_of(st.none(), st.lists(st.sampled_from(KINDS), min_size=1, max_size=2)),
    "limit": st.one_of(st.none(), st.integers(0, 12)),
    "after_seq": st.one_of(st.none(), st.integers(0, 30)),
    "newest_first": st.booleans(),
})


@settings(max_examples=25, deadline=None)
@given(batches=batches, queries=st.lists(queries, min_size=1, max_size=4),
       keep=st.one_of(st.none(), st.integers(0, 15)), compact=st.booleans())
def test_reads_match_the_memory_model(
    redis_server: RedisServer, batches: list[list[str]], queries: list[dict[str, object]],
    keep: int | None, compact: bool,
) -> None:
    async def body() -> None:
        policy = RetentionPolicy(max_records=keep) if keep is not None else None
        url = redis_server.url(prefix=f"m{uuid.uuid4().hex[:10]}", system_id="m")
        store = RedisStore(url, retention=policy, chunk=3)
        model = MemoryStore(retention=policy, system_id="m")
        try:
            base = time.time() - 1000
            i = 0
            for kinds in batches:
                recs = []
                for kind in kinds:
                    recs.append(make(kind, i, base + i))
                    i += 1
                got = await store.append(recs)
                want = await model.append(recs)
                assert [r.seq for r in got] == [r.seq for r in want]
            if compact and keep is not None:
                a = await store.compact()
                b = await model.compact()
                assert (a.before_records, a.after_records) == (b.before_records,
                                                               b.after_records)
            for q in queries:
                for gaps in (False, True):
                    mine = [(r.kind, r.seq, r.id if r.kind != "gap" else None)
                            for r in await store.read_all(include_gaps=gaps, **q)]
                    theirs = [(r.kind, r.seq, r.id if r.kind != "gap" else None)
                              for r in await model.read_all(include_gaps=gaps, **q)]
                    assert mine == theirs, (q, gaps)
            assert (await store.scan()).clean
        finally:
            await store.aclose()
            await model.aclose()

    asyncio.run(body())
