"""``papyra redis groups | pending | claim``: consumer groups for operators.

Imported only by the ``papyra_register_commands`` hook, which only papyra-cli calls: click is
papyra-cli's dependency, not this distribution's. Failures are raised as :mod:`papyra.errors`
types; the ``papyra`` command maps them to its exit codes (4 for an unreachable Redis or a
failed authentication, 2 for bad usage). Output never contains the password of the URL.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
from papyra.errors import ConfigError

from papyra_backend_redis.groups import ConsumerGroup, describe_groups, pending_entries
from papyra_backend_redis.store import RedisStore

T = TypeVar("T")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_ms(text: str) -> int:
    """``500ms``, ``30s``, ``5m``, ``1h`` or a bare number of milliseconds."""
    m = _DURATION.match(text)
    if m is None:
        raise ValueError(f"invalid duration {text!r} (expected e.g. 500ms, 30s, 5m, 1h)")
    return int(float(m.group(1)) * _UNITS[m.group(2) or "ms"])


class Millis(click.ParamType[int]):
    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_ms(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


KINDS = click.Choice(["events", "audits", "dead-letters", "event", "audit", "dead_letter"],
                     case_sensitive=False)


def _store_url(ctx: click.Context, store_url: str | None, config_file: str | None) -> str:
    """Flags, then ``PAPYRA_STORE`` (click's envvar), then the config file (DESIGN §9)."""
    if store_url:
        return store_url
    from papyra.config import load_config

    config = load_config(config_file)
    if config.store_url:
        return config.store_url
    raise ConfigError("no store given: use --store redis://..., set PAPYRA_STORE, or name one in "
                      "papyra.toml ([store] url)")


def _open(ctx: click.Context, url: str) -> RedisStore:
    from papyra.plugin_manager import PluginManager, get_plugin_manager

    pm = getattr(ctx.find_root().command, "plugin_manager", None)
    if not isinstance(pm, PluginManager):
        pm = get_plugin_manager()
    store = pm.open_store(url)
    if not isinstance(store, RedisStore):
        raise ConfigError(f"{store.url} is not a Redis store (papyra redis works on redis://, "
                          f"rediss:// and unix:// stores)")
    return store


def _run(ctx: click.Context, url: str, body: Callable[[RedisStore], Awaitable[T]]) -> T:
    async def main() -> T:
        store = _open(ctx, url)
        async with store:
            return await body(store)

    return asyncio.run(main())


def _emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2))


def _table(headers: list[str], rows: list[list[Any]]) -> None:
    cells = [headers, *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for r in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("json_", "--json", is_flag=True, help="Machine output (JSON) on stdout."
                        )(func)
    func = click.option("--config", "config_file", metavar="FILE", envvar="PAPYRA_CONFIG",
                        show_envvar=True, help="papyra.toml to read.")(func)
    func = click.option("--store", "store_url", metavar="URL", envvar="PAPYRA_STORE",
                        show_envvar=True,
                        help="Redis store URL, e.g. redis://host:6379/0?system_id=orders.")(func)
    return click.pass_context(func)


def redis_group() -> click.Group:
    """The ``papyra redis`` command group."""

    @click.group("redis")
    def redis() -> None:
        """Consumer groups of a Redis store: list them, see pending entries, claim them."""

    @redis.command("groups")
    @_common
    def groups(ctx: click.Context, store_url: str | None, config_file: str | None,
               json_: bool) -> None:
        """List the consumer groups on the system's streams, with consumers and pending."""
        url = _store_url(ctx, store_url, config_file)
        found = _run(ctx, url, describe_groups)
        if json_:
            _emit_json(found)
            return
        if not found:
            click.echo("no consumer groups", err=True)
            return
        rows = []
        for g in found:
            consumers = ", ".join(f"{c['name']}({c['pending']} pending, idle "
                                  f"{c['idle_ms'] // 1000}s)" for c in g["consumers"]) or "-"
            rows.append([g["stream"], g["group"], g["pending"], g["last_delivered_id"],
                         "-" if g["lag"] is None else g["lag"], consumers])
        _table(["STREAM", "GROUP", "PENDING", "LAST DELIVERED", "LAG", "CONSUMERS"], rows)

    @redis.command("pending")
    @click.argument("group")
    @click.option("--kind", type=KINDS, default="events", show_default=True,
                  help="Which stream.")
    @click.option("--consumer", help="Only this consumer's entries.")
    @click.option("--min-idle", type=Millis(), default=None,
                  help="Only entries idle at least this long (e.g. 30s, 5m).")
    @click.option("--count", type=click.IntRange(1), default=100, show_default=True)
    @_common
    def pending(ctx: click.Context, group: str, kind: str, consumer: str | None,
                min_idle: int | None, count: int, store_url: str | None,
                config_file: str | None, json_: bool) -> None:
        """Pending (delivered, unacknowledged) entries of GROUP, oldest first."""
        url = _store_url(ctx, store_url, config_file)
        rows = _run(ctx, url, lambda s: pending_entries(
            s, group, kind=kind, count=count, consumer=consumer, min_idle_ms=min_idle))
        if json_:
            _emit_json(rows)
            return
        if not rows:
            click.echo(f"no pending entries in group {group!r}", err=True)
            return
        _table(["ENTRY", "CONSUMER", "IDLE", "DELIVERIES"],
               [[r["entry_id"], r["consumer"], f"{r['idle_ms'] / 1000:.1f}s", r["deliveries"]]
                for r in rows])

    @redis.command("claim")
    @click.argument("group")
    @click.option("--consumer", required=True, help="The consumer that takes the entries over.")
    @click.option("--kind", type=KINDS, default="events", show_default=True)
    @click.option("--min-idle", type=Millis(), default="60s", show_default=True,
                  help="Only entries idle at least this long.")
    @click.option("--count", type=click.IntRange(1), default=100, show_default=True)
    @click.option("entry_ids", "--id", multiple=True, metavar="ENTRY_ID",
                  help="Claim these entries (repeatable); default: any idle entry.")
    @_common
    def claim(ctx: click.Context, group: str, consumer: str, kind: str, min_idle: int,
              count: int, entry_ids: tuple[str, ...], store_url: str | None,
              config_file: str | None, json_: bool) -> None:
        """Move entries idle for --min-idle to --consumer (XCLAIM / XAUTOCLAIM)."""
        url = _store_url(ctx, store_url, config_file)

        async def body(store: RedisStore) -> list[dict[str, Any]]:
            cg = ConsumerGroup(store, group, consumer, kinds=kind, count=count)
            got = await cg.claim(min_idle, count=count, entry_ids=list(entry_ids) or None)
            return [{"stream": d.stream, "entry_id": d.entry_id, "record_id": d.record_id,
                     "error": d.error} for d in got]

        rows = _run(ctx, url, body)
        if json_:
            _emit_json(rows)
            return
        click.echo(f"claimed {len(rows)} entries for consumer {consumer!r}", err=True)
        for r in rows:
            click.echo(f"{r['stream']} {r['entry_id']}")

    return redis
