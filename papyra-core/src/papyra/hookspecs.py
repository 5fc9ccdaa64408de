"""The hooks a papyra plugin can implement (all synchronous; pluggy never awaits).

A plugin is a module (or object) exposed in the ``papyra`` entry-point group::

    [project.entry-points.papyra]
    sqlite = "papyra_backend_sqlite.plugin"

and implements hooks with :data:`hookimpl`::

    from papyra import hookimpl

    @hookimpl
    def papyra_register_backends(register):
        register("sqlite", schemes=["sqlite"], factory=SqliteStore, description="...")

Registration hooks receive a ``register`` callback that records which plugin registered what; a
name registered twice is an error naming both plugins. Observer hooks are called after the fact,
each implementation on its own, and an exception in one is logged and never reaches the caller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from papyra.reports import CompactionReport, RecoveryReport, ScanReport
    from papyra.retention import RetentionRule

PROJECT = "papyra"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class RegisterBackend(Protocol):
    def __call__(
        self,
        name: str,
        *,
        schemes: Sequence[str],
        factory: Callable[..., Any],
        description: str = "",
    ) -> None: ...


class RegisterRetentionRule(Protocol):
    def __call__(self, rule: RetentionRule) -> None: ...


class RegisterRecoveryStrategy(Protocol):
    def __call__(self, strategy: Any) -> None: ...


class RegisterMetricExporter(Protocol):
    def __call__(self, name: str, *, factory: Callable[..., Any], description: str = "") -> None:
        ...


@hookspec
def papyra_register_backends(register: RegisterBackend) -> None:
    """Register storage backends: a name, the URL schemes it serves and a factory.

    The factory is called as ``factory(url: papyra.StoreURL, **options)`` and returns a
    :class:`papyra.Store`.

    .. versionadded:: 0.4
    """


@hookspec
def papyra_register_retention_rules(register: RegisterRetentionRule) -> None:
    """Register retention rules (objects with ``name``, ``description``, ``validate``, ``start``).

    .. versionadded:: 0.4
    """


@hookspec
def papyra_register_recovery_strategies(register: RegisterRecoveryStrategy) -> None:
    """Register recovery strategies (objects with ``name``, ``description``, ``plan``).

    .. versionadded:: 0.4
    """


@hookspec
def papyra_register_metric_exporters(register: RegisterMetricExporter) -> None:
    """Register metric exporters (``prometheus``, ``json``, ...).

    .. versionadded:: 0.4
    """


@hookspec
def papyra_register_commands(cli: Any) -> None:
    """Add commands to the ``papyra`` click group (e.g. ``papyra redis groups``).

    .. versionadded:: 0.4
    """


@hookspec
def papyra_on_scan(report: ScanReport) -> None:
    """Called after every scan. Exceptions are logged, never propagated.

    .. versionadded:: 0.4
    """


@hookspec
def papyra_on_recovery(report: RecoveryReport) -> None:
    """Called after every recovery (dry runs included). Exceptions are logged, never propagated.

    .. versionadded:: 0.4
    """


@hookspec
def papyra_on_compaction(report: CompactionReport) -> None:
    """Called after every compaction. Exceptions are logged, never propagated.

    .. versionadded:: 0.4
    """
