"""Store URLs: ``json:///var/lib/app/papyra.ndjson``, ``rotation:///var/lib/app/log/``,
``redis://user:secret@host:6379/0?prefix=papyra&system_id=orders``, ``memory://``.

:func:`redact` removes any password, so a URL can be printed, logged or put in an exception.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

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
    """The URL with its password (if any) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    changed = False
    if "@" in netloc:
        changed = True
        userinfo, _, hostport = netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        netloc = f"{user}:***@{hostport}" if sep else f"{user}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in _SECRET_KEYS for k, _ in pairs):
            changed = True
            query = "&".join(
                f"{k}=***" if k.lower() in _SECRET_KEYS else f"{k}={v}" for k, v in pairs
            )
    if not changed:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


_SECRET_KEYS = frozenset({"password", "pass", "pwd", "token", "secret"})


def url_for_path(path: str | os.PathLike[str]) -> str:
    """The ``--path`` shorthand: an existing directory means rotation, anything else json."""
    p = Path(path).expanduser()
    scheme = "rotation" if p.is_dir() else "json"
    return f"{scheme}://{p.absolute()}"
