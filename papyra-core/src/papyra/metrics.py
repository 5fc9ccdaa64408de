"""In-process metric counters (DESIGN §8). Exporters (Prometheus, JSON, OpenTelemetry) read
:meth:`StoreMetrics.snapshot`; nothing here touches a global registry.

Labels are bounded: backend, kind, mode, anomaly kind, reason. Never actor ids, paths or keys.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

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

    def observe(self, value: float) -> None:
        i = bisect.bisect_left(self.buckets, value)
        with self._lock:
            self.counts[i] += 1
            self.sum += value
            self.count += 1

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
        self._lock = threading.Lock()

    def add(self, name: str, amount: int = 1) -> None:
        """Increment a plain counter attribute thread-safely."""
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def observe_append(self, kinds: Counter[str], sizes: Counter[str], seconds: float) -> None:
        """Count one successful append batch."""
        for kind, n in kinds.items():
            self.records_written.inc(kind, n)
        for kind, n in sizes.items():
            self.bytes_written.inc(kind, n)
        self.add("append_batches")
        self.append_latency.observe(seconds)
        self.batch_size.observe(sum(kinds.values()))

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
        }
