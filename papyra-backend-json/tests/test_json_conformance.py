"""The JSON backend against the whole conformance suite of ``papyra.testing``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from papyra.store import Store
from papyra.testing import Damage, Snapshot, StoreConformance, StoreFactory
from papyra.urls import StoreURL
from papyra_backend_json import JsonStore, create


def _log(tmp_path: Path) -> Path:
    return tmp_path / "data" / "papyra.ndjson"


class TestJsonStoreConformance(StoreConformance):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        async def factory(**options: Any) -> Store:
            return create(StoreURL.parse(f"json://{_log(tmp_path)}"), **options)

        return factory

    @pytest.fixture
    def snapshot(self) -> Snapshot:
        async def take(store: Store) -> object:
            assert isinstance(store, JsonStore)
            if isinstance(store, JsonStore):
                await store.flush()
            return await asyncio.to_thread(
                lambda: store.path.read_bytes() if store.path.exists() else None
            )

        return take

    @pytest.fixture
    def damage(self) -> Damage:
        async def flip(store: Store) -> None:
            assert isinstance(store, JsonStore)
            await store.flush()

            def corrupt() -> None:
                data = bytearray(store.path.read_bytes())
                lines = data.split(b"\n")
                fifth = sum(len(x) + 1 for x in lines[:4])
                data[fifth + 30] ^= 0x20  # one flipped bit in the fifth record
                store.path.write_bytes(bytes(data))

            await asyncio.to_thread(corrupt)

        return flip
