"""papyra's logging: the standard :mod:`logging` module, a ``papyra`` logger hierarchy, an
optional JSON formatter, and a filter that keeps secrets out of every line.

Loggers (all children of ``papyra``, so one line configures them all)::

    papyra.store      backends: opening, appends that failed, fsync failures
    papyra.filelog    file backends' machinery (locks, rewrites)
    papyra.recovery   recovery plans and actions
    papyra.startup    startup checks
    papyra.plugins    plugin loading
    papyra.actors     the actor system (crashes, restarts, dead letters, persistence queue)
    papyra.metrics    exporters and probes
    papyra.asgi       the ASGI integration
    papyra.cli        the command line

Levels mean: ``DEBUG`` internals worth seeing while debugging; ``INFO`` things an operator
may want in the log (store opened, compaction or recovery done, server listening);
``WARNING`` papyra continues but something is off (a plugin failed to load, records dropped,
anomalies found); ``ERROR`` an operation failed (an append, an fsync, a startup check);
``CRITICAL`` papyra cannot continue.

papyra never configures logging on import. An application that wants papyra's lines calls
:func:`configure_logging` (or its own ``logging`` setup); the CLI calls it from ``--log-level``.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any, TextIO

import orjson

ROOT_LOGGER = "papyra"
LOGGER_NAMES = (
    "papyra.store",
    "papyra.filelog",
    "papyra.recovery",
    "papyra.startup",
    "papyra.plugins",
    "papyra.actors",
    "papyra.metrics",
    "papyra.asgi",
    "papyra.cli",
)

# scheme://user:password@host -> scheme://user:***@host
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s/]+(?=@)")
# password=..., token=... in query strings, key=value pairs and headers
_SECRET_VALUE = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|token|secret|api[_-]?key)\b\s*[=:]\s*)"
    r"(?P<q>['\"]?)[^\s&'\",;)]+",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<head>\bBearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


def redact_text(text: str) -> str:
    """``text`` with URL passwords, ``password=``/``token=`` values and bearer tokens
    replaced by ``***``."""
    text = _URL_PASSWORD.sub(r"\g<head>***", text)
    text = _SECRET_VALUE.sub(r"\g<key>\g<q>***", text)
    return _BEARER.sub(r"\g<head>***", text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (arguments merged) and exception text without secrets.

    Attach it to a handler (``configure_logging`` does); it never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = str(record.msg)
        record.msg = redact_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True


_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))
) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (Unix seconds), ``time`` (ISO 8601 UTC), ``level``,
    ``logger``, ``message``, any ``extra=`` fields, and ``exc_type``/``exc`` for exceptions.
    Messages and extra string values are redacted."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": round(record.created, 6),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": redact_text(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key in _STANDARD_ATTRS or key.startswith("_"):
                continue
            doc[key] = redact_text(value) if isinstance(value, str) else value
        if record.exc_info and record.exc_info[0] is not None:
            doc["exc_type"] = record.exc_info[0].__name__
            doc["exc"] = redact_text(self.formatException(record.exc_info))
        elif record.exc_text:
            doc["exc"] = redact_text(record.exc_text)
        return orjson.dumps(doc, default=repr).decode()


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(
    level: int | str = "INFO",
    *,
    json: bool = False,
    stream: TextIO | None = None,
    handler: logging.Handler | None = None,
) -> logging.Handler:
    """Send the ``papyra`` loggers' lines to ``stream`` (default stderr), as text or JSON.

    Replaces a handler installed by an earlier call (calling twice never doubles lines) and
    stops propagation to the root logger so lines are not printed twice. Returns the handler.
    """
    logger = logging.getLogger(ROOT_LOGGER)
    for old in list(logger.handlers):
        if getattr(old, "_papyra_handler", False):
            logger.removeHandler(old)
            old.close()
    if handler is None:
        handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if json else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RedactingFilter())
    handler._papyra_handler = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level.upper() if isinstance(level, str) else level)
    logger.propagate = False
    return handler


def get_logger(name: str = "") -> logging.Logger:
    """``papyra`` or a child of it (``get_logger("store")`` is ``papyra.store``)."""
    if not name or name == ROOT_LOGGER:
        return logging.getLogger(ROOT_LOGGER)
    if name.startswith(ROOT_LOGGER + "."):
        return logging.getLogger(name)
    return logging.getLogger(f"{ROOT_LOGGER}.{name}")


__all__ = [
    "LOGGER_NAMES",
    "JsonFormatter",
    "RedactingFilter",
    "configure_logging",
    "get_logger",
    "redact_text",
]
