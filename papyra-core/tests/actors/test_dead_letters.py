"""Dead letters: kept (bounded) in memory, persisted with expects_reply."""

from __future__ import annotations

from typing import Any

import pytest
from actor_helpers import Echo, memory_store
from papyra import ActorStoppedError, ActorSystem, DeadLetter
from papyra.backends.memory import MemoryStore


async def test_telling_a_stopped_actor_makes_a_dead_letter_and_raises(
    system: ActorSystem,
) -> None:
    ref = system.spawn(Echo)
    await ref.stop()
    with pytest.raises(ActorStoppedError, match="dead letter"):
        await ref.tell({"n": 1})
    with pytest.raises(ActorStoppedError):
        await ref.ask("are you there?")
    assert system.dead_letters.messages == [
        DeadLetter(ref.address, {"n": 1}, False),
        DeadLetter(ref.address, "are you there?", True),
    ]
    assert system.metrics.dead_letters == 2


async def test_dead_letters_are_persisted_with_expects_reply(store: MemoryStore) -> None:
    async with ActorSystem(system_id="test", persistence=store) as system:
        ref = system.spawn(Echo)
        await ref.stop()
        for send in (ref.tell, ref.ask):
            with pytest.raises(ActorStoppedError):
                await send(b"\x00raw")
    rows = await store.read_all(kinds="dead_letter")
    assert [(r.target, r.message_type, r.payload, r.expects_reply) for r in rows] == [
        ("test:1", "bytes", {"__bytes__": "AHJhdw=="}, False),
        ("test:1", "bytes", {"__bytes__": "AHJhdw=="}, True),
    ]


async def test_telling_an_unknown_name_or_address_makes_a_dead_letter(
    store: MemoryStore,
) -> None:
    async with ActorSystem(system_id="test", persistence=store) as system:
        with pytest.raises(ActorStoppedError):
            await system.tell("nobody", "hello")
        with pytest.raises(ActorStoppedError):
            await system.ask("test:99", "hello?")
        assert await system.ask(system.spawn(Echo, name="e"), "hi") == "hi"
    rows = await store.read_all(kinds="dead_letter")
    assert [(r.target, r.expects_reply) for r in rows] == [("nobody", False), ("test:99", True)]


async def test_dead_letter_history_is_bounded_but_counted() -> None:
    async with ActorSystem(system_id="test", persistence=memory_store(),
                           history_limit=3) as system:
        ref = system.spawn(Echo)
        await ref.stop()
        for i in range(10):
            with pytest.raises(ActorStoppedError):
                await ref.tell(i)
        assert [d.message for d in system.dead_letters.messages] == [7, 8, 9]
        assert system.dead_letters.count == 10
        assert system.audit().dead_letters_count == 10


async def test_dead_letter_payload_hook_redacts_what_is_persisted(store: MemoryStore) -> None:
    def redact(message: Any) -> Any:
        return {**message, "card": "****"} if isinstance(message, dict) else message

    async with ActorSystem(system_id="test", persistence=store,
                           dead_letter_payload=redact) as system:
        ref = system.spawn(Echo)
        await ref.stop()
        with pytest.raises(ActorStoppedError):
            await ref.tell({"order": 1, "card": "4242424242424242"})
        assert system.dead_letters.messages[0].message["card"] == "4242424242424242"
    [row] = await store.read_all(kinds="dead_letter")
    assert row.payload == {"order": 1, "card": "****"}


async def test_dead_letter_payloads_are_made_json_safe_by_the_codec(store: MemoryStore) -> None:
    from dataclasses import dataclass

    @dataclass
    class Order:
        order_id: int
        items: tuple[str, ...]

    class Opaque:
        def __repr__(self) -> str:
            return "<Opaque thing>"

    async with ActorSystem(system_id="test", persistence=store) as system:
        ref = system.spawn(Echo)
        await ref.stop()
        for message in (Order(7, ("tea",)), Opaque(), {"when": {1, 2}}):
            with pytest.raises(ActorStoppedError):
                await ref.tell(message)
    rows = await store.read_all(kinds="dead_letter")
    assert [(r.message_type, r.payload) for r in rows] == [
        ("Order", {"order_id": 7, "items": ["tea"]}),
        ("Opaque", "<Opaque thing>"),
        ("dict", {"when": [1, 2]}),
    ]
