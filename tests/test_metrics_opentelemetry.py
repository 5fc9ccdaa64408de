"""The opentelemetry exporter read back through the SDK's InMemoryMetricReader."""

from __future__ import annotations

from typing import Any

import papyra
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from papyra import Actor, ActorSystem
from papyra.exporters import create_exporter
from papyra.exporters.opentelemetry import OpenTelemetryExporter


def read(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    out: dict[str, list[Any]] = {}
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            assert sm.scope.name == "papyra"
            for metric in sm.metrics:
                out[metric.name] = [metric.unit, *metric.data.data_points]
    return out


def value(points: list[Any], **attributes: str) -> Any:
    for p in points[1:]:
        if dict(p.attributes) == attributes:
            return p
    raise AssertionError(f"no point with {attributes}: {points}")


async def test_store_counters_gauges_and_histograms_are_read_back() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    store = papyra.PluginManager(entry_points=False).open_store("memory://")
    exporter = OpenTelemetryExporter(store, meter_provider=provider)
    await store.record_event(actor_address="orders:1", event_type="ActorStarted")
    await store.append([papyra.EventRecord(system_id="s", actor_address="orders:2",
                                           event_type="ActorStarted") for _ in range(3)])
    await store.scan()
    metrics = read(reader)
    written = metrics["papyra.store.records_written"]
    assert written[0] == "{record}"
    assert value(written, backend="memory", kind="event").value == 4
    assert value(metrics["papyra.store.append_batches"], backend="memory").value == 2
    assert value(metrics["papyra.store.last_scan_clean"], backend="memory").value == 1
    latency = metrics["papyra.store.append_duration"]
    assert latency[0] == "s"
    assert value(latency, backend="memory").count == 2
    batch = value(metrics["papyra.store.append_batch_records"], backend="memory")
    assert (batch.count, batch.sum, batch.max) == (2, 4, 3)
    assert 4.0 in batch.explicit_bounds
    exporter.shutdown()
    await store.record_event(actor_address="orders:1", event_type="ActorStopped")
    after = read(reader)
    assert value(after["papyra.store.append_duration"], backend="memory").count == 2


async def test_an_actor_system_reports_actor_and_persistence_metrics(tmp_path: Any) -> None:
    class Echo(Actor):
        async def receive(self, message: Any) -> Any:
            return message

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    async with ActorSystem(system_id="otel", persistence=f"json://{tmp_path / 'p.ndjson'}"
                           ) as system:
        create_exporter("opentelemetry", system, meter_provider=provider)
        ref = system.spawn(Echo, name="echo")
        assert await ref.ask("x") == "x"
        await system.flush()
        metrics = read(reader)
        assert value(metrics["papyra.actor.spawned"]).value == 1
        assert value(metrics["papyra.actors"]).value == 1
        assert value(metrics["papyra.persistence.records_written"], kind="event").value >= 1
        assert value(metrics["papyra.store.records_written"], backend="json",
                     kind="event").value >= 1
