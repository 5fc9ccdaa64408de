"""Probing a store for the store-level gauges and for readiness (``/health/ready``).

A probe only reads: ``health()``, ``stats()`` and, at most every ``scan_interval`` seconds,
``scan()`` (with ``scan=False`` it reports the store's own last scan instead, e.g. the startup
check's). It never writes a byte, so it is safe to point at a live store. Results are cached
(``cache_seconds``), so a burst of scrapes or probes costs one measurement.

A scan that overlaps an append in another process can see the half-written last line. A probe
therefore re-scans once, after a short pause, when the only findings are at the tail
(``truncated_tail``, ``missing_trailing_newline``), and reports only what is still there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import attrs

from papyra.errors import PapyraError, StoreNotFoundError, StoreUnhealthyError
from papyra.metrics import LastScan
from papyra.reports import ScanReport, StoreStats

log = logging.getLogger("papyra.metrics")

TAIL_KINDS = frozenset({"truncated_tail", "missing_trailing_newline"})


@attrs.frozen(kw_only=True)
class StoreGauges:
    """What a probe measured: reachability, contents (stats) and the last scan's result."""

    backend: str
    store: str
    """The store URL, password removed."""
    up: bool
    exists: bool = True
    stats: StoreStats | None = None
    scan: LastScan | None = None
    error: str | None = None
    """Why the store is not up (no secrets: papyra errors carry redacted URLs)."""
    scan_pending: bool = False
    """The first scan has not finished yet (a big store): cleanliness is not known."""
    measured_at: float = attrs.field(factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "backend": self.backend,
            "up": self.up,
            "exists": self.exists,
            "error": self.error,
            "scan_pending": self.scan_pending,
            "measured_at": self.measured_at,
            "stats": self.stats.to_dict() if self.stats is not None else None,
            "last_scan": self.scan.to_dict() if self.scan is not None else None,
        }


@attrs.frozen(kw_only=True)
class Readiness:
    """The answer of ``/health/ready``: ready or not, a bounded reason code and details."""

    ready: bool
    reason: str | None = None
    """``unreachable``, ``unhealthy``, ``anomalies``, ``scan_pending``, ``not_started``,
    ``closing`` or None."""
    detail: str | None = None
    checks: dict[str, Any] = attrs.field(factory=dict)

    @property
    def status_code(self) -> int:
        return 200 if self.ready else 503

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": "ready" if self.ready else "not_ready",
            "ready": self.ready,
            "reason": self.reason,
            "detail": self.detail,
            "checks": self.checks,
        }


def readiness_of(gauges: StoreGauges) -> Readiness:
    """Ready = the store is reachable and its last scan found no error-severity anomaly.

    A store whose log does not exist yet is ready (a clean first boot, as for startup checks).
    """
    checks = {"store": gauges.to_dict()}
    if not gauges.up:
        reason = "unhealthy" if gauges.error and gauges.error.startswith("unhealthy") else (
            "unreachable")
        return Readiness(ready=False, reason=reason, detail=gauges.error, checks=checks)
    if gauges.scan_pending:
        return Readiness(ready=False, reason="scan_pending",
                         detail="the first scan of the store has not finished yet",
                         checks=checks)
    if gauges.scan is not None and not gauges.scan.clean:
        kinds = ", ".join(f"{k} x{n}" for k, n in sorted(gauges.scan.anomalies.items()))
        return Readiness(ready=False, reason="anomalies",
                         detail=f"the store has anomalies: {kinds}", checks=checks)
    return Readiness(ready=True, checks=checks)


class StoreProbe:
    """Measures one store, read-only, with caching. Share one probe between endpoints.

    ``health()`` and ``stats()`` run in the request, bounded by ``timeout``. Scans can take long
    on a big store, so a due scan runs in the background while requests get the previous
    result; only the very first one is waited for (up to ``timeout``; until it finishes the
    scan is *pending*). ``measure(force=True)`` (one-shot callers such as ``papyra metrics
    show``) scans inline without a time limit. Call :meth:`aclose` to stop a scan in flight.
    """

    def __init__(
        self,
        store: Any,
        *,
        scan: bool = True,
        stats: bool = True,
        scan_interval: float = 30.0,
        cache_seconds: float = 1.0,
        timeout: float = 10.0,
        tail_recheck_delay: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.scan_enabled = scan
        self.stats_enabled = stats
        self.scan_interval = scan_interval
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self.tail_recheck_delay = tail_recheck_delay
        self._clock = clock
        self._lock = asyncio.Lock()
        self._last: StoreGauges | None = None
        self._last_at = float("-inf")
        self._scan: LastScan | None = None
        self._scan_at = float("-inf")
        self._scan_error: str | None = None
        self._scan_missing = False
        self._scan_task: asyncio.Task[None] | None = None

    @property
    def backend(self) -> str:
        return str(getattr(self.store, "backend_name", "store"))

    @property
    def url(self) -> str:
        return str(getattr(self.store, "url", ""))

    async def measure(self, *, force: bool = False) -> StoreGauges:
        """Current gauges (cached for ``cache_seconds`` unless ``force``)."""
        async with self._lock:
            now = self._clock()
            if not force and self._last is not None and now - self._last_at < self.cache_seconds:
                return self._last
            gauges = await self._measure(force=force)
            self._last, self._last_at = gauges, self._clock()
            return gauges

    async def readiness(self, *, force: bool = False) -> Readiness:
        return readiness_of(await self.measure(force=force))

    async def aclose(self) -> None:
        """Cancel a background scan in flight and wait for it."""
        task, self._scan_task = self._scan_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _gauges(self, **fields: Any) -> StoreGauges:
        return StoreGauges(backend=self.backend, store=self.url, **fields)

    async def _measure(self, *, force: bool) -> StoreGauges:
        try:
            async with asyncio.timeout(self.timeout):
                reached = await self._reach()
        except TimeoutError:
            return self._gauges(up=False, error=f"unreachable: timed out after {self.timeout:g}s")
        if isinstance(reached, StoreGauges):
            return reached
        exists, stats = reached
        if not self.scan_enabled:
            # No scans of our own: report the store's last scan (e.g. the startup check's).
            metrics = getattr(self.store, "metrics", None)
            last = getattr(metrics, "last_scan", None)
            return self._gauges(up=True, exists=exists, stats=stats,
                                scan=last if isinstance(last, LastScan) else None)
        if not exists:
            self._scan = None
            return self._gauges(up=True, exists=False, stats=stats)
        if force:
            await self.aclose()
            await self._run_scan()
        else:
            await self._refresh_scan()
        if self._scan_missing:
            return self._gauges(up=True, exists=False, stats=stats)
        if self._scan_error is not None:
            return self._gauges(up=False, stats=stats, error=self._scan_error)
        return self._gauges(up=True, stats=stats, scan=self._scan,
                            scan_pending=self._scan is None)

    async def _reach(self) -> StoreGauges | tuple[bool, StoreStats | None]:
        """health() and stats(): gauges for an unreachable store, else (exists, stats)."""
        try:
            health = await self.store.health()
        except Exception as exc:
            return self._gauges(up=False, error=_describe(exc))
        if not health.ok:
            # "unhealthy" is a durability failure the store recorded (e.g. a failed fsync);
            # anything else a backend's health() reports means it cannot be reached.
            durable_failure = getattr(self.store, "unhealthy_reason", None) is not None
            kind = "unhealthy" if durable_failure else "unreachable"
            return self._gauges(up=False, error=f"{kind}: {health.reason or 'no reason given'}")
        if not self.stats_enabled:
            return True, None
        try:
            return True, await self.store.stats()
        except StoreNotFoundError:
            return False, None
        except Exception as exc:
            return self._gauges(up=False, error=_describe(exc))

    async def _refresh_scan(self) -> None:
        due = self._clock() - self._scan_at >= self.scan_interval
        if due and (self._scan_task is None or self._scan_task.done()):
            self._scan_task = asyncio.create_task(self._run_scan(), name="papyra-probe-scan")
        if self._scan is None and self._scan_error is None and self._scan_task is not None:
            # The first scan: worth waiting a little for, so a small store answers at once.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._scan_task), self.timeout)

    async def _run_scan(self) -> None:
        try:
            report = await self._scan_settled()
        except StoreNotFoundError:
            self._scan, self._scan_missing, self._scan_error = None, True, None
        except Exception as exc:
            self._scan_error, self._scan_missing = _describe(exc), False
        else:
            self._scan, self._scan_missing, self._scan_error = LastScan.of(report), False, None
        self._scan_at = self._clock()

    async def _scan_settled(self) -> ScanReport:
        report: ScanReport = await self.store.scan()
        kinds = {a.kind for a in report.errors}
        if kinds and kinds <= TAIL_KINDS:
            await asyncio.sleep(self.tail_recheck_delay)
            report = await self.store.scan()
        return report


def _describe(exc: BaseException) -> str:
    if isinstance(exc, StoreUnhealthyError):
        return f"unhealthy: {exc}"
    if isinstance(exc, PapyraError):
        return f"unreachable: {exc}"
    if isinstance(exc, OSError):
        return f"unreachable: {type(exc).__name__}: {exc.strerror or exc}"
    log.error("store probe failed unexpectedly", exc_info=exc)
    return f"unreachable: {type(exc).__name__}"
