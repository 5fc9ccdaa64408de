"""Record builders shared by the CLI tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import click
from click.testing import Result
from papyra import hookimpl
from papyra.backends.memory import MemoryStore
from papyra.errors import StoreNotFoundError
from papyra.records import AuditRecord, DeadLetterRecord, EventRecord, Record
from papyra.reports import Anomaly, RecoveryAction, ScanReport
from papyra.retention import RetentionPolicy
from papyra.urls import StoreURL

Invoke = Callable[..., Result]

T0 = 1_763_771_000.0


class SharedStore(MemoryStore):
    """A memory store that can pretend to be damaged, missing or broken."""

    backend_name = "shared"

    def __init__(self) -> None:
        super().__init__("shared://")
        self.damaged = False
        self.repairable = True
        self.missing = False
        self.explode: BaseException | None = None
        self.executed: list[RecoveryAction] = []
        self.opened_with: dict[str, Any] = {}

    async def exists(self) -> bool:
        return not self.missing

    async def _scan(self) -> ScanReport:
        if self.explode is not None:
            raise self.explode
        if self.missing:
            raise StoreNotFoundError(f"{self.url}: no log")
        report = await super()._scan()
        if not self.damaged:
            return report
        bad = Anomaly(kind="truncated_tail", file="shared.ndjson", offset=100, length=7, line=3,
                      detail="the last line has no newline and is not valid JSON")
        return ScanReport(store=report.store, backend=report.backend, records=report.records,
                          bytes=report.bytes, anomalies=(bad,), first_seq=report.first_seq,
                          last_seq=report.last_seq)

    async def _execute(self, plan: list[RecoveryAction], before: ScanReport, *,
                       quarantine_dir: str | None) -> list[RecoveryAction]:
        self.executed.extend(plan)
        if self.repairable:
            self.damaged = False
        return plan


class SharedPlugin:
    def __init__(self) -> None:
        self.store = SharedStore()
        self.extra_commands: list[click.Command] = []

    def factory(self, url: StoreURL, **options: Any) -> SharedStore:
        self.store.closed = False
        self.store.opened_with = dict(options)
        retention = options.get("retention")
        self.store.retention = (retention if isinstance(retention, RetentionPolicy)
                                else RetentionPolicy())
        return self.store

    @hookimpl
    def papyra_register_backends(self, register: Any) -> None:
        register("shared", schemes=["shared"], factory=self.factory,
                 description="one memory store shared by the tests")

    @hookimpl
    def papyra_register_commands(self, cli: click.Group) -> None:
        for cmd in self.extra_commands:
            cli.add_command(cmd)


def event(i: int, *, actor: str = "orders:1", type_: str = "ActorStarted",
          ts: float | None = None) -> EventRecord:
    return EventRecord(system_id="orders", actor_address=actor, event_type=type_,
                       payload={"n": i}, timestamp=T0 + i if ts is None else ts)


def audit(i: int, *, total: int = 3) -> AuditRecord:
    return AuditRecord(system_id="orders", total_actors=total, alive_actors=total,
                       stopping_actors=0, restarting_actors=0, registry_size=total,
                       dead_letters_count=i, timestamp=T0 + i)


def dead_letter(i: int, *, target: str | None = "orders:9",
                type_: str = "Order") -> DeadLetterRecord:
    return DeadLetterRecord(system_id="orders", target=target, message_type=type_,
                            payload={"order": i}, timestamp=T0 + i)


def seed(store: MemoryStore, records: list[Record]) -> None:
    async def go() -> None:
        await store.append(records)

    asyncio.run(go())


def mixed_log(store: MemoryStore) -> None:
    """5 events (two actors), 2 audits, 3 dead letters, in time order."""
    seed(store, [
        event(1, actor="orders:1", type_="ActorStarted"),
        event(2, actor="orders:2", type_="ActorStarted"),
        dead_letter(3, target="orders:9"),
        event(4, actor="orders:2", type_="ActorCrashed"),
        audit(5, total=2),
        dead_letter(6, target="orders:9"),
        dead_letter(7, target=None, type_="Ping"),
        event(8, actor="orders:2", type_="ActorRestarted"),
        audit(9, total=2),
        event(10, actor="orders:1", type_="ActorStopped"),
    ])


def json_out(result: Result) -> Any:
    return json.loads(result.stdout)


def ndjson_out(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def one_error_line(result: Result) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("papyra: error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]
