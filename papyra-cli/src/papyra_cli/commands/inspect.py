"""``papyra inspect``: read the records of a store (events, audits, dead letters, summary).

``--limit N`` selects the newest N matching records, printed oldest first unless
``--newest-first``. ``--follow`` keeps printing new records like ``tail -f``: it polls
``read(after_seq=...)``, so it carries on across compaction and rotation (seqs never change),
waits while the log is missing, and starts over when the log was replaced by a shorter one
(restored from a backup, or recreated).
"""

from __future__ import annotations

import asyncio
import fnmatch
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import click
from papyra import codec
from papyra.errors import StoreNotFoundError
from papyra.records import AuditRecord, DeadLetterRecord, EventRecord, GapRecord, StoredRecord
from papyra.store import Store

from papyra_cli import render
from papyra_cli.commands.persistence import require_existing
from papyra_cli.context import StoreTarget, common_options
from papyra_cli.output import (
    activity,
    emit_json,
    emit_line,
    human_bytes,
    say,
    show,
    table,
    terminal_width,
)
from papyra_cli.params import Duration, PointInTime
from papyra_cli.stopping import stop_on_signals, wait_or_stop

FOLLOW_DEFAULT_LIMIT = 10


@click.group()
def inspect() -> None:
    """Read the events, audits and dead letters of a store."""


# --------------------------------------------------------------------------- selection


@attrs.frozen(kw_only=True)
class Selection:
    kind: str
    limit: int | None
    since: float | None
    until: float | None
    newest_first: bool
    actor: str | None = None
    type_: str | None = None
    target: str | None = None

    @property
    def client_filtered(self) -> bool:
        return any(v is not None for v in (self.actor, self.type_, self.target))

    def matches(self, rec: StoredRecord) -> bool:
        if isinstance(rec, GapRecord) or rec.kind != self.kind:
            return False
        if self.since is not None and rec.timestamp < self.since:
            return False
        if self.until is not None and rec.timestamp > self.until:
            return False
        if isinstance(rec, EventRecord):
            return _glob(rec.actor_address, self.actor) and _glob(rec.event_type, self.type_)
        if isinstance(rec, DeadLetterRecord):
            return (_glob(rec.target, self.target) and _glob(rec.message_type, self.type_))
        return True


def _glob(value: str | None, pattern: str | None) -> bool:
    if pattern is None:
        return True
    if value is None:
        return pattern in ("", "-", "none", "null")
    return fnmatch.fnmatchcase(value, pattern)


async def select(store: Store, sel: Selection, *, max_seq: int | None = None
                 ) -> AsyncIterator[StoredRecord]:
    """The records ``sel`` asks for, in the order they are to be printed.

    Streams (constant memory) unless the newest N of a client-side filtered selection are
    asked for, which holds N records.
    """
    if not sel.client_filtered and max_seq is None:
        async for rec in store.read(kinds=sel.kind, since=sel.since, until=sel.until,
                                    limit=sel.limit, newest_first=sel.newest_first):
            yield rec
        return

    def wanted(rec: StoredRecord) -> bool:
        if max_seq is not None and rec.seq is not None and rec.seq > max_seq:
            return False
        return sel.matches(rec)

    if sel.limit is None:
        async for rec in store.read(kinds=sel.kind, since=sel.since, until=sel.until,
                                    newest_first=sel.newest_first):
            if wanted(rec):
                yield rec
        return
    picked: list[StoredRecord] = []
    if sel.limit > 0:
        async for rec in store.read(kinds=sel.kind, since=sel.since, until=sel.until,
                                    newest_first=True):
            if wanted(rec):
                picked.append(rec)
                if len(picked) >= sel.limit:
                    break
    for rec in (picked if sel.newest_first else reversed(picked)):
        yield rec


async def newest_seq(store: Store) -> int | None:
    """The seq of the newest entry of the log (gaps included), or None when it is empty."""
    async for rec in store.read(limit=1, newest_first=True, include_gaps=True,
                                apply_retention=False):
        return rec.through if isinstance(rec, GapRecord) else rec.seq
    return None


# --------------------------------------------------------------------------- rendering


def _payload(value: Any) -> str:
    if isinstance(value, str):
        return value
    return codec.dumps(value).decode("utf-8", "replace")


COLUMNS: dict[str, tuple[tuple[str, int], ...]] = {
    "event": (("SEQ", 7), ("TIME (UTC)", 24), ("ACTOR", 22), ("EVENT", 18), ("PAYLOAD", 0)),
    "audit": (("SEQ", 7), ("TIME (UTC)", 24), ("TOTAL", 6), ("ALIVE", 6), ("STOPPING", 8),
              ("RESTARTING", 10), ("REGISTRY", 8), ("DEAD LETTERS", 12)),
    "dead_letter": (("SEQ", 7), ("TIME (UTC)", 24), ("TARGET", 22), ("TYPE", 18),
                    ("REPLY", 5), ("PAYLOAD", 0)),
}


def cells(rec: StoredRecord) -> list[str]:
    seq = "-" if rec.seq is None else str(rec.seq)
    ts = render.when(rec.timestamp)
    if isinstance(rec, EventRecord):
        return [seq, ts, rec.actor_address, rec.event_type, _payload(dict(rec.payload))]
    if isinstance(rec, AuditRecord):
        return [seq, ts, str(rec.total_actors), str(rec.alive_actors),
                str(rec.stopping_actors), str(rec.restarting_actors), str(rec.registry_size),
                str(rec.dead_letters_count)]
    if isinstance(rec, DeadLetterRecord):
        return [seq, ts, rec.target or "-", rec.message_type,
                "yes" if rec.expects_reply else "no", _payload(rec.payload)]
    return [seq, ts]


class Printer:
    """Prints records as a table on stderr, or as NDJSON (as stored) on stdout."""

    def __init__(self, kind: str, json_: bool) -> None:
        self.kind = kind
        self.json = json_
        self.header_done = False
        self.width = terminal_width()

    def header(self) -> None:
        if self.json or self.header_done:
            return
        self.header_done = True
        show(self._row([name for name, _ in COLUMNS[self.kind]]), bold=True)

    def _row(self, values: list[str]) -> str:
        parts = []
        for (_, width), value in zip(COLUMNS[self.kind], values, strict=False):
            if width and len(value) > width:
                value = value[: width - 1] + "…"
            parts.append(value.ljust(width) if width else value)
        line = "  ".join(parts).rstrip()
        if len(line) > self.width and self.width > 40:
            line = line[: self.width - 1] + "…"
        return line

    def record(self, rec: StoredRecord) -> None:
        if self.json:
            emit_line(codec.to_json_dict(rec))
        else:
            self.header()
            show(self._row(cells(rec)))


# --------------------------------------------------------------------------- commands


def read_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--limit", type=click.IntRange(min=0), metavar="N",
                     help="The newest N matching records (default: all; 10 with --follow)."),
        click.option("--since", type=PointInTime(), metavar="TIME",
                     help="Only records at or after TIME: epoch seconds, ISO-8601 "
                          "(2026-01-31T12:00:00Z) or a duration ago (15m, 2h, 7d)."),
        click.option("--until", type=PointInTime(), metavar="TIME",
                     help="Only records at or before TIME (same forms as --since)."),
        click.option("--newest-first", is_flag=True, help="Print the newest record first."),
        click.option("-f", "--follow", is_flag=True,
                     help="Keep printing new records as they are written "
                          "(Ctrl-C or SIGTERM stops, exit 0)."),
        click.option("--interval", type=Duration(), default=1.0, show_default=True,
                     metavar="DURATION", help="How often --follow polls the store."),
        click.option("--timeout", type=Duration(), default=None, metavar="DURATION",
                     help="Stop following after this long (exit 0)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _show(target: StoreTarget, sel: Selection, *, json_: bool, follow: bool, interval: float,
          timeout: float | None) -> None:
    if follow and sel.newest_first:
        raise click.UsageError("--follow prints records as they come: it cannot be combined "
                               "with --newest-first")
    if follow and sel.limit is None:
        sel = attrs.evolve(sel, limit=FOLLOW_DEFAULT_LIMIT)
    printer = Printer(sel.kind, json_)

    async def body(store: Store) -> int:
        await require_existing(store)
        cursor = await newest_seq(store) if follow else None
        printed = 0
        async for rec in select(store, sel, max_seq=cursor):
            printer.record(rec)
            printed += 1
        if not follow:
            if not printed and not json_:
                say(f"no {sel.kind.replace('_', ' ')} records match")
            return printed
        printer.header()
        async with stop_on_signals() as stop:  # Ctrl-C or SIGTERM is a normal end (exit 0)
            await follow_store(store, sel, printer, cursor or 0, interval=interval,
                               stop_after=timeout, stop=stop)
        return printed

    target.run(body)


async def follow_store(store: Store, sel: Selection, printer: Printer, cursor: int, *,
                       interval: float, stop_after: float | None,
                       stop: asyncio.Event | None = None) -> None:
    """Print records appended after ``cursor`` for ``stop_after`` seconds (or forever).

    Returns when ``stop`` is set (checked between polls and between printed records).
    """
    stop = stop or asyncio.Event()
    deadline = None if stop_after is None else time.monotonic() + stop_after
    missing_noted = False
    while True:
        pause = interval
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            pause = min(interval, left)
        if await wait_or_stop(stop, pause):
            return
        try:
            newest = await newest_seq(store)
        except StoreNotFoundError:
            if not missing_noted:
                say(f"papyra: {store.url}: the log is gone; waiting for it to come back")
                missing_noted = True
            continue
        if missing_noted:
            missing_noted = False
        if cursor and (newest is None or newest < cursor):
            say(f"papyra: {store.url}: the log was replaced (its newest seq is {newest}, we had "
                f"seen {cursor}); following it from its start")
            cursor = 0
        if newest is None or newest <= cursor:
            continue
        async for rec in store.read(after_seq=cursor, include_gaps=True):
            if isinstance(rec, GapRecord):
                cursor = max(cursor, rec.through)
                continue
            if rec.seq is not None:
                cursor = max(cursor, rec.seq)
            if sel.matches(rec):
                printer.record(rec)
            if stop.is_set():
                return


@inspect.command()
@click.option("--actor", metavar="ADDRESS",
              help="Only events of this actor address (glob patterns like 'orders:*' work).")
@click.option("--type", "type_", metavar="EVENT_TYPE",
              help="Only events of this type (glob patterns like 'Actor*' work).")
@read_options
@common_options
def events(target: StoreTarget, json_: bool, actor: str | None, type_: str | None,
           limit: int | None, since: float | None, until: float | None, newest_first: bool,
           follow: bool, interval: float, timeout: float | None) -> None:
    """Actor lifecycle events (started, crashed, restarted, stopped, ...)."""
    sel = Selection(kind="event", limit=limit, since=since, until=until,
                    newest_first=newest_first, actor=actor, type_=type_)
    _show(target, sel, json_=json_, follow=follow, interval=interval, timeout=timeout)


@inspect.command()
@read_options
@common_options
def audits(target: StoreTarget, json_: bool, limit: int | None, since: float | None,
           until: float | None, newest_first: bool, follow: bool, interval: float,
           timeout: float | None) -> None:
    """Audit snapshots of the actor system (actor counts, registry, dead letters)."""
    sel = Selection(kind="audit", limit=limit, since=since, until=until,
                    newest_first=newest_first)
    _show(target, sel, json_=json_, follow=follow, interval=interval, timeout=timeout)


@inspect.command("dead-letters")
@click.option("--target", "target_", metavar="ADDRESS",
              help="Only dead letters sent to this address (glob patterns work; '-' for none).")
@click.option("--type", "type_", metavar="MESSAGE_TYPE",
              help="Only dead letters of this message type (glob patterns work).")
@read_options
@common_options
def dead_letters(target: StoreTarget, json_: bool, target_: str | None, type_: str | None,
                 limit: int | None, since: float | None, until: float | None,
                 newest_first: bool, follow: bool, interval: float,
                 timeout: float | None) -> None:
    """Messages nobody could take (their target was stopped or unknown)."""
    sel = Selection(kind="dead_letter", limit=limit, since=since, until=until,
                    newest_first=newest_first, target=target_, type_=type_)
    _show(target, sel, json_=json_, follow=follow, interval=interval, timeout=timeout)


@inspect.command()
@click.option("--top", type=click.IntRange(min=0), default=5, show_default=True, metavar="N",
              help="How many dead-letter targets and event types to list.")
@common_options
def summary(target: StoreTarget, json_: bool, top: int) -> None:
    """Counts by kind, time range, size, the newest audit, top dead-letter targets."""

    async def body(store: Store) -> dict[str, Any]:
        await require_existing(store)
        stats = await store.stats()
        newest_audit = None
        async for rec in store.read(kinds="audit", limit=1):
            newest_audit = rec
        targets: Counter[str] = Counter()
        event_types: Counter[str] = Counter()
        async with activity(f"reading {store.url}", enabled=not json_):
            async for rec in store.read(kinds=["event", "dead_letter"]):
                if isinstance(rec, DeadLetterRecord):
                    targets[rec.target or "-"] += 1
                elif isinstance(rec, EventRecord):
                    event_types[rec.event_type] += 1
        out: dict[str, Any] = {"store": store.url, "backend": store.backend_name}
        out.update(stats.to_dict())
        out["newest_audit"] = codec.to_json_dict(newest_audit) if newest_audit else None
        out["top_dead_letter_targets"] = [{"target": t, "count": n}
                                          for t, n in targets.most_common(top)]
        out["top_event_types"] = [{"event_type": t, "count": n}
                                  for t, n in event_types.most_common(top)]
        return out

    out = target.run(body)
    if json_:
        emit_json(out)
        return
    kinds = out.get("records_by_kind", {})
    show(f"store:        {out['store']} ({out['backend']})")
    show(f"records:      {out['records']}  (events {kinds.get('event', 0)}, audits "
        f"{kinds.get('audit', 0)}, dead letters {kinds.get('dead_letter', 0)})")
    show(f"size:         {human_bytes(out['bytes'])}")
    show(f"seq:          {render.seq_range(out['first_seq'], out['last_seq'])}")
    show(f"oldest:       {render.when(out['oldest_timestamp'])}")
    show(f"newest:       {render.when(out['newest_timestamp'])}")
    audit = out["newest_audit"]
    if audit is None:
        show("newest audit: none")
    else:
        show(f"newest audit: {render.when(audit['timestamp'])}  total={audit['total_actors']} "
            f"alive={audit['alive_actors']} stopping={audit['stopping_actors']} "
            f"restarting={audit['restarting_actors']} dead_letters="
            f"{audit['dead_letters_count']}")
    if out["top_event_types"]:
        show("event types:")
        table(("  COUNT", "EVENT TYPE"),
              [(f"  {e['count']}", e["event_type"]) for e in out["top_event_types"]])
    if out["top_dead_letter_targets"]:
        show("top dead-letter targets:")
        table(("  COUNT", "TARGET"),
              [(f"  {t['count']}", t["target"]) for t in out["top_dead_letter_targets"]])
    elif not kinds.get("dead_letter"):
        show("dead letters: none")
