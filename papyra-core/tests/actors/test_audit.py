"""audit(): counts, registry health, persisted as an audit record."""

from __future__ import annotations

import pytest
from actor_helpers import Echo, settle
from papyra import ActorStoppedError, ActorSystem
from papyra.backends.memory import MemoryStore


async def test_audit_counts_actors_registry_and_dead_letters_and_is_persisted(
    store: MemoryStore,
) -> None:
    async with ActorSystem(system_id="test", persistence=store) as system:
        system.spawn(Echo, name="a")
        system.spawn(Echo)
        gone = system.spawn(Echo)
        await gone.stop()
        with pytest.raises(ActorStoppedError):
            await gone.tell("late")
        await settle()
        report = system.audit()
        assert (report.total_actors, report.alive_actors, report.stopping_actors,
                report.restarting_actors) == (2, 2, 0, 0)
        assert (report.registry_size, report.registry_orphans, report.registry_dead) == (
            1, (), ())
        assert report.dead_letters_count == 1
        assert [a.address for a in report.actors] == ["test:1", "test:2"]
        assert report.summary_lines()[1] == "actors: total=2 alive=2 stopping=0 restarting=0"
        assert report.panel_lines()[0].startswith("RID")
        assert system.audit(include_actor_details=False).actors == ()
    rows = await store.read_all(kinds="audit")
    assert len(rows) == 2
    assert (rows[0].total_actors, rows[0].alive_actors, rows[0].dead_letters_count) == (2, 2, 1)
    assert rows[0].timestamp == report.timestamp
