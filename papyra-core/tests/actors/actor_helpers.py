"""Fixtures for the actor runtime tests: memory stores, a deterministic clock, and stores
that fail, stall or report damage on purpose."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Sequence
from typing import Any

from papyra import Actor
from papyra.backends.memory import MemoryStore
from papyra.plugin_manager import PluginManager
from papyra.records import Record
from papyra.reports import Anomaly, RecoveryAction, ScanReport


def plugins() -> PluginManager:
    return PluginManager(entry_points=False)


def memory_store(**options: Any) -> MemoryStore:
    options.setdefault("system_id", "test")
    return MemoryStore(plugins=plugins(), **options)


class FailingStore(MemoryStore):
    """Appends fail with OSError while ``failing`` is set."""

    def __init__(self, **options: Any) -> None:
        super().__init__(plugins=plugins(), system_id="test", **options)
        self.failing = True
        self.attempts = 0

    async def _append(
        self, records: Sequence[Record]
    ) -> tuple[list[Record], collections.Counter[str]]:
        self.attempts += 1
        if self.failing:
            raise OSError(28, "No space left on device")
        return await super()._append(records)


class SlowStore(MemoryStore):
    """Each append takes ``delay`` seconds."""

    def __init__(self, delay: float, **options: Any) -> None:
        super().__init__(plugins=plugins(), system_id="test", **options)
        self.delay = delay
        self.batches: list[int] = []

    async def _append(
        self, records: Sequence[Record]
    ) -> tuple[list[Record], collections.Counter[str]]:
        await asyncio.sleep(self.delay)
        self.batches.append(len(records))
        return await super()._append(records)


class DamagedStore(MemoryStore):
    """Reports one invalid line until a repair runs; records whether anything was written."""

    def __init__(self, *, repairable: bool = True, **options: Any) -> None:
        super().__init__(plugins=plugins(), system_id="test", **options)
        self.damaged = True
        self.repairable = repairable
        self.executed: list[RecoveryAction] = []

    async def _scan(self) -> ScanReport:
        report = await super()._scan()
        if not self.damaged:
            return report
        bad = Anomaly(kind="invalid_json", file="mem.ndjson", offset=0, length=8, line=1,
                      detail="not JSON")
        return ScanReport(store=report.store, backend=report.backend, records=report.records,
                          bytes=report.bytes, anomalies=(bad,))

    async def _execute(self, plan: list[RecoveryAction], before: ScanReport, *,
                       quarantine_dir: str | None) -> list[RecoveryAction]:
        self.executed.extend(plan)
        if self.repairable:
            self.damaged = False
        return plan





class Echo(Actor):
    async def receive(self, message: Any) -> Any:
        if isinstance(message, BaseException):
            raise message
        return message


class Recorder(Actor):
    """Keeps what it receives; ``"get"`` returns the list."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    async def receive(self, message: Any) -> Any:
        if message == "get":
            return list(self.seen)
        if isinstance(message, BaseException):
            raise message
        self.seen.append(message)
        return None


class Tally(Actor):
    def __init__(self) -> None:
        self.count = 0

    async def receive(self, message: Any) -> Any:
        if message == "boom":
            raise ValueError("kaboom")
        if message == "get":
            return self.count
        self.count += 1
        return self.count


async def settle(rounds: int = 5) -> None:
    """Let ready tasks run a few times."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def stored(store: MemoryStore, kind: str | None = None) -> list[Any]:
    return await store.read_all(kinds=kind)
