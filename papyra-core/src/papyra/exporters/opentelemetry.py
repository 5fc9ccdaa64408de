"""The ``opentelemetry`` exporter: papyra's metrics as OpenTelemetry instruments.

Needs the extra: ``pip install 'papyra-core[opentelemetry]'`` (the OpenTelemetry API; the
application brings the SDK and its exporters)::

    from opentelemetry.sdk.metrics import MeterProvider
    from papyra.exporters.opentelemetry import OpenTelemetryExporter

    exporter = OpenTelemetryExporter(store, system, meter_provider=provider)
    ...
    exporter.shutdown()

Counters and gauges are *observable* instruments: their callbacks read papyra's counters when
the SDK collects, so nothing is done per record. The two histograms (append latency, batch size)
are synchronous OpenTelemetry histograms fed by papyra's own histograms as values arrive.
Instrument names are the Prometheus names in OpenTelemetry style: ``papyra.store.records_written``
(unit ``{record}``), ``papyra.store.append_duration`` (unit ``s``); attributes are the same bounded
labels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from papyra.errors import ConfigError
from papyra.exporters.catalog import SPECS, MetricSpec, collect, resolve
from papyra.metrics import StoreMetrics

try:
    from opentelemetry import metrics as otel_metrics
    from opentelemetry.metrics import CallbackOptions, Observation
except ImportError:  # pragma: no cover - depends on the installed extras
    otel_metrics = None  # type: ignore[assignment]

INSTALL_HINT = "the opentelemetry exporter needs: pip install 'papyra-core[opentelemetry]'"

_HISTOGRAM_SOURCES = {
    "papyra_store_append_duration_seconds": "append_latency",
    "papyra_store_append_batch_records": "batch_size",
}


class OpenTelemetryExporter:
    """Registers papyra's instruments on a meter from ``meter_provider``."""

    name = "opentelemetry"

    def __init__(self, *sources: Any, meter_provider: Any = None,
                 meter_name: str = "papyra") -> None:
        if otel_metrics is None:
            raise ConfigError(INSTALL_HINT)
        from papyra import __version__

        self.sources: list[Any] = list(sources)
        provider = meter_provider if meter_provider is not None else (
            otel_metrics.get_meter_provider())
        self.meter = provider.get_meter(meter_name, __version__)
        self.closed = False
        self._histograms: dict[str, Any] = {}
        self._subscribed: dict[int, list[Callable[[], None]]] = {}
        for spec in SPECS:
            self._instrument(spec)
        self._subscribe_new()

    def add_source(self, source: Any) -> None:
        self.sources.append(source)
        self._subscribe_new()

    def shutdown(self) -> None:
        """Stop reporting (observable callbacks report nothing, histograms are detached)."""
        self.closed = True
        for unsubscribes in self._subscribed.values():
            for unsubscribe in unsubscribes:
                unsubscribe()
        self._subscribed.clear()

    # ---------------------------------------------------------------- instruments

    def _instrument(self, spec: MetricSpec) -> None:
        kwargs = {"unit": spec.otel_unit, "description": spec.help}
        if spec.type == "histogram":
            from papyra.metrics import BATCH_BUCKETS, LATENCY_BUCKETS

            bounds = LATENCY_BUCKETS if spec.unit == "seconds" else BATCH_BUCKETS
            self._histograms[spec.name] = self.meter.create_histogram(
                spec.otel_name, explicit_bucket_boundaries_advisory=list(bounds), **kwargs)
            return
        callback = self._callback(spec)
        if spec.type == "counter":
            self.meter.create_observable_counter(spec.otel_name, callbacks=[callback], **kwargs)
        else:
            self.meter.create_observable_gauge(spec.otel_name, callbacks=[callback], **kwargs)

    def _callback(self, spec: MetricSpec) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            if self.closed:
                return []
            self._subscribe_new()
            for family in collect(self.sources):
                if family.spec.name == spec.name:
                    return [Observation(value, labels) for labels, value in family.samples()]
            return []

        return observe

    def _subscribe_new(self) -> None:
        """Feed the OpenTelemetry histograms from every store's histograms (once per store)."""
        if self.closed:
            return
        for metrics, _store in resolve(self.sources).stores:
            if id(metrics) in self._subscribed:
                continue
            self._subscribed[id(metrics)] = [
                getattr(metrics, attr).subscribe(self._recorder(name, metrics))
                for name, attr in _HISTOGRAM_SOURCES.items()
            ]

    def _recorder(self, name: str, metrics: StoreMetrics) -> Callable[[float], None]:
        histogram = self._histograms[name]
        attributes = {"backend": metrics.backend}

        def record(value: float) -> None:
            histogram.record(value, attributes)

        return record


def create(*sources: Any, **options: Any) -> OpenTelemetryExporter:
    """Exporter factory registered under the name ``opentelemetry``
    (options: ``meter_provider``, ``meter_name``)."""
    return OpenTelemetryExporter(*sources, **options)
