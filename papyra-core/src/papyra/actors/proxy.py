"""Actor proxies: call an actor's methods and attributes as if it were a local object.

``await ref.proxy().deposit(10)`` asks the actor to run ``deposit(10)`` inside its own loop
(one message at a time, like any other); ``await proxy.balance`` (or ``.get()``) reads an
attribute, ``await proxy.balance.set(0)`` writes it, ``await proxy.log.defer("x")`` tells
instead of asking. Names starting with ``_`` are refused with ``AttributeError``.
"""

from __future__ import annotations

import inspect
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from papyra.actors.ref import ActorRef


@attrs.frozen
class ProxyCall:
    path: tuple[str, ...]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class ProxyGetAttr:
    path: tuple[str, ...]


@attrs.frozen
class ProxySetAttr:
    path: tuple[str, ...]
    value: Any


PROXY_MESSAGES = (ProxyCall, ProxyGetAttr, ProxySetAttr)


def _check(name: str) -> None:
    if name.startswith("_"):
        raise AttributeError(f"private attribute {name!r} is not reachable through a proxy")


def _resolve(obj: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        _check(name)
        obj = getattr(obj, name)
    return obj


async def dispatch(actor: Any, message: Any) -> Any:
    """Run a proxy message against ``actor`` (inside the actor's loop)."""
    if isinstance(message, ProxyCall):
        result = _resolve(actor, message.path)(*message.args, **message.kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result
    if isinstance(message, ProxyGetAttr):
        return _resolve(actor, message.path)
    *head, last = message.path
    _check(last)
    setattr(_resolve(actor, tuple(head)), last, message.value)
    return None


class ProxyPath:
    """One attribute path on an actor, not yet called or read."""

    __slots__ = ("_path", "_ref", "_timeout")

    def __init__(self, ref: ActorRef, path: tuple[str, ...], timeout: float | None) -> None:
        self._ref = ref
        self._path = path
        self._timeout = timeout

    def __getattr__(self, name: str) -> ProxyPath:
        _check(name)
        return ProxyPath(self._ref, (*self._path, name), self._timeout)

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return await self._ref.ask(ProxyCall(self._path, args, kwargs), timeout=self._timeout)

    async def defer(self, *args: Any, **kwargs: Any) -> None:
        await self._ref.tell(ProxyCall(self._path, args, kwargs))

    async def get(self) -> Any:
        return await self._ref.ask(ProxyGetAttr(self._path), timeout=self._timeout)

    async def set(self, value: Any) -> None:
        await self._ref.ask(ProxySetAttr(self._path, value), timeout=self._timeout)

    def __await__(self) -> Generator[Any, None, Any]:
        return self.get().__await__()

    def __repr__(self) -> str:
        return f"<ProxyPath {self._ref.address}.{'.'.join(self._path)}>"


class ActorProxy:
    """``ref.proxy()``: attribute access becomes messages to the actor."""

    __slots__ = ("_ref", "_timeout")

    def __init__(self, ref: ActorRef, timeout: float | None = None) -> None:
        self._ref = ref
        self._timeout = timeout

    def __getattr__(self, name: str) -> ProxyPath:
        _check(name)
        return ProxyPath(self._ref, (name,), self._timeout)

    @property
    def ref(self) -> ActorRef:
        return self._ref

    def __repr__(self) -> str:
        return f"<ActorProxy {self._ref.address}>"
