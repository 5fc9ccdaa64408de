"""The json exporter, the catalogue and the store probe behind the store-level gauges."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import papyra
import pytest
from papyra.exporters import StoreProbe, create_exporter, readiness_of
from papyra.exporters.catalog import SPECS, collect, flatten_snapshot
from papyra.exporters.json import JsonExporter
from papyra.metrics import StoreMetrics
from papyra.reports import Anomaly, Health, ScanReport


def fresh_store() -> Any:
    return papyra.PluginManager(entry_points=False).open_store("memory://")


async def test_json_exporter_lists_every_store_metric_with_samples() -> None:
    store = fresh_store()
    await store.record_event(actor_address="orders:1", event_type="ActorStarted")
    doc = orjson.loads(JsonExporter(store).dumps())
    metrics = doc["metrics"]
    store_specs = [s.name for s in SPECS if s.source in {"store", "process"}]
    assert set(store_specs) <= set(metrics)
    written = metrics["papyra_store_records_written_total"]
    assert written["type"] == "counter"
    assert written["labels"] == ["backend", "kind"]
    assert written["samples"] == [{"labels": {"backend": "memory", "kind": "event"}, "value": 1}]
    latency = metrics["papyra_store_append_duration_seconds"]["samples"][0]
    assert latency["count"] == 1
    assert latency["buckets"][-1] == {"le": "+Inf", "count": 1}


def test_json_exporter_is_a_builtin_plugin() -> None:
    exporter = create_exporter("json", StoreMetrics("memory"),
                               plugins=papyra.PluginManager(entry_points=False))
    assert "papyra_store_fsyncs_total" in exporter.snapshot()["metrics"]


async def test_probe_measures_records_bytes_age_and_last_scan() -> None:
    store = fresh_store()
    await store.record_event(actor_address="orders:1", event_type="ActorStarted",
                             timestamp=1000.0)
    await store.record_event(actor_address="orders:1", event_type="ActorStopped",
                             timestamp=1060.0)
    gauges = await StoreProbe(store).measure()
    assert gauges.up
    assert gauges.exists
    assert gauges.scan is not None
    assert gauges.scan.clean
    values = {f.spec.name: f for f in collect([gauges], now=1100.0)}
    assert values["papyra_store_records"].values == {("memory", "event"): 2}
    assert values["papyra_store_oldest_record_age_seconds"].values == {("memory",): 100.0}
    assert values["papyra_store_newest_record_age_seconds"].values == {("memory",): 40.0}
    assert values["papyra_store_last_seq"].values == {("memory",): 2}
    assert values["papyra_store_up"].values == {("memory",): 1}
    assert readiness_of(gauges).ready


class _StoreWithFindings:
    """A store whose scan finds a mid-file checksum failure (what a corrupt file reports)."""

    backend_name = "fake"
    url = "fake://x"

    def __init__(self, anomalies: list[Anomaly]) -> None:
        self.anomalies = anomalies
        self.scans = 0

    async def health(self) -> Health:
        return Health(ok=True)

    async def stats(self) -> papyra.StoreStats:
        return papyra.StoreStats(records_by_kind={"event": 3}, bytes=10, first_seq=1,
                                 last_seq=3, oldest_timestamp=1.0, newest_timestamp=2.0)

    async def scan(self) -> ScanReport:
        self.scans += 1
        return ScanReport(store=self.url, backend="fake", records=3,
                          anomalies=self.anomalies if self.scans == 1 else [])


async def test_probe_is_not_ready_while_the_store_has_anomalies() -> None:
    bad = Anomaly(kind="checksum_mismatch", file="x", line=2, detail="crc")
    probe = StoreProbe(_StoreWithFindings([bad, bad]), tail_recheck_delay=0)
    ready = await probe.readiness()
    assert not ready.ready
    assert ready.status_code == 503
    assert ready.reason == "anomalies"
    assert "checksum_mismatch x2" in (ready.detail or "")


async def test_probe_rescans_once_when_only_the_tail_looked_torn() -> None:
    torn = Anomaly(kind="truncated_tail", file="x", line=4, detail="no newline")
    store = _StoreWithFindings([torn])
    ready = await StoreProbe(store, tail_recheck_delay=0).readiness()
    assert store.scans == 2
    assert ready.ready


async def test_probe_reports_an_unhealthy_store_as_not_ready() -> None:
    store = fresh_store()
    store.unhealthy_reason = "fsync failed"
    ready = await StoreProbe(store).readiness()
    assert not ready.ready
    assert ready.reason == "unhealthy"
    assert "fsync failed" in (ready.detail or "")


async def test_probe_caches_its_measurement_between_scrapes() -> None:
    store = _StoreWithFindings([])
    probe = StoreProbe(store, cache_seconds=60)
    await probe.measure()
    await probe.measure()
    assert store.scans == 1
    await probe.measure(force=True)
    assert store.scans == 2


def test_system_snapshots_are_flattened_without_actor_ids_as_labels() -> None:
    flat = flatten_snapshot({"messages": 5, "mailbox_depth": {"orders:1": 2, "orders:2": 3},
                             "persistence": {"queue_depth": 4, "dropped": 1}, "name": "x"})
    assert flat["messages"] == 5
    assert flat["mailbox_depth"] == 5
    assert flat["persistence_queue_depth"] == 4
    assert "name" not in flat


class _System:
    """Stands in for an ActorSystem: ``metrics.snapshot()`` plus the store it writes to."""

    def __init__(self, store: Any, snapshot: dict[str, Any]) -> None:
        self.store = store
        self._snapshot = snapshot
        self.metrics = self

    def snapshot(self) -> dict[str, Any]:
        return self._snapshot


async def test_an_actor_system_source_exports_its_counters_and_its_store() -> None:
    store = fresh_store()
    await store.record_event(actor_address="orders:1", event_type="ActorStarted")
    system = _System(store, {"messages_processed": 7, "restarts": 1, "dead_letters": 2,
                             "mailbox_depth": 3, "records_dropped": {"overflow": 4}})
    families = {f.spec.name: f for f in collect([system, store])}
    assert families["papyra_actor_messages_total"].values == {(): 7}
    assert families["papyra_actor_restarts_total"].values == {(): 1}
    assert families["papyra_actor_dead_letters_total"].values == {(): 2}
    assert families["papyra_actor_mailbox_messages"].values == {(): 3}
    assert families["papyra_persistence_records_dropped_total"].values == {("overflow",): 4}
    assert families["papyra_store_append_batches_total"].values == {("memory",): 1}


def test_the_opentelemetry_exporter_without_the_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib
    import sys

    for name in [m for m in sys.modules if m == "opentelemetry" or m.startswith("opentelemetry.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.delitem(sys.modules, "papyra.exporters.opentelemetry", raising=False)
    module = importlib.import_module("papyra.exporters.opentelemetry")
    try:
        with pytest.raises(papyra.ConfigError, match=r"papyra-core\[opentelemetry\]"):
            create_exporter("opentelemetry", fresh_store(),
                            plugins=papyra.PluginManager(entry_points=False))
        with pytest.raises(papyra.ConfigError):
            module.OpenTelemetryExporter(fresh_store())
    finally:
        sys.modules.pop("papyra.exporters.opentelemetry", None)


class _SlowScanStore(_StoreWithFindings):
    """Scans take until ``release`` is set (a big store)."""

    def __init__(self) -> None:
        super().__init__([])
        self.release = asyncio.Event()
        self.started = 0

    async def scan(self) -> ScanReport:
        self.started += 1
        await self.release.wait()
        return await super().scan()


async def test_a_slow_first_scan_makes_readiness_pending_without_blocking_requests() -> None:
    store = _SlowScanStore()
    probe = StoreProbe(store, timeout=0.05, cache_seconds=0, scan_interval=0)
    first = await probe.readiness()
    assert (first.ready, first.reason) == (False, "scan_pending")
    again = await probe.readiness()
    assert again.reason == "scan_pending"
    assert store.started == 1  # one scan in flight, never two
    store.release.set()
    await asyncio.sleep(0.01)
    assert (await probe.readiness()).ready
    await probe.aclose()


async def test_closing_a_probe_cancels_its_scan_in_flight() -> None:
    store = _SlowScanStore()
    probe = StoreProbe(store, timeout=0.01)
    await probe.measure()
    await probe.aclose()
    assert store.scans == 0
