"""The actor system's own counters (DESIGN §8): plain data with a :meth:`snapshot`.

Exporters read ``system.metrics.snapshot()``. Labels stay bounded: nothing here is keyed by an
actor id or name. Gauges (alive actors, mailbox depth, persistence queue depth) are read when
the snapshot is taken.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

GaugeSource = Callable[[], dict[str, int]]


class SystemMetrics:
    """Counters of one actor system (share one object between systems to sum them)."""

    def __init__(self) -> None:
        self.actors_spawned = 0
        self.actors_stopped = 0
        self.messages_processed = 0
        self.messages_failed = 0
        self.restarts = 0
        self.dead_letters = 0
        self.asks_timed_out = 0
        self.hook_errors = 0
        self.records_enqueued: Counter[str] = Counter()  # by kind
        self.records_written: Counter[str] = Counter()  # by kind
        self.records_dropped: Counter[str] = Counter()  # by reason: overflow|failed|closed|invalid
        self.persist_failures = 0  # failed append attempts (each retry counts)
        self.persist_batches = 0
        self._gauges: list[GaugeSource] = []

    def add_gauges(self, source: GaugeSource) -> None:
        self._gauges.append(source)

    def remove_gauges(self, source: GaugeSource) -> None:
        if source in self._gauges:
            self._gauges.remove(source)

    def gauges(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for source in self._gauges:
            out.update(source())
        for name in ("actors_alive", "mailbox_depth", "persistence_queue_depth"):
            out.setdefault(name, 0)
        return dict(out)

    def snapshot(self) -> dict[str, Any]:
        gauges = self.gauges()
        live = gauges.pop("messages_processed_live", 0)
        return {
            "actors_spawned": self.actors_spawned,
            "actors_stopped": self.actors_stopped,
            "messages_processed": self.messages_processed + live,
            "messages_failed": self.messages_failed,
            "restarts": self.restarts,
            "dead_letters": self.dead_letters,
            "asks_timed_out": self.asks_timed_out,
            "hook_errors": self.hook_errors,
            "records_enqueued": dict(self.records_enqueued),
            "records_written": dict(self.records_written),
            "records_dropped": dict(self.records_dropped),
            "persist_failures": self.persist_failures,
            "persist_batches": self.persist_batches,
            **gauges,
        }
