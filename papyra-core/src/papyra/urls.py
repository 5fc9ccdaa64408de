"""Store URLs: ``json:///var/lib/app/papyra.ndjson``, ``rotation:///var/lib/app/log/``,
``redis://user:secret@host:6379/0?prefix=papyra&system_id=orders``, ``memory://``.

:func:`redact` removes any password, so a URL can be printed, logged or put in an exception.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import attrs

from papyra.errors import ConfigError


@attrs.frozen
class StoreURL:
    """A parsed store URL. ``str()`` and ``repr()`` never show a password."""

    raw: str = attrs.field(repr=False)
    scheme: str
    path: str
    query: dict[str, str] = attrs.field(factory=dict)

    @classmethod
    def parse(cls, url: str) -> StoreURL:
        if "://" not in url:
            raise ConfigError(
                f"not a store URL: {redact(url)!r} (expected scheme://..., e.g. json:///path)"
            )
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if not scheme:
            raise ConfigError(f"store URL has no scheme: {redact(url)!r}")
        path = unquote(parts.netloc + parts.path) if scheme in FILE_SCHEMES else unquote(parts.path)
        return cls(raw=url, scheme=scheme, path=path, query=dict(parse_qsl(parts.query)))

    @property
    def redacted(self) -> str:
        return redact(self.raw)

    def __str__(self) -> str:
        return self.redacted

    def file_path(self) -> Path:
        """For file schemes: the path, ``~`` expanded, relative paths taken from the cwd."""
        if not self.path:
            raise ConfigError(f"store URL has no path: {self.redacted!r}")
        return Path(os.path.expanduser(self.path))


FILE_SCHEMES = frozenset({"json", "rotation", "file", "sqlite"})


def redact(url: str) -> str:
    """The URL with its password (if any) replaced by ``***``; everything else kept verbatim.

    Handles ``user:password@`` userinfo, secret query parameters (``password``, ``token``, ...)
    and, for strings that are not URLs at all, anything shaped like ``name:secret@host``.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _LOOSE_USERINFO.sub(r"\1***@", url)
    end = len(rest)
    for ch in "/?#":
        i = rest.find(ch)
        if i != -1:
            end = min(end, i)
    authority, tail = rest[:end], rest[end:]
    if "@" in authority:
        userinfo, _, hostport = authority.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        authority = f"{user}:***@{hostport}" if colon else f"{user}@{hostport}"
    path, qmark, query = tail.partition("?")
    if qmark:
        query, hashmark, fragment = query.partition("#")
        pairs = []
        for pair in query.split("&"):
            key, eq, _value = pair.partition("=")
            pairs.append(f"{key}=***" if eq and unquote(key).lower() in _SECRET_KEYS else pair)
        tail = f"{path}?{'&'.join(pairs)}{hashmark}{fragment}"
    return f"{scheme}://{authority}{tail}"


_LOOSE_USERINFO = re.compile(r"(:)[^:/@\s]+@")
_SECRET_KEYS = frozenset({"password", "pass", "pwd", "token", "secret"})


def url_for_path(path: str | os.PathLike[str]) -> str:
    """The ``--path`` shorthand: an existing directory means rotation, anything else json."""
    p = Path(path).expanduser()
    scheme = "rotation" if p.is_dir() else "json"
    return f"{scheme}://{p.absolute()}"
