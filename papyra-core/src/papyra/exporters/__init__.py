"""Metric exporters (DESIGN §8): one catalogue of metrics (:mod:`papyra.exporters.catalog`),
rendered by exporter plugins registered through ``papyra_register_metric_exporters``:

- ``prometheus`` — a prometheus-client collector on a registry you pass in
  (:mod:`papyra.exporters.prometheus`);
- ``json`` — one JSON document (:mod:`papyra.exporters.json`);
- ``opentelemetry`` — observable instruments on a MeterProvider, with the ``opentelemetry``
  extra (:mod:`papyra.exporters.opentelemetry`).

Every exporter is built the same way, from *sources* (stores, actor systems, probe results)::

    exporter = papyra.exporters.create_exporter("prometheus", store, system, registry=registry)

Importing this package registers nothing and imports no optional dependency.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from papyra.exporters.catalog import SPECS, MetricFamily, MetricSpec, collect
from papyra.exporters.probe import Readiness, StoreGauges, StoreProbe, readiness_of

if TYPE_CHECKING:
    from papyra.plugin_manager import PluginManager


def create_exporter(name: str, *sources: Any, plugins: PluginManager | None = None,
                    **options: Any) -> Any:
    """Build the exporter plugin ``name`` for ``sources`` (options go to its factory)."""
    from papyra.errors import ConfigError
    from papyra.plugin_manager import get_plugin_manager

    manager = plugins or get_plugin_manager()
    exporters = manager.metric_exporters()
    key = name.strip().lower()
    if key not in exporters:
        raise ConfigError(
            f"unknown metric exporter {name!r} (installed: {', '.join(sorted(exporters))})"
        )
    return exporters[key].factory(*sources, **options)


def create_exporters(names: Iterable[str], *sources: Any,
                     plugins: PluginManager | None = None,
                     options: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Build several exporters by name, e.g. the ``[metrics] exporters`` of ``papyra.toml``
    (``load_config().metrics_exporters``). ``options`` maps an exporter name to its options::

        create_exporters(config.metrics_exporters, system,
                         options={"prometheus": {"registry": registry}})
    """
    options = options or {}
    return {name: create_exporter(name, *sources, plugins=plugins, **options.get(name, {}))
            for name in names}


__all__ = [
    "SPECS",
    "MetricFamily",
    "MetricSpec",
    "Readiness",
    "StoreGauges",
    "StoreProbe",
    "collect",
    "create_exporter",
    "create_exporters",
    "readiness_of",
]
