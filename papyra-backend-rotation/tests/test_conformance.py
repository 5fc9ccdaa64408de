"""The backend conformance suite (papyra.testing) run against the rotation store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from papyra.store import Store
from papyra.testing import StoreConformance
from papyra_backend_rotation import RotationStore


async def _bytes(store: Store) -> object:
    assert isinstance(store, RotationStore)
    d = store.directory
    if not d.exists():
        return {}
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.name != "papyra.lock"}


async def _damage(store: Store) -> None:
    """Flip a byte in the middle line of the middle segment."""
    assert isinstance(store, RotationStore)
    segs = sorted(store.directory.glob("segment-*.ndjson"))
    seg = segs[len(segs) // 2]
    data = bytearray(seg.read_bytes())
    lines = data.split(b"\n")
    mid = len(lines) // 2 - 1 if len(lines) > 2 else 0
    off = sum(len(x) + 1 for x in lines[:mid]) + 30
    data[off] ^= 0x20
    seg.write_bytes(bytes(data))


class TestRotationStoreConformance(StoreConformance):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> Any:
        async def factory(**options: Any) -> Store:
            options.setdefault("max_segment_bytes", 1200)
            return RotationStore(tmp_path / "log", **options)

        return factory

    @pytest.fixture
    def snapshot(self) -> Any:
        return _bytes

    @pytest.fixture
    def damage(self) -> Any:
        return _damage


class TestOneSegmentConformance(StoreConformance):
    """The same contract when everything fits in one segment."""

    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> Any:
        async def factory(**options: Any) -> Store:
            return RotationStore(tmp_path / "log", **options)

        return factory

    @pytest.fixture
    def damage(self) -> Any:
        return _damage
