"""Typed errors. Each carries the CLI exit code of DESIGN §9 it maps to, so every front end
translates failures the same way."""

from __future__ import annotations

from typing import ClassVar


class PapyraError(Exception):
    """Base of every error papyra raises on purpose."""

    exit_code: ClassVar[int] = 5


class ConfigError(PapyraError):
    """Bad configuration or usage: unknown backend, bad option, bad mode combination (exit 2)."""

    exit_code = 2


class UnknownBackendError(ConfigError):
    """No installed plugin serves this URL scheme or backend name."""


class PluginError(ConfigError):
    """A plugin failed to load (fatal only under ``PAPYRA_STRICT_PLUGINS=1``)."""


class DuplicateRegistrationError(PluginError):
    """Two plugins registered a component under the same name."""


class StoreUnavailableError(PapyraError):
    """The store cannot be used: missing, permission or I/O error, lock timeout (exit 4)."""

    exit_code = 4


class StoreNotFoundError(StoreUnavailableError):
    """The log does not exist (a clean first boot for startup checks, exit 4 elsewhere)."""


class LockTimeoutError(StoreUnavailableError):
    """The store's lock could not be taken in time."""


class StoreClosedError(StoreUnavailableError):
    """The store was closed; nothing is written after close."""


class StoreUnhealthyError(StoreUnavailableError):
    """A durability failure (e.g. a failed fsync) left the store unable to promise anything."""


class RecordTooLargeError(PapyraError, ValueError):
    """A record is larger than the backend's ``max_record_bytes``."""

    exit_code = 2


class AnomaliesFoundError(PapyraError):
    """The store has anomalies and the caller asked not to proceed (exit 1)."""

    exit_code = 1

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class RecoveryIncompleteError(PapyraError):
    """Recovery ran but anomalies remain (exit 3)."""

    exit_code = 3

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class UnsupportedOperationError(ConfigError):
    """The backend cannot do this (see its ``capabilities``)."""
