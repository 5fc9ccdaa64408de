"""The actor system: spawns actors, runs their loops, supervises them, and emits the facts
papyra keeps (lifecycle events, audits, dead letters) through the persistence queue.

Pure asyncio. Every actor runs in a task the system owns; ``start()`` and ``aclose()`` may be
called from different tasks. ``start()`` runs the shared startup check (:mod:`papyra.startup`)
before any actor can run.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from papyra.actors.actor import Actor
from papyra.actors.address import ActorAddress
from papyra.actors.audit import ActorInfo, AuditReport, format_panel
from papyra.actors.clock import Clock, as_clock
from papyra.actors.context import ActorContext
from papyra.actors.dead_letters import DeadLetter, DeadLetterBox
from papyra.actors.errors import ActorStoppedError
from papyra.actors.hooks import FailureInfo, HookRunner, SystemHooks
from papyra.actors.messages import ActorTerminated
from papyra.actors.metrics import SystemMetrics
from papyra.actors.persistence_queue import OverflowPolicy, PersistenceQueue
from papyra.actors.proxy import PROXY_MESSAGES, dispatch
from papyra.actors.ref import ActorRef
from papyra.actors.runtime import CURRENT, STOP, ActorRuntime, Ask, SystemMessage
from papyra.actors.supervision import Strategy, SupervisionPolicy, SupervisorDecision
from papyra.errors import ConfigError
from papyra.records import AuditRecord, DeadLetterRecord, EventRecord, Record
from papyra.retention import RetentionPolicy
from papyra.startup import StartupConfig, StartupResult, check_store, require_ok
from papyra.urls import StoreURL

log = logging.getLogger("papyra.actors")

_PROXY_TYPES = frozenset(PROXY_MESSAGES)
_RESUME, _RESTART, _STOP = "resume", "restart", "stop"
_SYSTEM_KEYS = frozenset({
    "system_id", "queue_capacity", "overflow", "block_timeout", "batch_size", "max_attempts",
    "history_limit", "stop_timeout", "close_timeout",
})

State = Literal["new", "running", "closing", "closed"]


def _error_text(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _startup_config(value: StartupConfig | Mapping[str, Any] | str | None) -> StartupConfig:
    if value is None:
        return StartupConfig()
    if isinstance(value, StartupConfig):
        return value
    if isinstance(value, str):
        return StartupConfig(mode=value)
    if isinstance(value, Mapping):
        data = dict(value)
        if "recovery" in data and "recovery_mode" not in data:
            data["recovery_mode"] = data.pop("recovery")
        unknown = set(data) - {"mode", "recovery_mode", "quarantine_dir"}
        if unknown:
            raise ConfigError(f"unknown startup option {sorted(unknown)[0]!r}")
        return StartupConfig(**data)
    raise TypeError(f"startup must be a StartupConfig, a mapping or a mode name, not "
                    f"{type(value).__name__}")


class ActorSystem:
    """A local actor system whose facts go to a papyra store.

    ``persistence`` is a store object or a store URL (``json:///var/lib/app/papyra.ndjson``;
    default an in-memory store). A store the system opened from a URL is closed by
    ``aclose()``; a store passed in is left open for its owner.
    """

    def __init__(
        self,
        *,
        system_id: str = "local",
        persistence: Any = None,
        startup: StartupConfig | Mapping[str, Any] | str | None = None,
        retention: RetentionPolicy | Mapping[str, Any] | None = None,
        metrics: SystemMetrics | None = None,
        clock: Clock | Callable[[], float] | None = None,
        hooks: SystemHooks | Sequence[SystemHooks] | None = None,
        on_dead_letter: Callable[[DeadLetter], Any] | None = None,
        persistence_options: Mapping[str, Any] | None = None,
        dead_letter_payload: Callable[[Any], Any] | None = None,
        queue_capacity: int = 10_000,
        overflow: OverflowPolicy = "block",
        block_timeout: float = 1.0,
        batch_size: int = 1000,
        max_attempts: int = 5,
        history_limit: int | None = 1000,
        stop_timeout: float = 10.0,
        close_timeout: float = 10.0,
        plugins: Any = None,
        time_fn: Callable[[], float] | None = None,
    ) -> None:
        if not isinstance(system_id, str) or not system_id or ":" in system_id:
            raise ConfigError(f"system_id must be a non-empty string without ':', got "
                              f"{system_id!r}")
        if overflow not in ("block", "drop"):
            raise ConfigError(f"overflow must be 'block' or 'drop', got {overflow!r}")
        self.system_id = system_id
        self.clock: Clock = as_clock(clock if clock is not None else time_fn)
        self.metrics = metrics if metrics is not None else SystemMetrics()
        self.startup_config = _startup_config(startup)
        if isinstance(retention, Mapping):
            retention = RetentionPolicy.from_mapping(retention)
        self.retention = retention
        self._persistence_arg = persistence
        self._persistence_options = dict(persistence_options or {})
        self._plugins = plugins
        self._dead_letter_payload = dead_letter_payload
        self._queue_options: dict[str, Any] = {
            "capacity": queue_capacity, "overflow": overflow, "block_timeout": block_timeout,
            "batch_size": batch_size, "max_attempts": max_attempts,
        }
        self.stop_timeout = stop_timeout
        self.close_timeout = close_timeout
        self.history_limit = history_limit
        self.hooks = HookRunner(hooks, self.metrics, on_dead_letter)
        self.dead_letters = DeadLetterBox(history_limit)
        self.startup_result: StartupResult | None = None
        self._store: Any = None if isinstance(persistence, str | None) else persistence
        self._owns_store = False
        self._queue: PersistenceQueue | None = None
        self._state: State = "new"
        self._lifecycle: asyncio.Lock | None = None
        self._actors: dict[int, ActorRuntime] = {}
        self._names: dict[str, ActorRuntime] = {}
        self._next_rid = 1
        self._history: deque[EventRecord] = deque(maxlen=history_limit)
        self._event_total = 0
        self._event_waiters: list[asyncio.Future[None]] = []
        self._id_prefix = os.urandom(8).hex()
        self._id_counter = itertools.count(1)

    # ------------------------------------------------------------------ configuration

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None, *,
                    env: Mapping[str, str] | None = None, **overrides: Any) -> ActorSystem:
        """Build a system from ``papyra.toml`` (the file the CLI reads).

        ``[store]`` url and options (``fsync``), ``[retention]``, ``[startup]`` mode,
        ``[recovery]`` mode and quarantine_dir, and an optional ``[system]`` table
        (``system_id``, ``queue_capacity``, ``overflow``, ...). ``PAPYRA_STORE`` /
        ``PAPYRA_CONFIG`` apply as for the CLI; keyword arguments win over everything.
        """
        from papyra.config import load_config

        config = load_config(path, env=env)
        system = dict(config.system)
        unknown = set(system) - _SYSTEM_KEYS
        if unknown:
            raise ConfigError(f"{config.source}: unknown [system] option {sorted(unknown)[0]!r}")
        kwargs: dict[str, Any] = {
            "persistence": config.store_url,
            "persistence_options": dict(config.store_options),
            "retention": config.retention,
            "startup": config.startup,
            **system,
        }
        kwargs.update(overrides)
        return cls(**kwargs)

    # ------------------------------------------------------------------ lifecycle

    @property
    def store(self) -> Any:
        """The papyra store the system writes to (None before ``start()`` for a URL)."""
        return self._store

    persistence = store

    @property
    def running(self) -> bool:
        return self._state == "running"

    @property
    def closed(self) -> bool:
        return self._state == "closed"

    def _lock(self) -> asyncio.Lock:
        if self._lifecycle is None:
            self._lifecycle = asyncio.Lock()
        return self._lifecycle

    def _open_store(self) -> Any:
        arg = self._persistence_arg
        options = dict(self._persistence_options)
        if self.retention is not None:
            options.setdefault("retention", self.retention)
        if arg is None:
            from papyra.backends.memory import MemoryStore

            options.pop("fsync", None)
            self._owns_store = True
            return MemoryStore("memory://", system_id=self.system_id, **options)
        if isinstance(arg, str):
            parsed = StoreURL.parse(arg)
            url_system = parsed.query.get("system_id")
            if url_system is not None and url_system != self.system_id:
                raise ConfigError(
                    f"store URL names system_id={url_system!r} but the actor system is "
                    f"{self.system_id!r}"
                )
            if url_system is None:
                options.setdefault("system_id", self.system_id)
            if self._plugins is not None:
                store = self._plugins.open_store(arg, **options)
            else:
                from papyra import open_store

                store = open_store(arg, **options)
            self._owns_store = True
            return store
        if self.retention is not None:
            arg.retention = self.retention
        self._owns_store = False
        return arg

    async def start(self) -> None:
        """Check the store (startup mode), then accept actors. Idempotent.

        ``fail_on_anomaly`` raises :class:`~papyra.AnomaliesFoundError` and changes no byte;
        ``recover`` repairs, re-scans and raises :class:`~papyra.RecoveryIncompleteError`
        if anomalies remain.
        """
        async with self._lock():
            if self._state == "running":
                return
            if self._state != "new":
                raise ActorStoppedError("ActorSystem is closed.")
            store = self._open_store()
            try:
                result = await check_store(store, self.startup_config)
                self.startup_result = result
                self.hooks.call("on_startup", result)
                if not result.ok:
                    log.error("startup check of %s failed: %s", store.url, result.message)
                require_ok(result)
            except BaseException:
                if self._owns_store:
                    try:
                        await store.aclose()
                    except Exception:
                        log.warning("closing %s after a failed start failed", store.url,
                                    exc_info=True)
                raise
            self._store = store
            self._queue = PersistenceQueue(store, metrics=self.metrics, **self._queue_options)
            self._queue.start()
            self.metrics.add_gauges(self._gauges)
            self._state = "running"

    async def aclose(self) -> None:
        """Stop every actor (cascading), flush every record emitted so far, close the store
        if the system opened it. Nothing is written after this returns. Idempotent.

        Call it from outside the system: an actor cannot wait for its own end
        (``RuntimeError``; use ``stop_all()`` or signal the owner instead)."""
        if CURRENT.get() is not None and self._state == "running":
            raise RuntimeError("aclose() cannot be awaited from inside an actor of the system")
        async with self._lock():
            if self._state in ("closed", "closing"):
                return
            if self._state == "new":
                self._state = "closed"
                return
            self._state = "closing"
            try:
                roots = [rt for rt in self._actors.values() if rt.parent is None]
                for rt in roots:
                    self._request_stop(rt)
                await self._await_termination(roots)
                leftovers = [rt for rt in self._actors.values() if not rt.dead]
                for rt in leftovers:
                    self._request_stop(rt)
                await self._await_termination(leftovers)
                await self.hooks.drain(timeout=self.close_timeout)
            finally:
                if self._queue is not None:
                    await self._queue.close(timeout=self.close_timeout)
                if self._owns_store and self._store is not None:
                    try:
                        await self._store.aclose()
                    except Exception:
                        log.error("closing store %s failed", self._store.url, exc_info=True)
                self._state = "closed"
                self.metrics.remove_gauges(self._gauges)

    async def __aenter__(self) -> ActorSystem:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def flush(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until every record emitted so far is written (or dropped)."""
        if self._queue is None:
            return True
        return await self._queue.flush(timeout)

    async def compact(self, retention: RetentionPolicy | None = None) -> Any:
        """Apply retention to the store physically; returns its CompactionReport."""
        if self._store is None:
            raise ActorStoppedError("ActorSystem is not running.")
        return await self._store.compact(retention)

    def now(self) -> float:
        """Wall-clock time of the system's clock (Unix epoch seconds)."""
        return self.clock.time()

    # ------------------------------------------------------------------ spawning

    def spawn(
        self,
        actor_factory: type[Actor] | Callable[[], Any],
        *,
        name: str | None = None,
        policy: SupervisionPolicy | None = None,
        mailbox_capacity: int | None = 1024,
        parent: ActorRef | None = None,
    ) -> ActorRef:
        """Create an actor and start its loop. ``mailbox_capacity=None`` is unbounded.

        Named actors default to ``RESTART`` supervision, unnamed ones to ``STOP`` (as 0.3.0).
        """
        if self._state != "running":
            raise ActorStoppedError("ActorSystem is not running.")
        if name is not None:
            if not isinstance(name, str) or not name:
                raise ValueError("actor name must be a non-empty string")
            if name in self._names:
                raise ValueError(f"an actor named {name!r} already exists")
        parent_rt: ActorRuntime | None = None
        if parent is not None:
            parent_rt = parent._rt
            if parent_rt.system is not self or not parent_rt.accepting:
                raise ActorStoppedError(f"parent {parent_rt.addr} is not running")
        if policy is None:
            policy = SupervisionPolicy(strategy=Strategy.RESTART if name else Strategy.STOP)
        instance = actor_factory()
        if not callable(getattr(instance, "receive", None)):
            raise TypeError(f"{type(instance).__name__} is not an actor (it has no receive "
                            "method; subclass papyra.Actor)")
        rid = self._next_rid
        self._next_rid += 1
        rt = ActorRuntime(self, rid, ActorAddress(self.system_id, rid), name, actor_factory,
                          instance, policy, parent_rt, mailbox_capacity)
        rt.ref = ActorRef(rt)
        self._inject(rt)
        self._actors[rid] = rt
        if name is not None:
            self._names[name] = rt
        if parent_rt is not None:
            parent_rt.children[rid] = rt
        self.metrics.actors_spawned += 1
        rt.task = asyncio.get_running_loop().create_task(
            self._run_actor(rt), name=f"papyra-actor-{rt.addr}"
        )
        return rt.ref

    def _inject(self, rt: ActorRuntime) -> None:
        parent_ref = rt.parent.ref if rt.parent is not None else None
        ctx = ActorContext(self, rt.ref, parent_ref)
        try:
            rt.instance._papyra_context = ctx
        except AttributeError:
            log.debug("actor %s does not take a context", rt.addr)

    # ------------------------------------------------------------------ the actor loop

    async def _run_actor(self, rt: ActorRuntime) -> None:
        CURRENT.set(rt)
        try:
            if await self._start_instance(rt):
                await self._message_loop(rt)
            await self._shutdown(rt)
        except asyncio.CancelledError:
            rec = self._finish(rt, "cancelled")
            if rec is not None and self._queue is not None:
                self._queue.put_nowait(rec)
            self._resolve(rt)
            raise
        except Exception:  # a bug in the runtime itself: never leave the actor half-dead
            log.exception("actor %s: runtime error", rt.addr)
            rec = self._finish(rt, "runtime error")
            if rec is not None and self._queue is not None:
                await self._queue.put(rec)
            self._resolve(rt)
        except BaseException as exc:  # SystemExit, KeyboardInterrupt from user code
            rec = self._finish(rt, f"terminated: {_error_text(exc)}")
            if rec is not None and self._queue is not None:
                self._queue.put_nowait(rec)
            self._resolve(rt)
            raise

    async def _start_instance(self, rt: ActorRuntime) -> bool:
        """Run ``on_start`` (again after each restart); False when the actor must stop."""
        while True:
            try:
                await rt.instance.on_start()
            except Exception as exc:
                action = await self._handle_failure(rt, exc)
                if action == _RESTART:
                    if not await self._replace_instance(rt):
                        return False
                    continue
                if action == _STOP:
                    return False
            rt.instance_started = True
            if not rt.started:
                rt.started = True
                await self._emit(rt, "ActorStarted", {})
            return True

    async def _message_loop(self, rt: ActorRuntime) -> None:
        mb = rt.mailbox
        items = mb.items
        proxy_types = _PROXY_TYPES
        while True:
            if items:
                msg = items.popleft()
                if mb.putters:
                    mb.wake_putter()
            else:
                msg = await mb.get()
            t = type(msg)
            if t is Ask:
                fut = msg.future
                m = msg.message
                rt.inflight = fut
                try:
                    if type(m) in proxy_types:
                        result = await dispatch(rt.instance, m)
                    else:
                        result = await rt.instance.receive(m)
                except Exception as exc:
                    rt.processed += 1
                    action = await self._handle_failure(rt, exc)
                    if not fut.done():
                        fut.set_exception(exc)
                    if not await self._after_failure(rt, action):
                        return
                    continue
                rt.processed += 1
                if not fut.done():
                    fut.set_result(result)
            elif t is SystemMessage:
                if msg is STOP:
                    return
                if msg.kind == "escalate" and msg.error is not None:
                    action = await self._handle_failure(rt, msg.error)
                    if not await self._after_failure(rt, action):
                        return
            else:
                try:
                    if t in proxy_types:
                        await dispatch(rt.instance, msg)
                    else:
                        await rt.instance.receive(msg)
                except Exception as exc:
                    rt.processed += 1
                    action = await self._handle_failure(rt, exc)
                    if not await self._after_failure(rt, action):
                        return
                    continue
                rt.processed += 1

    async def _after_failure(self, rt: ActorRuntime, action: str) -> bool:
        """Carry out a supervision action; False when the loop must end."""
        if action == _RESUME:
            return True
        if action == _RESTART:
            return await self._replace_instance(rt) and await self._start_instance(rt)
        return False

    async def _handle_failure(self, rt: ActorRuntime, exc: BaseException) -> str:
        """Crash event, parent decision or own policy, restart window → resume/restart/stop."""
        self.metrics.messages_failed += 1
        error = _error_text(exc)
        await self._emit(rt, "ActorCrashed", {"error": error, "reason": error})
        decision: SupervisorDecision | None = None
        parent = rt.parent
        if parent is not None and parent.instance_started and not parent.dead:
            try:
                raw = await parent.instance.on_child_failure(rt.ref, exc)
                decision = None if raw is None else SupervisorDecision(raw)
            except Exception:
                log.warning("on_child_failure of %s raised (child policy applies)",
                            parent.addr, exc_info=True)
        strategy = rt.policy.strategy
        self.hooks.call("on_failure", FailureInfo(address=rt.address, error=exc,
                                                  strategy=strategy,
                                                  supervisor_decision=decision))
        choice = decision.value if decision is not None else strategy.value
        if choice == "ignore":
            return _RESUME
        if choice == "restart":
            if rt.stopping:
                rt.stop_reason = f"failed while stopping: {error}"
                return _STOP
            if rt.window.allow(rt.policy, self.clock.monotonic()):
                return _RESTART
            rt.stop_reason = (f"restart limit exceeded ({rt.policy.max_restarts} in "
                              f"{rt.policy.within_seconds:g}s): {error}")
            return _STOP
        if choice == "escalate":
            if parent is not None and parent.accepting:
                parent.mailbox.force(SystemMessage("escalate", rt.ref, exc))
                rt.stop_reason = f"escalated: {error}"
            else:
                rt.stop_reason = f"escalated without a parent: {error}"
            return _STOP
        rt.stop_reason = f"stopped after failure: {error}"
        return _STOP

    async def _replace_instance(self, rt: ActorRuntime) -> bool:
        """Restart: children stop, ``on_stop`` of the old instance, a fresh instance."""
        rt.restarting = True
        try:
            await self._stop_children(rt)
            if rt.instance_started:
                await self._call_on_stop(rt)
            rt.instance_started = False
            try:
                rt.instance = rt.factory()
            except Exception as exc:
                log.error("actor %s: cannot build a new instance (%s); stopping", rt.addr,
                          _error_text(exc))
                rt.stop_reason = f"restart failed: {_error_text(exc)}"
                return False
            self._inject(rt)
            self.metrics.restarts += 1
            await self._emit(rt, "ActorRestarted", {"reason": "actor restarted"})
            return True
        finally:
            rt.restarting = False

    async def _call_on_stop(self, rt: ActorRuntime) -> None:
        try:
            await rt.instance.on_stop()
        except Exception:
            log.warning("on_stop of %s raised (ignored)", rt.addr, exc_info=True)

    async def _shutdown(self, rt: ActorRuntime) -> None:
        rt.stopping = True
        rt.accepting = False
        await self._stop_children(rt)
        if rt.instance_started:
            rt.instance_started = False
            await self._call_on_stop(rt)
        rec = self._finish(rt, rt.stop_reason)
        if rec is not None and self._queue is not None:
            await self._queue.put(rec)
        self._resolve(rt)

    def _finish(self, rt: ActorRuntime, reason: str) -> EventRecord | None:
        """Everything a terminated actor leaves behind; returns its ``ActorStopped`` event."""
        if rt.dead:
            return None
        rt.dead = True
        rt.stopping = True
        rt.accepting = False
        inflight = rt.inflight
        if inflight is not None and not inflight.done():
            inflight.set_exception(ActorStoppedError(f"actor {rt.addr} stopped before replying"))
        for item in rt.mailbox.drain():
            if type(item) is Ask:
                self._dead_letter_nowait(rt.address, item.message, True)
                if not item.future.done():
                    item.future.set_exception(
                        ActorStoppedError(f"actor {rt.addr} stopped before replying"))
            elif type(item) is not SystemMessage:
                self._dead_letter_nowait(rt.address, item, False)
        if rt.name is not None and self._names.get(rt.name) is rt:
            del self._names[rt.name]
        if rt.parent is not None:
            rt.parent.children.pop(rt.rid, None)
        self._actors.pop(rt.rid, None)
        self.metrics.actors_stopped += 1
        self.metrics.messages_processed += rt.processed
        rt.processed = 0
        for target in rt.watching:
            target.watchers.discard(rt)
        rt.watching.clear()
        for watcher in rt.watchers:
            if watcher.accepting:
                watcher.mailbox.force(ActorTerminated(rt.ref))
            watcher.watching.discard(rt)
        rt.watchers.clear()
        return self._event(rt, "ActorStopped", {"reason": reason})

    def _resolve(self, rt: ActorRuntime) -> None:
        if not rt.done.done():
            rt.done.set_result(None)

    # ------------------------------------------------------------------ stopping

    def _request_stop(self, rt: ActorRuntime) -> None:
        if rt.stopping or rt.dead:
            return
        rt.stopping = True
        rt.accepting = False
        rt.mailbox.force(STOP)
        rt.mailbox.wake_all_putters()

    async def _stop_children(self, rt: ActorRuntime) -> None:
        kids = list(rt.children.values())
        for kid in kids:
            self._request_stop(kid)
        await self._await_termination(kids)

    async def _await_termination(self, rts: Iterable[ActorRuntime]) -> None:
        futs = {rt.done: rt for rt in rts if not rt.done.done()}
        if not futs:
            return
        _done, pending = await asyncio.wait(set(futs), timeout=self.stop_timeout)
        if not pending:
            return
        for fut in pending:
            stuck = futs[fut]
            log.warning("actor %s did not stop within %gs; cancelling it", stuck.addr,
                        self.stop_timeout)
            if stuck.task is not None:
                stuck.task.cancel()
        await asyncio.wait(pending, timeout=1.0)

    async def stop(self, ref: ActorRef) -> None:
        """Stop an actor: messages already in its mailbox first, then its children, then
        ``on_stop``. Waits until it has stopped (unless called from inside it or one of its
        descendants, which cannot wait for themselves). Idempotent."""
        rt = ref._rt
        if rt.system is not self:
            raise ActorStoppedError(f"{rt.addr} belongs to another actor system")
        self._request_stop(rt)
        current = CURRENT.get()
        if current is not None and current.is_within(rt):
            return
        await self._await_termination([rt])

    async def stop_all(self) -> None:
        """Stop every actor (roots cascade to their children) without closing the system."""
        roots = [rt for rt in self._actors.values() if rt.parent is None]
        for rt in roots:
            self._request_stop(rt)
        current = CURRENT.get()
        await self._await_termination(
            [rt for rt in roots if current is None or not current.is_within(rt)]
        )

    # ------------------------------------------------------------------ sending

    async def _send_slow(self, rt: ActorRuntime, item: Any, message: Any) -> None:
        """Tell/ask when the mailbox is full or the actor is not running."""
        expects_reply = type(item) is Ask
        while True:
            if not rt.accepting:
                await self._dead_letter(rt.address, message, expects_reply)
                raise ActorStoppedError(
                    f"actor {rt.addr} is not running; the message became a dead letter"
                )
            if rt.mailbox.offer(item):
                return
            await rt.mailbox.wait_not_full()

    async def tell(self, target: Any, message: Any) -> None:
        """Tell by ref, address or name; an unknown target makes a dead letter."""
        await (await self._resolve_target(target, message, False)).tell(message)

    async def ask(self, target: Any, message: Any, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """Ask by ref, address or name; an unknown target makes a dead letter."""
        ref = await self._resolve_target(target, message, True)
        return await ref.ask(message, timeout=timeout)

    async def _resolve_target(self, target: Any, message: Any, expects_reply: bool
                              ) -> ActorRef:
        if isinstance(target, ActorRef):
            return target
        try:
            return self.ref_for(target)
        except ActorStoppedError:
            address = target if isinstance(target, ActorAddress) else (
                ActorAddress.try_parse(target) if isinstance(target, str) else None)
            await self._dead_letter(address, message, expects_reply, target_text=str(target))
            raise

    # ------------------------------------------------------------------ lookups

    def ref_for(self, target: ActorAddress | str | int | ActorRef) -> ActorRef:
        """A ref for an address (``ActorAddress``, ``"orders:3"``, ``"orders://3"``), an
        actor id, or a registered name. ``ActorStoppedError`` if nothing runs there."""
        if isinstance(target, ActorRef):
            target = target.address
        if isinstance(target, int) and not isinstance(target, bool):
            target = ActorAddress(self.system_id, target)
        if isinstance(target, str):
            by_name = self._names.get(target)
            if by_name is not None:
                return by_name.ref
            parsed = ActorAddress.try_parse(target)
            if parsed is None:
                raise ActorStoppedError(f"no actor named {target!r}")
            target = parsed
        if not isinstance(target, ActorAddress):
            raise TypeError(f"cannot look up an actor by {type(target).__name__}")
        if target.system != self.system_id:
            raise ActorStoppedError(
                f"{target} belongs to actor system {target.system!r}; remote actor systems "
                "are not supported"
            )
        rt = self._actors.get(target.actor_id)
        if rt is None or not rt.accepting:
            raise ActorStoppedError(f"no running actor at {target}")
        return rt.ref

    def ref_for_name(self, name: str) -> ActorRef:
        rt = self._names.get(name)
        if rt is None:
            raise ActorStoppedError(f"no actor named {name!r}")
        return rt.ref

    def list_names(self) -> dict[str, ActorAddress]:
        return {name: rt.address for name, rt in self._names.items()}

    def list_actors(self, *, alive_only: bool = False) -> tuple[ActorAddress, ...]:
        return tuple(rt.address for rt in self._actors.values()
                     if not alive_only or rt.accepting)

    def refs(self, *, alive_only: bool = True) -> tuple[ActorRef, ...]:
        return tuple(rt.ref for rt in self._actors.values() if not alive_only or rt.accepting)

    def refs_by_type(self, actor_type: type | str, *, alive_only: bool = True
                     ) -> tuple[ActorRef, ...]:
        """Refs of actors whose class is ``actor_type`` (a class, or its ``__name__``,
        ``__qualname__`` or ``module.QualName``)."""
        def matches(instance: Any) -> bool:
            cls = type(instance)
            if isinstance(actor_type, type):
                return cls is actor_type
            return actor_type in (cls.__name__, cls.__qualname__,
                                  f"{cls.__module__}.{cls.__qualname__}")

        return tuple(rt.ref for rt in self._actors.values()
                     if (not alive_only or rt.accepting) and matches(rt.instance))

    async def broadcast(self, message: Any, *, actor_type: type | str | None = None,
                        alive_only: bool = True) -> int:
        """Tell ``message`` to every (matching) actor; returns how many accepted it."""
        refs = self.refs(alive_only=alive_only) if actor_type is None else self.refs_by_type(
            actor_type, alive_only=alive_only)
        sent = 0
        for ref in refs:
            try:
                await ref.tell(message)
            except ActorStoppedError:
                continue
            sent += 1
        return sent

    def _info(self, rt: ActorRuntime) -> ActorInfo:
        return ActorInfo(
            rid=rt.rid, address=rt.addr, name=rt.name,
            parent_rid=rt.parent.rid if rt.parent is not None else None,
            children_rids=tuple(rt.children), alive=rt.alive,
            stopping=rt.stopping and not rt.dead, restarting=rt.restarting,
            actor_type=rt.actor_type,
        )

    def actor_info(self, target: ActorRef | ActorAddress | str | int) -> ActorInfo:
        return self._info(self.ref_for(target)._rt)

    def control_panel(self, *, alive_only: bool = False) -> tuple[str, ...]:
        """A plain-text table: RID ADDRESS NAME ACTOR STATE PARENT CHILDREN."""
        rows = [self._info(rt).panel_line() for rt in self._actors.values()
                if not alive_only or rt.alive]
        return format_panel(rows)

    # ------------------------------------------------------------------ watch

    def _watch(self, watcher: ActorRef, target: ActorRef) -> None:
        w, t = watcher._rt, target._rt
        if t.dead:
            if w.accepting:
                w.mailbox.force(ActorTerminated(target))
            return
        t.watchers.add(w)
        w.watching.add(t)

    def _unwatch(self, watcher: ActorRef, target: ActorRef) -> None:
        w, t = watcher._rt, target._rt
        t.watchers.discard(w)
        w.watching.discard(t)

    # ------------------------------------------------------------------ audits

    def audit(self, *, include_actor_details: bool = True) -> AuditReport:
        """A snapshot of the system; also persisted as an ``audit`` record."""
        rts = list(self._actors.values())
        registry_orphans = tuple(sorted(n for n, rt in self._names.items()
                                        if rt.rid not in self._actors))
        registry_dead = tuple(sorted(n for n, rt in self._names.items()
                                     if rt.stopping or rt.dead))
        report = AuditReport(
            system_id=self.system_id,
            timestamp=self.clock.time(),
            total_actors=len(rts),
            alive_actors=sum(1 for rt in rts if rt.alive and not rt.restarting),
            stopping_actors=sum(1 for rt in rts if rt.stopping and not rt.dead),
            restarting_actors=sum(1 for rt in rts if rt.restarting),
            registry_size=len(self._names),
            registry_orphans=registry_orphans,
            registry_dead=registry_dead,
            dead_letters_count=self.dead_letters.count,
            actors=tuple(self._info(rt) for rt in rts) if include_actor_details else (),
        )
        record = AuditRecord(
            system_id=self.system_id, timestamp=report.timestamp,
            total_actors=report.total_actors, alive_actors=report.alive_actors,
            stopping_actors=report.stopping_actors,
            restarting_actors=report.restarting_actors, registry_size=report.registry_size,
            registry_orphans=report.registry_orphans, registry_dead=report.registry_dead,
            dead_letters_count=report.dead_letters_count, id=self._record_id(),
        )
        self._persist_nowait(record)
        self.hooks.call("on_audit", report)
        return report

    # ------------------------------------------------------------------ events

    def _record_id(self) -> str:
        """32 hex digits: a random per-system prefix and a counter (cheaper than uuid4)."""
        return f"{self._id_prefix}{next(self._id_counter):016x}"

    def events(self) -> tuple[EventRecord, ...]:
        """The newest lifecycle events (bounded by ``history_limit``), oldest first."""
        return tuple(self._history)

    def _event(self, rt: ActorRuntime, event_type: str, payload: dict[str, Any]
               ) -> EventRecord:
        rec = EventRecord(system_id=self.system_id, timestamp=self.clock.time(),
                          actor_address=rt.addr, event_type=event_type, payload=payload,
                          id=self._record_id())
        self._history.append(rec)
        self._event_total += 1
        if self._event_waiters:
            waiters, self._event_waiters = self._event_waiters, []
            for w in waiters:
                if not w.done():
                    w.set_result(None)
        self.hooks.call("on_event", rec)
        return rec

    async def _emit(self, rt: ActorRuntime, event_type: str, payload: dict[str, Any]) -> None:
        rec = self._event(rt, event_type, payload)
        if self._queue is not None:
            await self._queue.put(rec)

    async def wait_for_event(
        self,
        match: str | Callable[[EventRecord], bool],
        *,
        timeout: float = 1.0,  # noqa: ASYNC109
        start_index: int = 0,
    ) -> EventRecord:
        """Wait for an event (by ``event_type`` or predicate) emitted at or after the
        ``start_index``-th event of the system. ``TimeoutError`` after ``timeout``."""
        def ok(rec: EventRecord) -> bool:
            return rec.event_type == match if isinstance(match, str) else bool(match(rec))

        async with asyncio.timeout(timeout):
            while True:
                first = self._event_total - len(self._history)
                for i, rec in enumerate(self._history):
                    if first + i >= start_index and ok(rec):
                        return rec
                fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._event_waiters.append(fut)
                await fut

    # ------------------------------------------------------------------ dead letters

    def _make_dead_letter(self, address: ActorAddress | None, message: Any,
                          expects_reply: bool, target_text: str | None
                          ) -> tuple[DeadLetter, DeadLetterRecord | None]:
        letter = DeadLetter(address, message, expects_reply)
        self.dead_letters.push(letter)
        self.metrics.dead_letters += 1
        self.hooks.call("on_dead_letter", letter)
        payload = message
        if self._dead_letter_payload is not None:
            try:
                payload = self._dead_letter_payload(message)
            except Exception:
                self.metrics.hook_errors += 1
                log.warning("dead_letter_payload raised; payload not persisted", exc_info=True)
                payload = None
        target = str(address) if address is not None else target_text
        record = DeadLetterRecord(system_id=self.system_id, timestamp=self.clock.time(),
                                  target=target, message_type=type(message).__name__,
                                  payload=payload, expects_reply=expects_reply,
                                  id=self._record_id())
        return letter, record

    async def _dead_letter(self, address: ActorAddress | None, message: Any,
                           expects_reply: bool, *, target_text: str | None = None) -> None:
        _letter, record = self._make_dead_letter(address, message, expects_reply, target_text)
        if record is not None and self._queue is not None:
            await self._queue.put(record)

    def _dead_letter_nowait(self, address: ActorAddress | None, message: Any,
                            expects_reply: bool) -> None:
        _letter, record = self._make_dead_letter(address, message, expects_reply, None)
        if record is not None:
            self._persist_nowait(record)

    def _persist_nowait(self, record: Record) -> None:
        if self._queue is not None:
            self._queue.put_nowait(record)

    # ------------------------------------------------------------------ metrics

    def _gauges(self) -> dict[str, int]:
        rts = list(self._actors.values())
        return {
            "actors_alive": sum(1 for rt in rts if rt.alive),
            "mailbox_depth": sum(len(rt.mailbox) for rt in rts),
            "persistence_queue_depth": len(self._queue) if self._queue is not None else 0,
            "messages_processed_live": sum(rt.processed for rt in rts),
        }

    def __repr__(self) -> str:
        return f"<ActorSystem {self.system_id!r} {self._state} actors={len(self._actors)}>"
