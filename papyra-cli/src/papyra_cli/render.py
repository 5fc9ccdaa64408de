"""Human renderings (stderr) of the reports papyra-core returns."""

from __future__ import annotations

from datetime import UTC, datetime

from papyra.reports import CompactionReport, RecoveryAction, RecoveryReport, ScanReport
from papyra.startup import StartupResult

from papyra_cli.output import human_bytes, say

MAX_LISTED = 50


def plural(n: int, word: str) -> str:
    """``1 anomaly``, ``2 anomalies``, ``3 records``."""
    if n == 1:
        return f"{n} {word}"
    if word.endswith("y"):
        return f"{n} {word[:-1]}ies"
    return f"{n} {word}s"


def when(timestamp: float | None) -> str:
    """Epoch seconds as ``2026-11-22T02:30:01.123Z``."""
    if timestamp is None:
        return "-"
    dt = datetime.fromtimestamp(timestamp, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def seq_range(first: int | None, last: int | None) -> str:
    """``1..12``, or ``-`` for an empty log."""
    if first is None and last is None:
        return "-"
    return f"{'-' if first is None else first}..{'-' if last is None else last}"


def scan_summary(report: ScanReport) -> str:
    parts = [plural(report.records, "record")]
    if report.legacy_records:
        parts.append(f"{report.legacy_records} legacy")
    parts.append(human_bytes(report.bytes))
    if report.first_seq is not None:
        parts.append(f"seq {report.first_seq}..{report.last_seq}")
    return ", ".join(parts)


def anomalies(report: ScanReport, *, indent: str = "  ") -> None:
    listed = report.anomalies[:MAX_LISTED]
    for a in listed:
        say(f"{indent}{a.severity}: {a.describe()}", fg="red" if a.severity == "error" else
            "yellow")
    hidden = len(report.anomalies) - len(listed)
    if hidden > 0:
        say(f"{indent}… and {hidden} more (use --json for the full list)")


def scan(report: ScanReport) -> None:
    errors = len(report.errors)
    warnings = len(report.anomalies) - errors
    if report.clean:
        note = f" ({warnings} warnings)" if warnings else ""
        say(f"✔ {report.store}: clean — {scan_summary(report)}{note}", fg="green")
    else:
        say(f"✖ {report.store}: {plural(errors, 'anomaly')} — {scan_summary(report)}", fg="red")
    anomalies(report)
    if report.legacy_records:
        say(f"  {report.legacy_records} legacy (papyra 0.3.0) records: "
            "'papyra persistence migrate' upgrades them")


def action(a: RecoveryAction) -> str:
    where = a.file or "store"
    span = ""
    if a.offset is not None:
        span = f" at offset {a.offset}"
        if a.length:
            span += f" ({a.length} bytes)"
    to = f" → {a.to}" if a.to else ""
    detail = f": {a.detail}" if a.detail else ""
    return f"{a.action} {where}{span}{to}{detail}"


def recovery(report: RecoveryReport) -> None:
    before = report.before
    if report.dry_run:
        say(f"{report.store}: recovery plan ({report.mode}, dry run; nothing changed):")
    else:
        say(f"{report.store}: recovery with {report.mode}:")
    say(f"  before: {plural(len(before.errors), 'anomaly')}, {scan_summary(before)}")
    anomalies(before, indent="    ")
    if not report.actions:
        say("  nothing to do" if before.clean else "  no actions planned")
    for a in report.actions[:MAX_LISTED]:
        say(f"  {'would ' if report.dry_run else ''}{action(a)}")
    if len(report.actions) > MAX_LISTED:
        say(f"  … and {len(report.actions) - MAX_LISTED} more actions (use --json)")
    if report.after is not None:
        after = report.after
        if after.clean:
            say(f"✔ after: clean — {scan_summary(after)}", fg="green")
        else:
            say(f"✖ after: {plural(len(after.errors), 'anomaly')} remain — "
                f"{scan_summary(after)}", fg="red")
            anomalies(after, indent="    ")


def compaction(report: CompactionReport) -> None:
    verb = "would remove" if report.dry_run else "removed"
    reclaimed = report.reclaimed_bytes
    say(f"{report.store}: {verb} {report.removed_records} of {report.before_records} records"
        + (f", {'would reclaim' if report.dry_run else 'reclaimed'} {human_bytes(reclaimed)}"
           if reclaimed is not None else ""))
    say(f"  records {report.before_records} → {report.after_records}, "
        f"bytes {human_bytes(report.before_bytes)} → {human_bytes(report.after_bytes)}"
        + (" (dry run; nothing changed)" if report.dry_run else ""))


def startup(result: StartupResult) -> None:
    mode = result.mode.value
    if result.recovery_mode and result.mode.value == "recover":
        mode += f", recovery {result.recovery_mode}"
    if result.scan is not None and not result.scan.clean:
        say(f"{result.store}: {plural(len(result.scan.errors), 'anomaly')} found ({mode})")
        anomalies(result.scan)
    if result.recovery is not None:
        for a in result.recovery.actions[:MAX_LISTED]:
            say(f"  {action(a)}")
        if result.recovery.after is not None and not result.recovery.after.clean:
            say("  remaining:")
            anomalies(result.recovery.after, indent="    ")
    mark, colour = ("✔", "green") if result.ok else ("✖", "red")
    suffix = "" if result.mode.value in result.message else f" ({mode})"
    say(f"{mark} {result.store}: {result.message}{suffix}", fg=colour)
