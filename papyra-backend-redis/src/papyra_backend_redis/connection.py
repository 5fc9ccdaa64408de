"""Store URLs, Redis clients and the translation of Redis failures into papyra errors.

A store URL names the server and papyra's own settings::

    redis://user:secret@host:6379/0?prefix=papyra&system_id=orders
    rediss://host:6380/0?ssl_ca_certs=/etc/ssl/ca.pem&system_id=orders     (TLS)
    unix:///run/redis.sock?db=0&system_id=orders
    redis://host:7000/0?cluster=1&system_id=orders                          (Redis Cluster)

papyra's settings (``prefix``, ``system_id``, ``cluster``, ``groups``, ``trim_on_write``,
``stale_pending_ms``, ``max_record_bytes``, ``fsync``) are taken out of the query string; every
other member (``socket_timeout``, ``ssl_*``, ...) goes to redis-py. The password never leaves
this module in readable form: :func:`scrub` removes it from any text derived from an error.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import attrs
from papyra.errors import ConfigError, StoreUnavailableError
from papyra.urls import redact

T = TypeVar("T")

SCHEMES = ("redis", "rediss", "unix")
PAPYRA_OPTIONS = frozenset({
    "prefix", "system_id", "cluster", "groups", "trim_on_write", "stale_pending_ms",
    "max_record_bytes", "fsync",
})
DEFAULT_SOCKET_TIMEOUT = 5.0
DEFAULT_CONNECT_TIMEOUT = 5.0
BACKOFF_BASE = 0.05
BACKOFF_CAP = 1.0
RETRIES = 5


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


@attrs.frozen(kw_only=True)
class RedisSettings:
    """A parsed Redis store URL. ``repr()`` and ``str()`` never show the password."""

    client_url: str = attrs.field(repr=False)
    """What redis-py gets: the URL without papyra's own query members."""
    redacted: str
    password: str | None = attrs.field(default=None, repr=False)
    prefix: str = "papyra"
    system_id: str = "local"
    cluster: bool = False
    options: Mapping[str, str] = attrs.field(factory=dict)
    """papyra's members of the query string (``groups``, ``trim_on_write``, ...)."""

    @classmethod
    def parse(cls, url: str, **overrides: Any) -> RedisSettings:
        try:
            parts = urlsplit(url)
        except ValueError:
            raise ConfigError("not a Redis URL (unparseable)") from None
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            raise ConfigError(
                f"not a Redis URL: {redact(url)!r} (expected redis://, rediss:// or unix://)"
            )
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        ours = {k: v for k, v in pairs if k in PAPYRA_OPTIONS}
        theirs = [(k, v) for k, v in pairs if k not in PAPYRA_OPTIONS]
        for key, value in overrides.items():
            if value is not None and key in PAPYRA_OPTIONS:
                ours[key] = value if isinstance(value, str) else _option_text(value)
        client_url = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(theirs), ""))
        password = unquote(parts.password) if parts.password else None
        system_id = str(ours.get("system_id") or "local")
        prefix = str(ours.get("prefix") or "papyra")
        for name, value in (("system_id", system_id), ("prefix", prefix)):
            if "{" in value or "}" in value:
                raise ConfigError(f"{name} may not contain braces (they make the hash tag): "
                                  f"{value!r}")
        if scheme == "unix" and _truthy(ours.get("cluster", "")):
            raise ConfigError("a Redis Cluster cannot be reached through a unix:// socket")
        return cls(
            client_url=client_url, redacted=redact(url), password=password, prefix=prefix,
            system_id=system_id, cluster=_truthy(ours.get("cluster", "")), options=ours,
        )

    def __str__(self) -> str:
        return self.redacted


def _option_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(str(v) for v in value)
    return str(value)


def scrub(text: str, settings: RedisSettings | None) -> str:
    """``text`` with the password (if any) replaced by ``***``."""
    if settings is not None and settings.password:
        text = text.replace(settings.password, "***")
    return text


def retryable(error: BaseException) -> bool:
    """Connection trouble is retried (with backoff); a refused password or certificate is not:
    retrying cannot fix it and would only delay the error."""
    import ssl

    from redis.exceptions import AuthenticationError, AuthenticationWrongNumberOfArgsError

    if isinstance(error, AuthenticationError | AuthenticationWrongNumberOfArgsError):
        return False
    cause = error.__cause__ or error.__context__
    return not isinstance(cause, ssl.SSLCertVerificationError | ssl.SSLError)


def make_client(settings: RedisSettings) -> Any:
    """A redis.asyncio client (or cluster client) with timeouts and bounded backoff."""
    from redis.asyncio import Redis, RedisCluster
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialWithJitterBackoff
    from redis.exceptions import ConnectionError, TimeoutError

    class _Retry(Retry):
        # redis-py >= 6 lets a caller veto retries (is_retryable); older versions simply retry
        # an authentication failure too, which only delays the error by the backoff
        async def call_with_retry(self, do: Any, fail: Any, *args: Any, **kwargs: Any) -> Any:
            if not _VETO:
                return await super().call_with_retry(do, fail, *args, **kwargs)
            given = args[0] if args else kwargs.pop("is_retryable", None)

            def check(error: Exception) -> bool:
                return retryable(error) and (given is None or given(error))

            return await super().call_with_retry(do, fail, check, *args[1:], **kwargs)

    _VETO = "is_retryable" in inspect.signature(Retry.call_with_retry).parameters
    retry = _Retry(ExponentialWithJitterBackoff(cap=BACKOFF_CAP, base=BACKOFF_BASE), RETRIES,
                   supported_errors=(ConnectionError, TimeoutError))
    query = dict(parse_qsl(urlsplit(settings.client_url).query))
    kwargs: dict[str, Any] = {"retry": retry}
    if "socket_timeout" not in query:
        kwargs["socket_timeout"] = DEFAULT_SOCKET_TIMEOUT
    if "socket_connect_timeout" not in query:
        kwargs["socket_connect_timeout"] = DEFAULT_CONNECT_TIMEOUT
    try:
        if settings.cluster:
            return RedisCluster.from_url(settings.client_url, **kwargs)
        return Redis.from_url(settings.client_url, health_check_interval=30, **kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"bad Redis URL {settings.redacted}: {scrub(str(exc), settings)}"
                          ) from None


def translate(exc: BaseException, settings: RedisSettings | None, doing: str) -> Exception:
    """A papyra error for a redis-py exception (messages scrubbed of the password)."""
    from redis import exceptions as rex

    where = settings.redacted if settings is not None else "redis"
    text = scrub(f"{type(exc).__name__}: {exc}", settings)
    if isinstance(exc, rex.AuthenticationError | rex.AuthenticationWrongNumberOfArgsError):
        return StoreUnavailableError(f"{doing}: authentication failed for {where} ({text})")
    if isinstance(exc, rex.NoPermissionError):
        return StoreUnavailableError(f"{doing}: permission denied on {where} ({text})")
    if isinstance(exc, rex.ConnectionError | rex.TimeoutError | OSError):
        return StoreUnavailableError(f"{doing}: Redis at {where} is unreachable ({text})")
    if isinstance(exc, rex.ResponseError) and str(exc).startswith(("NOAUTH", "WRONGPASS")):
        return StoreUnavailableError(f"{doing}: authentication failed for {where} ({text})")
    if isinstance(exc, rex.RedisClusterException | rex.ClusterError):
        return StoreUnavailableError(f"{doing}: Redis Cluster at {where} failed ({text})")
    if isinstance(exc, rex.RedisError):
        return StoreUnavailableError(f"{doing}: Redis at {where} failed ({text})")
    return StoreUnavailableError(f"{doing}: {text}")


async def guarded(settings: RedisSettings | None, doing: str,
                  call: Callable[[], Awaitable[T]]) -> T:
    """Await ``call()``; redis-py failures become :class:`StoreUnavailableError` (exit 4)."""
    from redis.exceptions import RedisError

    try:
        return await call()
    except (RedisError, OSError) as exc:
        raise translate(exc, settings, doing) from None
