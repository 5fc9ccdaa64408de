"""In-process metric counters (DESIGN §8). Exporters (Prometheus, JSON, OpenTelemetry) read
:meth:`StoreMetrics.snapshot`; nothing here touches a global registry.

Labels are bounded: backend, kind, mode, anomaly kind, reason. Never actor ids, paths or keys.
"""

from __future__ import annotations

import bisect
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from papyra.reports import ScanReport

LATENCY_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)
BATCH_BUCKETS: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class Histogram:
    """A fixed-bucket histogram (cumulative counts are computed on export)."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)
        self.sum = 0.0
        self.count = 0
        self._lock = threading.Lock()
        self._listeners: tuple[Callable[[float], None], ...] = ()

    def observe(self, value: float) -> None:
        i = bisect.bisect_left(self.buckets, value)
        with self._lock:
            self.counts[i] += 1
            self.sum += value
            self.count += 1
        for listener in self._listeners:
            # an exporter must never break the code path it measures
            with contextlib.suppress(Exception):
                listener(value)

    def subscribe(self, listener: Callable[[float], None]) -> Callable[[], None]:
        """Call ``listener(value)`` on every observation (used by push-style exporters such as
        OpenTelemetry histograms). Returns a function that unsubscribes."""
        with self._lock:
            self._listeners = (*self._listeners, listener)

        def unsubscribe() -> None:
            with self._lock:
                self._listeners = tuple(x for x in self._listeners if x is not listener)

        return unsubscribe

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            cumulative: list[tuple[float, int]] = []
            running = 0
            for bound, n in zip(self.buckets, self.counts, strict=False):
                running += n
                cumulative.append((bound, running))
            return {
                "buckets": cumulative,
                "count": self.count,
                "sum": self.sum,
            }

    def quantile(self, q: float) -> float | None:
        """Upper bound of the bucket holding quantile ``q`` (None when empty)."""
        with self._lock:
            if not self.count:
                return None
            target = q * self.count
            running = 0
            for bound, n in zip(self.buckets, self.counts, strict=False):
                running += n
                if running >= target:
                    return bound
            return float("inf")


class LabelledCounter:
    """A counter with one bounded label."""

    def __init__(self) -> None:
        self._values: Counter[str] = Counter()
        self._lock = threading.Lock()

    def inc(self, label: str, amount: int | float = 1) -> None:
        with self._lock:
            self._values[label] += amount  # type: ignore[assignment]

    def inc_many(self, amounts: Mapping[str, int | float]) -> None:
        """Add several labels' amounts under one lock acquisition."""
        with self._lock:
            values = self._values
            for label, amount in amounts.items():
                values[label] += amount  # type: ignore[assignment]

    def get(self, label: str) -> int | float:
        return self._values.get(label, 0)

    def total(self) -> int | float:
        return sum(self._values.values())

    def snapshot(self) -> dict[str, int | float]:
        with self._lock:
            return dict(self._values)


class StoreMetrics:
    """Counters for one store instance (one per backend object)."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.records_written = LabelledCounter()  # by kind
        self.bytes_written = LabelledCounter()  # by kind
        self.append_batches = 0
        self.append_latency = Histogram(LATENCY_BUCKETS)
        self.batch_size = Histogram(BATCH_BUCKETS)
        self.fsyncs = 0
        self.write_errors = 0
        self.records_read = LabelledCounter()  # by kind
        self.scans = 0
        self.anomalies = LabelledCounter()  # by anomaly kind
        self.recoveries = LabelledCounter()  # by mode
        self.records_dropped = LabelledCounter()  # by reason: retention | repair | overflow
        self.records_quarantined = 0
        self.compactions = 0
        self.reclaimed_bytes = 0
        self.last_scan: LastScan | None = None
        self._lock = threading.Lock()

    def add(self, name: str, amount: int = 1) -> None:
        """Increment a plain counter attribute thread-safely."""
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def observe_append(self, kinds: Counter[str], sizes: Counter[str], seconds: float) -> None:
        """Count one successful append batch (a few lock round trips, whatever its size)."""
        self.records_written.inc_many(kinds)
        self.bytes_written.inc_many(sizes)
        with self._lock:
            self.append_batches += 1
        self.append_latency.observe(seconds)
        self.batch_size.observe(sum(kinds.values()))

    def observe_scan(self, report: ScanReport) -> None:
        """Count one finished scan and remember its result (the ``last scan`` gauges)."""
        self.add("scans")
        for a in report.anomalies:
            self.anomalies.inc(a.kind)
        self.last_scan = LastScan.of(report)

    def snapshot(self) -> dict[str, Any]:
        """Every counter as plain data (what the ``json`` exporter prints)."""
        return {
            "backend": self.backend,
            "records_written": self.records_written.snapshot(),
            "bytes_written": self.bytes_written.snapshot(),
            "append_batches": self.append_batches,
            "append_latency_seconds": self.append_latency.snapshot(),
            "append_batch_size": self.batch_size.snapshot(),
            "fsyncs": self.fsyncs,
            "write_errors": self.write_errors,
            "records_read": self.records_read.snapshot(),
            "scans": self.scans,
            "anomalies": self.anomalies.snapshot(),
            "recoveries": self.recoveries.snapshot(),
            "records_dropped": self.records_dropped.snapshot(),
            "records_quarantined": self.records_quarantined,
            "compactions": self.compactions,
            "reclaimed_bytes": self.reclaimed_bytes,
            "last_scan": self.last_scan.to_dict() if self.last_scan is not None else None,
        }


class LastScan:
    """The outcome of the most recent scan: when, whether clean, anomalies by kind."""

    __slots__ = ("anomalies", "clean", "exists", "records", "timestamp")

    def __init__(self, *, timestamp: float, clean: bool, anomalies: dict[str, int],
                 records: int, exists: bool = True) -> None:
        self.timestamp = timestamp
        self.clean = clean
        self.anomalies = anomalies
        self.records = records
        self.exists = exists

    @classmethod
    def of(cls, report: ScanReport, *, timestamp: float | None = None) -> LastScan:
        return cls(
            timestamp=time.time() if timestamp is None else timestamp,
            clean=report.clean,
            anomalies=report.counts_by_kind(),
            records=report.records,
            exists=report.exists,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "timestamp": self.timestamp,
            "clean": self.clean,
            "anomalies": dict(self.anomalies),
            "records": self.records,
            "exists": self.exists,
        }
