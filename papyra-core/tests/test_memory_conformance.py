"""The memory backend runs the whole conformance suite, as every backend must."""

from __future__ import annotations

from typing import Any

import pytest
from papyra.backends.memory import MemoryStore
from papyra.testing import StoreConformance, StoreFactory


class TestMemoryStore(StoreConformance):
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        async def factory(**options: Any) -> MemoryStore:
            return MemoryStore("memory://", **options)

        return factory
