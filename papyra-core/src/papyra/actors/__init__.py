"""The asyncio actor system whose facts papyra keeps (DESIGN §7).

Modules: :mod:`~papyra.actors.system` (ActorSystem), :mod:`~papyra.actors.actor`,
:mod:`~papyra.actors.ref`, :mod:`~papyra.actors.context`, :mod:`~papyra.actors.mailbox`,
:mod:`~papyra.actors.supervision`, :mod:`~papyra.actors.audit`,
:mod:`~papyra.actors.dead_letters`, :mod:`~papyra.actors.hooks`, :mod:`~papyra.actors.proxy`,
:mod:`~papyra.actors.persistence_queue`, :mod:`~papyra.actors.clock`,
:mod:`~papyra.actors.metrics`.
"""

from __future__ import annotations

from papyra.actors.actor import Actor
from papyra.actors.address import ActorAddress
from papyra.actors.audit import ActorInfo, AuditReport
from papyra.actors.clock import Clock, ManualClock, SystemClock
from papyra.actors.context import ActorContext
from papyra.actors.dead_letters import DeadLetter, DeadLetterBox
from papyra.actors.errors import ActorStoppedError, AskTimeout
from papyra.actors.hooks import FailureInfo, SystemHooks
from papyra.actors.messages import ActorTerminated
from papyra.actors.metrics import SystemMetrics
from papyra.actors.proxy import ActorProxy, ProxyCall, ProxyGetAttr, ProxySetAttr
from papyra.actors.ref import ActorRef
from papyra.actors.supervision import Strategy, SupervisionPolicy, SupervisorDecision
from papyra.actors.system import ActorSystem

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
    "AskTimeout",
    "AuditReport",
    "Clock",
    "DeadLetter",
    "DeadLetterBox",
    "FailureInfo",
    "ManualClock",
    "ProxyCall",
    "ProxyGetAttr",
    "ProxySetAttr",
    "Strategy",
    "SupervisionPolicy",
    "SupervisorDecision",
    "SystemClock",
    "SystemHooks",
    "SystemMetrics",
]
