"""The prometheus exporter: a collector on a registry the application passes in, whose
exposition Prometheus's own ``promtool check metrics`` accepts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Any

import papyra
import pytest
from papyra.exporters import StoreProbe, create_exporter
from papyra.exporters.catalog import SPECS
from papyra.exporters.prometheus import PrometheusCollector, render
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

ALLOWED_LABELS = {"backend", "kind", "mode", "anomaly_kind", "reason", "version"}


def fresh_store(url: str = "memory://", **options: Any) -> Any:
    return papyra.PluginManager(entry_points=False).open_store(url, **options)


def audit() -> papyra.AuditRecord:
    return papyra.AuditRecord(system_id="orders", total_actors=2, alive_actors=2,
                              stopping_actors=0, restarting_actors=0, registry_size=2,
                              dead_letters_count=0)


def promtool_check(exposition: bytes) -> None:
    path = shutil.which("promtool")
    if path is None:
        message = "promtool not found (Debian package 'prometheus')"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    result = subprocess.run([path, "check", "metrics"], input=exposition,
                            capture_output=True, timeout=60, check=False)
    problems = (result.stdout + result.stderr).decode()
    assert result.returncode == 0, problems
    assert not problems.strip(), problems


async def busy_store() -> Any:
    store = fresh_store()
    await store.record_event(actor_address="orders:1", event_type="ActorStarted")
    await store.append([audit(), audit()])
    await store.record_dead_letter(target=None, message_type="Ping", payload=None,
                                   expects_reply=False)
    [r async for r in store.read()]
    await store.scan()
    await store.compact(papyra.RetentionPolicy(max_records=2))
    await store.recover("ignore")
    return store


async def test_exposition_passes_promtool_check_metrics() -> None:
    store = await busy_store()
    probe = StoreProbe(store)
    body, _ = render(store, await probe.measure())
    assert b"papyra_store_records_written_total" in body
    promtool_check(body)


async def test_openmetrics_exposition_is_served_when_asked_for() -> None:
    store = await busy_store()
    body, content_type = render(store, accept="application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")


async def test_collector_reports_what_the_store_did() -> None:
    store = await busy_store()
    registry = CollectorRegistry(auto_describe=True)
    PrometheusCollector(store).register(registry)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"backend": "memory", **labels})

    assert value("papyra_store_records_written_total", kind="audit") == 2
    assert value("papyra_store_records_written_total", kind="event") == 1
    assert value("papyra_store_records_written_total", kind="dead_letter") == 1
    assert value("papyra_store_append_batches_total") == 3
    assert value("papyra_store_append_duration_seconds_count") == 3
    assert value("papyra_store_append_batch_records_bucket", le="2.0") == 3
    assert value("papyra_store_append_batch_records_sum") == 4
    assert value("papyra_store_records_read_total", kind="audit") == 2
    assert value("papyra_store_compactions_total") == 1
    assert value("papyra_store_records_dropped_total", reason="retention") == 2
    assert value("papyra_store_recoveries_total", mode="ignore") == 1
    assert value("papyra_store_last_scan_clean") == 1
    assert value("papyra_store_healthy") == 1
    await store.aclose()
    assert value("papyra_store_healthy") == 0


async def test_importing_the_exporters_registers_nothing_globally() -> None:
    before = generate_latest(REGISTRY)
    import papyra.exporters.prometheus  # noqa: F401

    store = await busy_store()
    PrometheusCollector(store)
    assert b"papyra_" not in generate_latest(REGISTRY)
    assert b"papyra_" not in before


def test_a_second_collector_on_the_same_registry_is_refused() -> None:
    registry = CollectorRegistry(auto_describe=True)
    PrometheusCollector(fresh_store()).register(registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        PrometheusCollector(fresh_store()).register(registry)


def test_unregister_removes_the_collector() -> None:
    registry = CollectorRegistry(auto_describe=True)
    collector = PrometheusCollector(fresh_store()).register(registry)
    collector.unregister()
    collector.unregister()
    assert b"papyra_" not in generate_latest(registry)


async def test_two_stores_of_one_backend_are_added_up_not_duplicated() -> None:
    a, b = fresh_store(), fresh_store()
    await a.record_event(actor_address="x:1", event_type="E")
    await b.record_event(actor_address="x:2", event_type="E")
    registry = CollectorRegistry(auto_describe=True)
    PrometheusCollector(a, b, a).register(registry)
    assert registry.get_sample_value(
        "papyra_store_records_written_total", {"backend": "memory", "kind": "event"}) == 2
    promtool_check(generate_latest(registry))


def test_names_use_the_papyra_prefix_base_units_and_bounded_labels() -> None:
    for spec in SPECS:
        assert re.fullmatch(r"papyra_[a-z_]+", spec.name), spec.name
        assert set(spec.labels) <= ALLOWED_LABELS, spec.name
        if spec.type == "counter":
            assert spec.name.endswith("_total"), spec.name
        else:
            assert not spec.name.endswith("_total"), spec.name
        if spec.unit:
            assert spec.base_name.endswith("_" + spec.unit), spec.name
        assert not re.search(r"_(ms|milliseconds|kb|mb|percent)(_|$)", spec.name)


async def test_lazy_sources_are_resolved_at_every_scrape() -> None:
    holder: dict[str, Any] = {}
    registry = CollectorRegistry(auto_describe=True)
    PrometheusCollector(lambda: holder.get("store")).register(registry)
    assert registry.get_sample_value("papyra_store_append_batches_total",
                                     {"backend": "memory"}) is None
    holder["store"] = fresh_store()
    await holder["store"].record_event(actor_address="x:1", event_type="E")
    assert registry.get_sample_value("papyra_store_append_batches_total",
                                     {"backend": "memory"}) == 1


def test_the_prometheus_exporter_is_a_builtin_plugin() -> None:
    manager = papyra.PluginManager(entry_points=False)
    assert {"prometheus", "json", "opentelemetry"} <= set(manager.metric_exporters())
    registry = CollectorRegistry(auto_describe=True)
    exporter = create_exporter("prometheus", fresh_store(), plugins=manager, registry=registry)
    assert isinstance(exporter, PrometheusCollector)
    assert registry.get_sample_value("papyra_store_fsyncs_total", {"backend": "memory"}) == 0
    assert "exporter:prometheus" in manager.infos["builtin"].components


def test_an_unknown_exporter_is_a_configuration_error() -> None:
    manager = papyra.PluginManager(entry_points=False)
    with pytest.raises(papyra.ConfigError, match="unknown metric exporter 'statsd'"):
        create_exporter("statsd", plugins=manager)


def test_exporters_named_in_the_config_are_built_with_their_options(tmp_path: Any) -> None:
    from papyra.config import load_config
    from papyra.exporters import create_exporters

    (tmp_path / "papyra.toml").write_text('[metrics]\nexporters = ["prometheus", "json"]\n')
    config = load_config(tmp_path / "papyra.toml", env={})
    registry = CollectorRegistry(auto_describe=True)
    built = create_exporters(config.metrics_exporters, fresh_store(),
                             plugins=papyra.PluginManager(entry_points=False),
                             options={"prometheus": {"registry": registry}})
    assert sorted(built) == ["json", "prometheus"]
    assert registry.get_sample_value("papyra_store_scans_total", {"backend": "memory"}) == 0
