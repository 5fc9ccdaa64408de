"""papyra's backend conformance suite, run against the SQLite example backend.

This file is all a third-party backend needs to get every contract test of papyra: subclass
:class:`papyra.testing.StoreConformance` and say how to build a store over the same data twice.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import papyra
import pytest
from papyra.testing import StoreConformance
from papyra_backend_sqlite.plugin import create


def rows(path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT * FROM records ORDER BY seq").fetchall()
    finally:
        conn.close()


def flip_a_byte_of_the_fifth_record(path: Path) -> None:
    conn = sqlite3.connect(path)
    seq, line = conn.execute("SELECT seq, line FROM records ORDER BY seq LIMIT 1 OFFSET 4"
                             ).fetchone()
    damaged = bytearray(line)
    damaged[len(damaged) // 2] ^= 0x01
    conn.execute("UPDATE records SET line = ? WHERE seq = ?", (bytes(damaged), seq))
    conn.commit()
    conn.close()


class TestSqliteStoreConformance(StoreConformance):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> Callable[..., Awaitable[papyra.Store]]:
        url = papyra.StoreURL.parse(f"sqlite://{tmp_path}/papyra.db")

        async def factory(**options: Any) -> papyra.Store:
            return create(url, **options)  # type: ignore[no-any-return]

        return factory

    @pytest.fixture
    def snapshot(self, tmp_path: Path) -> Callable[[papyra.Store], Awaitable[object]]:
        async def take(store: papyra.Store) -> object:
            db = tmp_path / "papyra.db"
            return await asyncio.to_thread(rows, db) if db.exists() else None

        return take

    @pytest.fixture
    def damage(self, tmp_path: Path) -> Callable[[papyra.Store], Awaitable[None]]:
        async def corrupt(store: papyra.Store) -> None:
            await asyncio.to_thread(flip_a_byte_of_the_fifth_record, tmp_path / "papyra.db")

        return corrupt
