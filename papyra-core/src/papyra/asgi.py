"""ASGI integration: run an ActorSystem for the life of a web app, and serve health and metrics.

No web framework is imported here; everything is plain ASGI, so it works with Starlette,
FastAPI, Litestar, Quart or a bare ASGI callable::

    from starlette.applications import Starlette
    from starlette.routing import Mount, Route
    import papyra.asgi

    system = ActorSystem(system_id="orders", persistence="json:///var/lib/orders/papyra.ndjson")
    app = Starlette(
        lifespan=papyra.asgi.lifespan(system),
        routes=[
            Mount("/health", papyra.asgi.HealthEndpoints(system)),
            Route("/metrics", papyra.asgi.MetricsEndpoint(system)),
        ],
    )

- :func:`lifespan` — for ``lifespan=`` of Starlette/FastAPI: starts the system before the app
  serves (a failed startup check stops the server from starting), closes it (flushing every
  record) after the app stopped; ``inner=`` nests your own lifespan.
- :class:`LifespanMiddleware` — the same for any ASGI app, by wrapping it.
- :class:`HealthEndpoints` — ``GET /live`` (the process answers) and ``GET /ready`` (system
  running, store reachable and its last scan clean; else 503 with the reason as JSON). Mounted
  at ``/health`` that is ``/health/live`` and ``/health/ready``.
- :class:`MetricsEndpoint` — Prometheus exposition (OpenMetrics when asked for by ``Accept``),
  or JSON with ``?format=json``.
- :class:`Endpoints` — all three under one mount: ``/health/live``, ``/health/ready``,
  ``/metrics``.

A GET never writes to the store. Endpoints accept ``token=`` (or ``token_file=``) to require
``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import abc
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson

from papyra.exporters.probe import Readiness, StoreProbe, readiness_of

log = logging.getLogger("papyra.asgi")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# ---------------------------------------------------------------------------- lifecycle


def _resolve(target: Any) -> Any:
    """A system/store, or the result of calling a factory (anything callable without
    ``start``/``scan``)."""
    if target is None:
        return None
    if callable(target) and not hasattr(target, "start") and not hasattr(target, "scan"):
        return target()
    return target


def lifespan(
    system: Any,
    *,
    inner: Callable[[Any], contextlib.AbstractAsyncContextManager[Any]] | None = None,
    state_attr: str = "papyra",
) -> Callable[[Any], contextlib.AbstractAsyncContextManager[Any]]:
    """A ``lifespan=`` function that starts ``system`` and closes it on shutdown.

    ``system`` is an ActorSystem (anything with async ``start()`` and ``aclose()``) or a
    factory returning one, called at startup. The running system is put on ``app.state``
    under ``state_attr`` when the app has a ``state``. ``inner`` is your own lifespan; it runs
    inside, after the system started and before it closes, and what it yields is passed on.
    """

    @contextlib.asynccontextmanager
    async def _lifespan(app: Any) -> AsyncIterator[Any]:
        running = _resolve(system)
        try:
            await running.start()
        except Exception as exc:
            log.error("papyra: the actor system did not start: %s", exc)
            raise
        state = getattr(app, "state", None)
        if state is not None and state_attr:
            with contextlib.suppress(AttributeError, TypeError):
                setattr(state, state_attr, running)
        try:
            if inner is not None:
                async with inner(app) as inner_state:
                    yield inner_state
            else:
                yield None
        finally:
            await running.aclose()

    return _lifespan


class LifespanMiddleware:
    """Wraps any ASGI app: starts ``system`` on ``lifespan.startup``, closes it after the app
    finished ``lifespan.shutdown``. Apps without lifespan support are fine too."""

    def __init__(self, app: ASGIApp, system: Any) -> None:
        self.app = app
        self.system = system
        self.running: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        message = await receive()
        if message["type"] != "lifespan.startup":  # pragma: no cover - protocol violation
            return
        try:
            self.running = _resolve(self.system)
            await self.running.start()
        except Exception as exc:
            log.error("papyra: the actor system did not start: %s", exc)
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        pending: list[Message] = [message]
        sent: set[str] = set()

        async def inner_receive() -> Message:
            if pending:
                return pending.pop()
            return await receive()

        async def inner_send(msg: Message) -> None:
            sent.add(msg["type"])
            if msg["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed",
                               "lifespan.startup.failed"):
                await self._close()
            await send(msg)

        try:
            await self.app(scope, inner_receive, inner_send)
        except Exception:
            if "lifespan.startup.complete" in sent:
                await self._close()
                raise
            # The app does not speak lifespan: answer for it.
            log.debug("wrapped app does not support lifespan; papyra handles it alone")
            await send({"type": "lifespan.startup.complete"})
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.shutdown":
                    await self._close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        else:
            await self._close()

    async def _close(self) -> None:
        if self.running is not None:
            running, self.running = self.running, None
            await running.aclose()


# ---------------------------------------------------------------------------- endpoints


class _Endpoint(abc.ABC):
    """Shared plumbing: routing relative to the mount, methods, bearer token, responses."""

    def __init__(self, *, token: str | None = None, token_file: str | Path | None = None
                 ) -> None:
        if token_file is not None:
            token = read_token_file(token_file)
        self._token = token.encode() if token else None

    def _authorized(self, scope: Scope) -> bool:
        if self._token is None:
            return True
        for name, value in scope.get("headers", []):
            if name.lower() == b"authorization":
                scheme, _, given = bytes(value).partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(),
                                                                           self._token)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # mounted as a whole app: nothing to start
            await _lifespan_noop(receive, send)
            return
        if scope["type"] != "http":
            return
        method = scope.get("method", "GET")
        head = method == "HEAD"
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, {"error": "method not allowed"},
                           headers=[(b"allow", b"GET, HEAD")])
            return
        if not self._authorized(scope):
            await _respond(send, 401, {"error": "missing or wrong bearer token"},
                           headers=[(b"www-authenticate", b'Bearer realm="papyra"')], head=head)
            return
        await self.handle(route_path(scope), scope, send, head)

    @abc.abstractmethod
    async def handle(self, path: str, scope: Scope, send: Send, head: bool) -> None:
        """Answer a GET/HEAD for ``path`` (relative to the mount)."""


def route_path(scope: Scope) -> str:
    """The request path relative to where the endpoint is mounted (``root_path``)."""
    path: str = scope.get("path", "/")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        path = path[len(root):]
    return path.rstrip("/") or "/"


class HealthEndpoints(_Endpoint):
    """``/live`` and ``/ready`` (also ``/health/live``, ``/health/ready`` when mounted at
    the root).

    ``target`` is an ActorSystem, a store, or a callable returning one (resolved per request).
    Readiness does not scan the store by default: it reports the store's last scan (the
    startup check's). ``scan_interval=N`` re-scans at most every N seconds (read-only).
    """

    def __init__(self, target: Any, *, scan_interval: float | None = None,
                 token: str | None = None, token_file: str | Path | None = None,
                 timeout: float = 5.0) -> None:
        super().__init__(token=token, token_file=token_file)
        self.target = target
        self.scan_interval = scan_interval
        self.timeout = timeout
        self._probes: dict[int, StoreProbe] = {}

    def probe_for(self, store: Any) -> StoreProbe:
        probe = self._probes.get(id(store))
        if probe is None or probe.store is not store:
            probe = StoreProbe(store, scan=self.scan_interval is not None, stats=False,
                               scan_interval=self.scan_interval or 0.0, cache_seconds=1.0,
                               timeout=self.timeout)
            self._probes = {id(store): probe}
        return probe

    async def readiness(self) -> Readiness:
        target = _resolve(self.target)
        if target is None:
            return Readiness(ready=False, reason="not_started",
                             detail="the actor system does not exist yet")
        system_check: dict[str, Any] | None = None
        store = target
        if hasattr(target, "start") and hasattr(target, "running"):
            running = bool(target.running)
            closed = bool(getattr(target, "closed", False))
            state = "running" if running else ("closed" if closed else "not running")
            system_check = {"state": state, "system_id": getattr(target, "system_id", None)}
            if not running:
                return Readiness(ready=False, reason="closing" if closed else "not_started",
                                 detail=f"the actor system is {state}",
                                 checks={"system": system_check})
            store = getattr(target, "store", None)
        if store is None:
            return Readiness(ready=True, checks={"system": system_check or {}})
        result = readiness_of(await self.probe_for(store).measure())
        if system_check is not None:
            result = Readiness(ready=result.ready, reason=result.reason, detail=result.detail,
                               checks={"system": system_check, **result.checks})
        return result

    async def handle(self, path: str, scope: Scope, send: Send, head: bool) -> None:
        if path in ("/live", "/health/live", "/livez"):
            await _respond(send, 200, {"status": "alive"}, head=head)
        elif path in ("/ready", "/health/ready", "/readyz"):
            ready = await self.readiness()
            await _respond(send, ready.status_code, ready.to_dict(), head=head)
        else:
            await _respond(send, 404, {"error": "not found"}, head=head)


class MetricsEndpoint(_Endpoint):
    """Prometheus exposition of papyra's metrics for ``sources`` (see
    :func:`papyra.exporters.catalog.resolve`); ``?format=json`` gives the JSON exporter's
    document. ``store_gauges=True`` adds records/bytes/age gauges (``stats()``, cached for
    ``gauge_cache_seconds``; no scans)."""

    def __init__(self, *sources: Any, store_gauges: bool = False,
                 gauge_cache_seconds: float = 15.0, token: str | None = None,
                 token_file: str | Path | None = None) -> None:
        super().__init__(token=token, token_file=token_file)
        self.sources = list(sources)
        self.store_gauges = store_gauges
        self.gauge_cache_seconds = gauge_cache_seconds
        self._probes: dict[int, StoreProbe] = {}

    async def _gauges(self) -> list[Any]:
        if not self.store_gauges:
            return []
        out = []
        for src in self.sources:
            target = _resolve(src)
            store = getattr(target, "store", target) if hasattr(target, "start") else target
            if store is None or not hasattr(store, "stats"):
                continue
            probe = self._probes.get(id(store))
            if probe is None or probe.store is not store:
                probe = StoreProbe(store, scan=False, cache_seconds=self.gauge_cache_seconds)
                self._probes[id(store)] = probe
            out.append(await probe.measure())
        return out

    async def handle(self, path: str, scope: Scope, send: Send, head: bool) -> None:
        if path not in ("/", "/metrics"):
            await _respond(send, 404, {"error": "not found"}, head=head)
            return
        sources = [*self.sources, *await self._gauges()]
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if query.get("format", [""])[0] == "json":
            from papyra.exporters.json import JsonExporter

            body = JsonExporter(*sources).dumps()
            await _send(send, 200, body, b"application/json", head=head)
            return
        from papyra.exporters.prometheus import render

        accept = ""
        for name, value in scope.get("headers", []):
            if name.lower() == b"accept":
                accept = bytes(value).decode("latin-1")
        body, content_type = render(*sources, accept=accept or None)
        await _send(send, 200, body, content_type.encode(), head=head)


class Endpoints(_Endpoint):
    """``/health/live``, ``/health/ready`` and ``/metrics`` in one ASGI app."""

    def __init__(self, target: Any, *, scan_interval: float | None = None,
                 store_gauges: bool = False, token: str | None = None,
                 token_file: str | Path | None = None) -> None:
        super().__init__(token=token, token_file=token_file)
        self.health = HealthEndpoints(target, scan_interval=scan_interval)
        self.metrics = MetricsEndpoint(target, store_gauges=store_gauges)

    async def handle(self, path: str, scope: Scope, send: Send, head: bool) -> None:
        if path.startswith("/health/"):
            await self.health.handle(path, scope, send, head)
        else:
            await self.metrics.handle(path, scope, send, head)


# ---------------------------------------------------------------------------- helpers


def read_token_file(path: str | Path) -> str:
    """The bearer token in ``path`` (surrounding whitespace removed). Empty is an error."""
    from papyra.errors import ConfigError

    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read token file {path}: {exc.strerror or exc}") from None
    if not token:
        raise ConfigError(f"token file {path} is empty")
    return token


async def _lifespan_noop(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _respond(send: Send, status: int, payload: Any, *,
                   headers: list[tuple[bytes, bytes]] | None = None, head: bool = False) -> None:
    await _send(send, status, orjson.dumps(payload), b"application/json", headers=headers,
                head=head)


async def _send(send: Send, status: int, body: bytes, content_type: bytes, *,
                headers: list[tuple[bytes, bytes]] | None = None, head: bool = False) -> None:
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
            *(headers or []),
        ],
    })
    await send({"type": "http.response.body", "body": b"" if head else body})


__all__ = [
    "Endpoints",
    "HealthEndpoints",
    "LifespanMiddleware",
    "MetricsEndpoint",
    "lifespan",
    "read_token_file",
    "route_path",
]
