"""``papyra persistence``: scan, recover, compact, inspect, startup-check, migrate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from papyra.errors import StoreNotFoundError
from papyra.reports import ScanReport
from papyra.retention import RetentionPolicy
from papyra.startup import StartupConfig, StartupMode, StartupResult, check_store
from papyra.store import Store

from papyra_cli import errors, render
from papyra_cli.commands.migrate import migrate
from papyra_cli.context import StoreTarget, common_options, recovery_modes
from papyra_cli.output import activity, emit_json, human_bytes, say, show, table
from papyra_cli.params import STARTUP_MODES, Duration, Mode, Size


@click.group()
def persistence() -> None:
    """Check, repair, compact and upgrade a store."""


persistence.add_command(migrate)


async def require_existing(store: Store) -> None:
    """Commands that need a log (scan, recover, compact, inspect) fail with exit 4 without one."""
    if not await store.exists():
        raise StoreNotFoundError(f"{store.url}: no log found (nothing has been written yet?)")


def _quarantine_path(value: str | None) -> str | None:
    return None if value is None else str(Path(value).expanduser().absolute())


# --------------------------------------------------------------------------- scan


@persistence.command()
@common_options
def scan(target: StoreTarget, json_: bool) -> None:
    """Check every record of the store without changing a byte.

    Exit 0 when clean, 1 when anomalies were found, 4 when the store does not exist.
    """

    async def body(store: Store) -> ScanReport:
        await require_existing(store)
        async with activity(f"scanning {store.url}", enabled=not json_):
            return await store.scan()

    report = target.run(body)
    if json_:
        emit_json(report.to_dict())
    else:
        render.scan(report)
    if not report.clean:
        raise errors.ExitWith(errors.ANOMALIES)


# --------------------------------------------------------------------------- recover


@persistence.command()
@click.option("--mode", "mode", type=Mode(recovery_modes, "recovery mode"), default=None,
              help="Recovery strategy: repair (default), quarantine, ignore, or a plugin's.")
@click.option("--quarantine-dir", metavar="DIR", type=click.Path(file_okay=False, path_type=str),
              help="Where quarantine puts removed bytes (default: <log>.quarantine/ beside it).")
@click.option("--dry-run", is_flag=True, help="Print the plan only; exit as a scan would.")
@common_options
def recover(target: StoreTarget, json_: bool, mode: str | None, quarantine_dir: str | None,
            dry_run: bool) -> None:
    """Repair the store: truncate torn tails, drop bad lines (gap records explain them), remove
    papyra's leftovers; quarantine keeps every removed byte.

    Exit 0 when the store is clean afterwards, 3 when anomalies remain, 4 when it does not
    exist; with --dry-run 0 (clean) or 1 (anomalies) and nothing changes.
    """
    configured = target.config.startup
    effective = mode or configured.recovery_mode or "repair"
    if quarantine_dir is not None and effective != "quarantine":
        raise click.UsageError(
            f"--quarantine-dir only applies to --mode quarantine (mode is {effective})")
    if quarantine_dir is None and effective == "quarantine":
        quarantine_dir = configured.quarantine_dir

    async def body(store: Store) -> Any:
        await require_existing(store)
        async with activity(f"recovering {store.url} ({effective})", enabled=not json_):
            return await store.recover(effective, quarantine_dir=_quarantine_path(quarantine_dir),
                                       dry_run=dry_run)

    report = target.run(body)
    if json_:
        emit_json(report.to_dict())
    else:
        render.recovery(report)
    if dry_run:
        if not report.before.clean:
            raise errors.ExitWith(errors.ANOMALIES)
    elif not report.clean:
        raise errors.ExitWith(errors.RECOVERY_INCOMPLETE)


# --------------------------------------------------------------------------- compact


@persistence.command()
@click.option("--max-records", type=click.IntRange(min=0), metavar="N",
              help="Keep the newest N records.")
@click.option("--max-age", type=Duration(), metavar="DURATION",
              help="Keep records younger than this (e.g. 36h, 7d, 2w).")
@click.option("--max-total-bytes", type=Size(), metavar="SIZE",
              help="Keep the newest records within this many bytes on disk (e.g. 500MB, 10GiB).")
@click.option("--dry-run", is_flag=True,
              help="Report what would be removed; change nothing (exit 1 if the scan finds "
                   "anomalies).")
@common_options
def compact(target: StoreTarget, json_: bool, max_records: int | None, max_age: float | None,
            max_total_bytes: int | None, dry_run: bool) -> None:
    """Apply retention physically: remove the oldest records and reclaim their bytes.

    The retention flags replace the configured retention ([retention] in papyra.toml); without
    them the configured retention applies. The log keeps counting seq across the removed prefix.
    """
    flags = RetentionPolicy(max_records=max_records, max_age_seconds=max_age,
                            max_total_bytes=max_total_bytes)
    policy = target.retention if flags.unbounded else flags

    async def body(store: Store) -> tuple[Any, ScanReport | None]:
        await require_existing(store)
        scan_report = None
        if dry_run:
            async with activity(f"scanning {store.url}", enabled=not json_):
                scan_report = await store.scan()
        async with activity(f"compacting {store.url}", enabled=not json_):
            return await store.compact(policy, dry_run=dry_run), scan_report

    overrides: dict[str, Any] = {} if flags.unbounded else {"retention": None}
    if policy.unbounded and not json_:
        say("no retention given or configured (--max-records, --max-age, --max-total-bytes or "
            "[retention] in papyra.toml): nothing to remove")
    report, scan_report = target.run(body, **overrides)
    if json_:
        out = report.to_dict()
        out["retention"] = policy.to_dict()
        if scan_report is not None:
            out["clean"] = scan_report.clean
            out["scan"] = scan_report.to_dict()
        emit_json(out)
    else:
        render.compaction(report)
        if scan_report is not None and not scan_report.clean:
            render.scan(scan_report)
    if scan_report is not None and not scan_report.clean:
        raise errors.ExitWith(errors.ANOMALIES)


# --------------------------------------------------------------------------- inspect


@persistence.command("inspect")
@click.option("--show-metrics", is_flag=True,
              help="Also show this process's counters for the store (reads done by inspect).")
@common_options
def inspect_store(target: StoreTarget, json_: bool, show_metrics: bool) -> None:
    """Describe the store: backend, capabilities, retention, records, size, health."""

    async def body(store: Store) -> dict[str, Any]:
        await require_existing(store)
        stats = await store.stats()
        health = await store.health()
        return {
            "store": store.url,
            "backend": store.backend_name,
            "source": target.source,
            "capabilities": store.capabilities.to_dict(),
            "retention": store.retention.to_dict(),
            "stats": stats.to_dict() if hasattr(stats, "to_dict") else stats,
            "health": {"ok": health.ok, "reason": health.reason, "detail": health.detail},
            "metrics": store.metrics.snapshot() if show_metrics else None,
        }

    info = target.run(body)
    if json_:
        emit_json(info)
        return
    stats = info["stats"]
    show(f"store:       {info['store']}  (from {info['source']})")
    show(f"backend:     {info['backend']}")
    caps = [k for k, v in info["capabilities"].items() if v]
    show(f"can:         {', '.join(caps) or '-'}")
    retention = {k: v for k, v in info["retention"].items() if v is not None}
    show("retention:   " + (", ".join(f"{k}={v}" for k, v in retention.items()) or "unbounded"))
    if isinstance(stats, dict):
        kinds = stats.get("records_by_kind", {})
        show(f"records:     {stats.get('records')} "
            f"({', '.join(f'{k}: {v}' for k, v in sorted(kinds.items())) or 'none'})")
        show(f"size:        {human_bytes(stats.get('bytes'))}")
        show(f"seq:         {render.seq_range(stats.get('first_seq'), stats.get('last_seq'))}")
        show(f"time range:  {render.when(stats.get('oldest_timestamp'))} .. "
            f"{render.when(stats.get('newest_timestamp'))}")
    health = info["health"]
    show(f"health:      {'ok' if health['ok'] else 'NOT OK: ' + str(health['reason'])}")
    if show_metrics and info["metrics"] is not None:
        show("metrics:")
        rows = [(k, v) for k, v in info["metrics"].items() if not isinstance(v, dict)]
        rows += [(k, ", ".join(f"{lk}={lv}" for lk, lv in v.items()) or "0")
                 for k, v in info["metrics"].items()
                 if isinstance(v, dict) and not {"buckets", "count"} & set(v)]
        table(("counter", "value"), rows)


# --------------------------------------------------------------------------- startup checks


def startup_options(func: Any) -> Any:
    func = click.option(
        "--quarantine-dir", metavar="DIR", type=click.Path(file_okay=False, path_type=str),
        help="Quarantine directory for --recovery-mode quarantine.")(func)
    func = click.option(
        "--recovery-mode", type=Mode(recovery_modes, "recovery mode"), default=None,
        help="With --mode recover: repair (default), quarantine, ignore, or a plugin's.")(func)
    return func


def startup_config(target: StoreTarget, mode: str | None, recovery_mode: str | None,
                   quarantine_dir: str | None, *, default_mode: str | None) -> StartupConfig:
    """Combine flags with the config file; reject combinations that mean nothing (exit 2)."""
    configured = target.config.startup
    effective = StartupMode.parse(mode or default_mode or configured.mode)
    if recovery_mode is not None and effective is not StartupMode.RECOVER:
        raise click.UsageError(
            f"--recovery-mode only applies with --mode recover (mode is {effective.value})")
    rmode = recovery_mode or configured.recovery_mode
    if effective is StartupMode.RECOVER:
        rmode = rmode or "repair"
    if quarantine_dir is not None and rmode != "quarantine":
        raise click.UsageError("--quarantine-dir only applies with --recovery-mode quarantine")
    qdir = quarantine_dir if quarantine_dir is not None else (
        configured.quarantine_dir if rmode == "quarantine" else None)
    return StartupConfig(mode=effective, recovery_mode=rmode,
                         quarantine_dir=_quarantine_path(qdir))


def run_startup_check(target: StoreTarget, config: StartupConfig, *, json_: bool,
                      extra: dict[str, Any] | None = None) -> StartupResult:
    async def body(store: Store) -> StartupResult:
        async with activity(f"checking {store.url} ({config.mode.value})", enabled=not json_):
            return await check_store(store, config)

    result = target.run(body)
    if json_:
        out = result.to_dict()
        if extra:
            out.update(extra)
        emit_json(out)
    else:
        render.startup(result)
    return result


@persistence.command("startup-check")
@click.option("--mode", type=Mode(STARTUP_MODES, "startup mode"), default=None,
              help="ignore | scan_only | fail_on_anomaly | recover (case-insensitive; default: "
                   "[startup] mode of papyra.toml, else fail_on_anomaly).")
@startup_options
@common_options
def startup_check(target: StoreTarget, json_: bool, mode: str | None, recovery_mode: str | None,
                  quarantine_dir: str | None) -> None:
    """Run the check an actor system runs before it starts (the same implementation).

    A store that does not exist yet is a clean first boot (exit 0). Exit 1 when anomalies are
    left in place (fail_on_anomaly), 3 when recovery left anomalies.
    """
    config = startup_config(target, mode, recovery_mode, quarantine_dir, default_mode=None)
    result = run_startup_check(target, config, json_=json_)
    if result.exit_code:
        raise errors.ExitWith(result.exit_code)
