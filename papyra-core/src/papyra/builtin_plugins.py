"""papyra-core's own plugins: the memory backend, the retention rules and the recovery
strategies. Registered like any third party's, through the same hooks."""

from __future__ import annotations

from papyra.hookspecs import (
    RegisterBackend,
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
