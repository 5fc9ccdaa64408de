"""The ``prometheus`` exporter: a prometheus-client collector over papyra's metrics.

Nothing is registered anywhere at import. The application passes its registry::

    from prometheus_client import CollectorRegistry
    from papyra.exporters.prometheus import PrometheusCollector

    registry = CollectorRegistry()
    collector = PrometheusCollector(store, system).register(registry)
    ...
    collector.unregister()

Values are read from papyra's own counters at scrape time (``collect()``); ``describe()``
declares every metric name up front so a second collector of the same names on one registry is
refused instead of silently exporting the samples twice. Give one collector all your sources:
series with equal labels are added up (gauges such as ``papyra_store_healthy`` take the minimum).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from papyra.exporters.catalog import SPECS, MetricFamily, MetricSpec, collect

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class PrometheusCollector:
    """A prometheus-client custom collector (``collect()`` and ``describe()``)."""

    name = "prometheus"

    def __init__(self, *sources: Any) -> None:
        self.sources: list[Any] = list(sources)
        self._registry: CollectorRegistry | None = None

    def add_source(self, source: Any) -> None:
        """Add a store, an ActorSystem, StoreGauges or a callable returning one."""
        self.sources.append(source)

    def register(self, registry: CollectorRegistry) -> PrometheusCollector:
        """Register on ``registry`` (never the global one unless you pass it). Returns self."""
        registry.register(self)
        self._registry = registry
        return self

    def unregister(self) -> None:
        """Remove from the registry it was registered on (idempotent)."""
        if self._registry is not None:
            self._registry.unregister(self)
            self._registry = None

    def describe(self) -> Iterator[Metric]:
        for spec in SPECS:
            yield _empty(spec)

    def collect(self) -> Iterator[Metric]:
        for family in collect(self.sources):
            yield to_prometheus(family)


def _empty(spec: MetricSpec) -> Metric:
    labels = list(spec.labels)
    unit = _unit(spec)
    if spec.type == "counter":
        return CounterMetricFamily(spec.base_name, spec.help, labels=labels, unit=unit)
    if spec.type == "histogram":
        return HistogramMetricFamily(spec.name, spec.help, labels=labels, unit=unit)
    return GaugeMetricFamily(spec.name, spec.help, labels=labels, unit=unit)


def _unit(spec: MetricSpec) -> str:
    return spec.unit if spec.unit and spec.base_name.endswith("_" + spec.unit) else ""


def to_prometheus(family: MetricFamily) -> Metric:
    """One catalogue family as a prometheus-client metric family."""
    spec = family.spec
    metric = _empty(spec)
    if isinstance(metric, HistogramMetricFamily):
        for labels, hist in family.histograms.items():
            buckets = [(_go_float(b), float(n)) for b, n in hist.buckets]
            buckets.append(("+Inf", float(hist.count)))
            metric.add_metric(list(labels), buckets, hist.sum)
    else:
        assert isinstance(metric, CounterMetricFamily | GaugeMetricFamily)
        for labels, value in sorted(family.values.items()):
            metric.add_metric(list(labels), value)
    return metric


def render(*sources: Any, accept: str | None = None) -> tuple[bytes, str]:
    """The exposition text for ``sources`` and its content type.

    ``accept`` is the request's ``Accept`` header: OpenMetrics when it asks for it, else the
    Prometheus text format 0.0.4.
    """
    registry = CollectorRegistry(auto_describe=True)
    PrometheusCollector(*sources).register(registry)
    if accept:
        encoder, content_type = choose_encoder(accept)
        return encoder(registry), content_type
    return generate_latest(registry), CONTENT_TYPE


def create(*sources: Any, **options: Any) -> PrometheusCollector:
    """Exporter factory registered under the name ``prometheus``.

    ``registry=`` (optional) registers the collector there at once.
    """
    registry = options.pop("registry", None)
    if options:
        from papyra.errors import ConfigError

        raise ConfigError(f"unknown option(s) for the prometheus exporter: {sorted(options)}")
    collector = PrometheusCollector(*sources)
    if registry is not None:
        collector.register(registry)
    return collector


def names(specs: Iterable[MetricSpec] = SPECS) -> list[str]:
    """Every metric name as it appears in the exposition (counters with ``_total``)."""
    return [s.name for s in specs]


def _go_float(value: float) -> str:
    """Bucket bounds as Prometheus writes them (``0.001``, ``1.0``, ``+Inf``)."""
    from prometheus_client.utils import floatToGoString

    return str(floatToGoString(value))  # type: ignore[no-untyped-call]
