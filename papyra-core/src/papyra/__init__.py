"""papyra: durable, checkable history for asyncio actor systems.

Start with :func:`open_store`::

    async with papyra.open_store("json:///var/lib/app/papyra.ndjson") as store:
        await store.record_event(actor_address="orders:1", event_type="ActorStarted")
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from papyra.codec import DecodeError, EncodeError
from papyra.config import PapyraConfig, load_config
from papyra.errors import (
    AnomaliesFoundError,
    ConfigError,
    LockTimeoutError,
    PapyraError,
    PluginError,
    RecordTooLargeError,
    RecoveryIncompleteError,
    StoreClosedError,
    StoreNotFoundError,
    StoreUnavailableError,
    StoreUnhealthyError,
    UnknownBackendError,
)
from papyra.hookspecs import hookimpl
from papyra.lazy import lazy_exports
from papyra.plugin_manager import PluginManager, get_plugin_manager
from papyra.records import AuditRecord, DeadLetterRecord, EventRecord, GapRecord, Record
from papyra.reports import (
    Anomaly,
    CompactionReport,
    Health,
    RecoveryAction,
    RecoveryReport,
    ScanReport,
    StoreStats,
)
from papyra.retention import RetentionPolicy
from papyra.startup import RecoveryMode, StartupConfig, StartupMode, StartupResult, check_store
from papyra.store import Capabilities, Store
from papyra.urls import StoreURL, redact, url_for_path

if TYPE_CHECKING:
    from papyra.actors import (
        Actor,
        ActorAddress,
        ActorContext,
        ActorInfo,
        ActorProxy,
        ActorRef,
        ActorStoppedError,
        ActorSystem,
        ActorTerminated,
        AskTimeout,
        AuditReport,
        Clock,
        DeadLetter,
        FailureInfo,
        ManualClock,
        Strategy,
        SupervisionPolicy,
        SupervisorDecision,
        SystemHooks,
        SystemMetrics,
    )

# The actor runtime is imported on first use, so tools that only touch stores (the CLI, backends)
# do not pay for it at start-up.
_ACTOR_NAMES = frozenset({
    "Actor",
    "ActorAddress",
    "ActorContext",
    "ActorInfo",
    "ActorProxy",
    "ActorRef",
    "ActorStoppedError",
    "ActorSystem",
    "ActorTerminated",
    "AskTimeout",
    "AuditReport",
    "Clock",
    "DeadLetter",
    "FailureInfo",
    "ManualClock",
    "Strategy",
    "SupervisionPolicy",
    "SupervisorDecision",
    "SystemHooks",
    "SystemMetrics",
})


__getattr__ = lazy_exports(__name__, dict.fromkeys(_ACTOR_NAMES, "papyra.actors"))


try:
    __version__ = version("papyra-core")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"


def open_store(url: str, **options: Any) -> Any:
    """Open the store named by ``url`` with the backend plugin serving its scheme.

    ``options`` go to the backend (``fsync="interval"``, ``retention=RetentionPolicy(...)``,
    ``system_id=...``). The store can be used as ``async with``.
    """
    return get_plugin_manager().open_store(url, **options)


__all__ = [
    "Actor",
    "ActorAddress",
    "ActorContext",
    "ActorInfo",
    "ActorProxy",
    "ActorRef",
    "ActorStoppedError",
    "ActorSystem",
    "ActorTerminated",
    "AnomaliesFoundError",
    "Anomaly",
    "AskTimeout",
    "AuditRecord",
    "AuditReport",
    "Capabilities",
    "Clock",
    "CompactionReport",
    "ConfigError",
    "DeadLetter",
    "DeadLetterRecord",
    "DecodeError",
    "EncodeError",
    "EventRecord",
    "FailureInfo",
    "GapRecord",
    "Health",
    "LockTimeoutError",
    "ManualClock",
    "PapyraConfig",
    "PapyraError",
    "PluginError",
    "PluginManager",
    "Record",
    "RecordTooLargeError",
    "RecoveryAction",
    "RecoveryIncompleteError",
    "RecoveryMode",
    "RecoveryReport",
    "RetentionPolicy",
    "ScanReport",
    "StartupConfig",
    "StartupMode",
    "StartupResult",
    "Store",
    "StoreClosedError",
    "StoreNotFoundError",
    "StoreStats",
    "StoreURL",
    "StoreUnavailableError",
    "StoreUnhealthyError",
    "Strategy",
    "SupervisionPolicy",
    "SupervisorDecision",
    "SystemHooks",
    "SystemMetrics",
    "UnknownBackendError",
    "__version__",
    "check_store",
    "get_plugin_manager",
    "hookimpl",
    "load_config",
    "open_store",
    "redact",
    "url_for_path",
]
