"""Fixtures for the actor runtime tests (helpers live in actor_helpers.py)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from actor_helpers import memory_store
from papyra import ActorSystem, ManualClock
from papyra.backends.memory import MemoryStore


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store() -> MemoryStore:
    return memory_store()


@pytest.fixture
async def system(store: MemoryStore) -> AsyncIterator[ActorSystem]:
    s = ActorSystem(system_id="test", persistence=store)
    await s.start()
    try:
        yield s
    finally:
        await s.aclose()

