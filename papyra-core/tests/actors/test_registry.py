"""Names, lookups, refs by type, broadcast, stop_all and the control panel."""

from __future__ import annotations

import asyncio

import pytest
from actor_helpers import Echo, Recorder, Tally, settle
from papyra import ActorAddress, ActorStoppedError, ActorSystem


async def test_ref_for_takes_an_address_its_text_a_name_or_an_id(system: ActorSystem) -> None:
    ref = system.spawn(Echo, name="echo")
    for key in (ref.address, str(ref.address), f"test://{ref.address.actor_id}", "echo",
                ref.address.actor_id, ref):
        assert system.ref_for(key) == ref
    assert system.ref_for_name("echo") == ref
    assert system.list_names() == {"echo": ref.address}


async def test_a_name_can_be_taken_only_once(system: ActorSystem) -> None:
    system.spawn(Echo, name="one")
    with pytest.raises(ValueError, match="already exists"):
        system.spawn(Echo, name="one")


async def test_a_name_is_released_when_its_actor_stops(system: ActorSystem) -> None:
    ref = system.spawn(Echo, name="one")
    await ref.stop()
    with pytest.raises(ActorStoppedError):
        system.ref_for("one")
    again = system.spawn(Echo, name="one")
    assert again != ref


async def test_ref_for_refuses_unknown_stopped_and_remote_actors(system: ActorSystem) -> None:
    ref = system.spawn(Echo)
    await ref.stop()
    with pytest.raises(ActorStoppedError, match="no running actor"):
        system.ref_for(ref.address)
    with pytest.raises(ActorStoppedError, match="remote"):
        system.ref_for(ActorAddress("elsewhere", 1))
    with pytest.raises(ActorStoppedError, match="no actor named"):
        system.ref_for("nobody")


async def test_address_parse_accepts_both_spellings() -> None:
    assert ActorAddress.parse("orders:3") == ActorAddress("orders", 3)
    assert ActorAddress.parse("orders://3") == ActorAddress("orders", 3)
    assert ActorAddress.from_dict(ActorAddress("a", 1).to_dict()) == ActorAddress("a", 1)
    with pytest.raises(ValueError, match="not an actor address"):
        ActorAddress.parse("orders")


async def test_refs_by_type_matches_class_name_qualname_and_dotted_path(
    system: ActorSystem,
) -> None:
    echoes = {system.spawn(Echo) for _ in range(2)}
    system.spawn(Tally)
    for key in (Echo, "Echo", f"{Echo.__module__}.{Echo.__qualname__}"):
        assert set(system.refs_by_type(key)) == echoes
    assert len(system.refs()) == 3


async def test_broadcast_tells_every_matching_actor_and_counts_them(
    system: ActorSystem,
) -> None:
    recorders = [system.spawn(Recorder) for _ in range(3)]
    system.spawn(Tally)
    assert await system.broadcast("hello", actor_type=Recorder) == 3
    for r in recorders:
        assert await r.ask("get") == ["hello"]
    assert await system.broadcast("x") == 4


async def test_stop_all_stops_every_actor_without_closing_the_system(
    system: ActorSystem,
) -> None:
    refs = [system.spawn(Echo) for _ in range(4)]
    await system.stop_all()
    assert not any(r.is_alive() for r in refs)
    assert system.running
    assert await system.spawn(Echo).ask("still open") == "still open"


async def test_control_panel_lists_every_actor_with_its_family(system: ActorSystem) -> None:
    class Parent(Echo):
        async def on_start(self) -> None:
            self.context.spawn_child(Echo)

    system.spawn(Parent, name="parent")
    await settle()
    lines = system.control_panel()
    assert lines[0].split() == ["RID", "ADDRESS", "NAME", "ACTOR", "STATE", "PARENT",
                                "CHILDREN"]
    assert lines[1].split() == ["1", "test:1", "parent", "Parent", "alive", "-", "2"]
    assert lines[2].split() == ["2", "test:2", "-", "Echo", "alive", "1", "-"]
    info = system.actor_info("parent")
    assert (info.state, info.children_rids, info.actor_type) == ("alive", (2,), "Parent")


async def test_a_stopped_actor_leaves_no_trace_in_the_system(system: ActorSystem) -> None:
    """0.3.0 kept every stopped runtime forever (and showed STOP-ped actors as 'stopping')."""
    refs = [system.spawn(Tally) for _ in range(20)]
    for ref in refs:
        await ref.tell("boom")
    await asyncio.wait_for(asyncio.gather(*(ref._rt.done for ref in refs)), 1)
    assert system.list_actors() == ()
    assert system.control_panel()[1:] == ()
    assert system.audit().total_actors == 0
