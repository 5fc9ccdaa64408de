"""papyra-core's own plugins: the memory backend, the retention rules, the recovery
strategies and the metric exporters. Registered like any third party's, through the same hooks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from papyra.hookspecs import (
    RegisterBackend,
    RegisterMetricExporter,
    RegisterRecoveryStrategy,
    RegisterRetentionRule,
    hookimpl,
)


@hookimpl
def papyra_register_backends(register: RegisterBackend) -> None:
    from papyra.backends import memory

    register("memory", schemes=["memory"], factory=memory.create,
             description="in-process memory (tests, local development; not durable)")


@hookimpl
def papyra_register_retention_rules(register: RegisterRetentionRule) -> None:
    from papyra.retention import BUILTIN_RULES

    for rule in BUILTIN_RULES:
        register(rule)


@hookimpl
def papyra_register_recovery_strategies(register: RegisterRecoveryStrategy) -> None:
    from papyra.recovery import BUILTIN_STRATEGIES

    for strategy in BUILTIN_STRATEGIES:
        register(strategy)


@hookimpl
def papyra_register_metric_exporters(register: RegisterMetricExporter) -> None:
    register("prometheus", factory=_exporter_factory("prometheus"),
             description="prometheus-client collector on a registry the application passes in")
    register("json", factory=_exporter_factory("json"),
             description="one JSON document of every metric")
    register("opentelemetry", factory=_exporter_factory("opentelemetry"),
             description="observable OpenTelemetry instruments (extra: papyra-core[opentelemetry])")


def _exporter_factory(module: str) -> Callable[..., Any]:
    """Import the exporter module only when an exporter is built (keeps imports light)."""

    def factory(*sources: Any, **options: Any) -> Any:
        import importlib

        return importlib.import_module(f"papyra.exporters.{module}").create(*sources, **options)

    factory.__qualname__ = factory.__name__ = f"{module}_exporter"
    return factory
