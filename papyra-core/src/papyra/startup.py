"""Startup checks: the one implementation behind ``ActorSystem.start()`` and
``papyra persistence startup-check`` / ``papyra doctor run`` (DESIGN §6).

- ``ignore``: no check.
- ``scan_only``: scan and report; never fail, never write.
- ``fail_on_anomaly``: any error-severity anomaly refuses the start; zero bytes changed.
- ``recover``: run the configured recovery mode, re-scan, start only if clean.

A store that does not exist yet is a clean first boot.
"""

from __future__ import annotations

import enum
import logging
from typing import Any

import attrs

from papyra.errors import (
    AnomaliesFoundError,
    ConfigError,
    RecoveryIncompleteError,
    StoreNotFoundError,
)
from papyra.reports import RecoveryReport, ScanReport

log = logging.getLogger("papyra.startup")


class StartupMode(enum.StrEnum):
    IGNORE = "ignore"
    SCAN_ONLY = "scan_only"
    FAIL_ON_ANOMALY = "fail_on_anomaly"
    RECOVER = "recover"

    @classmethod
    def parse(cls, value: str | StartupMode) -> StartupMode:
        if isinstance(value, StartupMode):
            return value
        key = str(value).strip().lower().replace("-", "_")
        try:
            return cls(key)
        except ValueError:
            raise ConfigError(
                f"unknown startup mode {value!r} (expected one of "
                f"{', '.join(m.value for m in cls)})"
            ) from None


class RecoveryMode(enum.StrEnum):
    """The built-in recovery modes (plugins may add more; those are passed as strings)."""

    IGNORE = "ignore"
    REPAIR = "repair"
    QUARANTINE = "quarantine"


def _mode(value: str | StartupMode) -> StartupMode:
    return StartupMode.parse(value)


def _recovery(value: str | None) -> str | None:
    return None if value is None else str(value).strip().lower()


@attrs.frozen(kw_only=True)
class StartupConfig:
    """How a store is checked before any actor runs. Modes accept their names as strings."""

    mode: StartupMode = attrs.field(default=StartupMode.FAIL_ON_ANOMALY, converter=_mode)
    recovery_mode: str | None = attrs.field(default=None, converter=_recovery)
    quarantine_dir: str | None = None

    @property
    def effective_recovery_mode(self) -> str:
        """``recover`` without a recovery mode means ``repair``."""
        return self.recovery_mode or "repair"

    def validate(self) -> None:
        if self.mode is not StartupMode.RECOVER and self.recovery_mode not in (None,):
            # Allowed but meaningless; callers may warn. Not an error: configs often carry both.
            return


@attrs.frozen(kw_only=True)
class StartupResult:
    """What the check did; ``ok`` is whether the system may start."""

    store: str
    mode: StartupMode
    recovery_mode: str | None
    scan: ScanReport | None
    recovery: RecoveryReport | None
    ok: bool
    first_boot: bool = False
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "mode": self.mode.value,
            "recovery_mode": self.recovery_mode,
            "scan": self.scan.to_dict() if self.scan is not None else None,
            "recovery": self.recovery.to_dict() if self.recovery is not None else None,
            "ok": self.ok,
            "first_boot": self.first_boot,
            "message": self.message,
        }

    @property
    def exit_code(self) -> int:
        """0 ok; 1 anomalies left in place (fail_on_anomaly); 3 recovery left anomalies."""
        if self.ok:
            return 0
        return 3 if self.recovery is not None else 1


async def check_store(store: Any, config: StartupConfig) -> StartupResult:
    """Run the startup check on ``store``; never raises for anomalies (see :func:`require_ok`)."""
    mode = config.mode
    rmode = config.effective_recovery_mode if mode is StartupMode.RECOVER else config.recovery_mode
    if mode is StartupMode.IGNORE:
        return StartupResult(store=store.url, mode=mode, recovery_mode=rmode, scan=None,
                             recovery=None, ok=True, message="startup check skipped (ignore)")
    try:
        scan = await store.scan()
    except StoreNotFoundError:
        return StartupResult(store=store.url, mode=mode, recovery_mode=rmode, scan=None,
                             recovery=None, ok=True, first_boot=True,
                             message="no log yet: clean first boot")
    if scan.clean:
        return StartupResult(store=store.url, mode=mode, recovery_mode=rmode, scan=scan,
                             recovery=None, ok=True, message="store is clean")
    n = len(scan.errors)
    if mode is StartupMode.SCAN_ONLY:
        log.warning("startup scan found %d anomalies in %s (scan_only: starting anyway)", n,
                    store.url)
        return StartupResult(store=store.url, mode=mode, recovery_mode=rmode, scan=scan,
                             recovery=None, ok=True,
                             message=f"{_count(n, 'anomaly')} found and left in place (scan_only)")
    if mode is StartupMode.FAIL_ON_ANOMALY:
        return StartupResult(store=store.url, mode=mode, recovery_mode=rmode, scan=scan,
                             recovery=None, ok=False,
                             message=f"{_count(n, 'anomaly')} found; refusing to start")
    recovery = await store.recover(rmode, quarantine_dir=config.quarantine_dir)
    ok = recovery.clean
    left = len(recovery.after.errors) if recovery.after is not None else n
    done = _count(len(recovery.actions), "action")
    message = (f"recovered with {rmode}: {done}, store is clean" if ok
               else f"recovery with {rmode} left {_count(left, 'anomaly')}")
    return StartupResult(store=store.url, mode=mode, recovery_mode=rmode, scan=scan,
                         recovery=recovery, ok=ok, message=message)


def _count(n: int, noun: str) -> str:
    plural = "anomalies" if noun == "anomaly" else f"{noun}s"
    return f"{n} {noun if n == 1 else plural}"


def require_ok(result: StartupResult) -> StartupResult:
    """Raise the typed error matching a failed check (what ``ActorSystem.start()`` does)."""
    if result.ok:
        return result
    if result.recovery is not None:
        raise RecoveryIncompleteError(f"{result.store}: {result.message}", result)
    details = "; ".join(a.describe() for a in (result.scan.errors[:3] if result.scan else ()))
    raise AnomaliesFoundError(f"{result.store}: {result.message}: {details}", result)
