"""Parameter types of the ``papyra`` command: durations (``7d``), sizes (``10GiB``), points in
time (epoch, ISO-8601, ``15m`` ago) and case-insensitive modes that complete in the shell."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import click
from click.shell_completion import CompletionItem

_DURATION_UNITS = {
    "ms": 0.001, "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hr": 3600.0, "hrs": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
    "w": 604800.0, "week": 604800.0, "weeks": 604800.0,
}
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)?")

_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "kib": 1024,
    "m": 1000**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1000**3, "gb": 1000**3, "gib": 1024**3,
    "t": 1000**4, "tb": 1000**4, "tib": 1024**4,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_duration(text: str) -> float:
    """Seconds in ``text``: ``90``, ``30s``, ``15m``, ``12h``, ``7d``, ``2w``, ``1h30m``."""
    raw = text.strip()
    if not raw:
        raise ValueError("empty duration")
    try:
        value = float(raw)
    except ValueError:
        pass
    else:
        if value < 0 or value != value or value == float("inf"):
            raise ValueError(f"invalid duration {text!r}")
        return value
    total = 0.0
    pos = 0
    while pos < len(raw):
        m = _DURATION_PART.match(raw, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"invalid duration {text!r} (expected e.g. 30s, 15m, 12h, 7d, 1h30m)")
        unit = (m.group(2) or "s").lower()
        if unit not in _DURATION_UNITS:
            raise ValueError(f"unknown duration unit {m.group(2)!r} in {text!r} "
                             "(use ms, s, m, h, d or w)")
        total += float(m.group(1)) * _DURATION_UNITS[unit]
        pos = m.end()
    return total


def parse_size(text: str) -> int:
    """Bytes in ``text``: ``1024``, ``500MB`` (decimal), ``10GiB`` (binary)."""
    m = _SIZE.match(text)
    if m is None:
        raise ValueError(f"invalid size {text!r} (expected e.g. 500MB, 10GiB, 1048576)")
    unit = m.group(2).lower()
    if unit not in _SIZE_UNITS:
        raise ValueError(f"unknown size unit {m.group(2)!r} in {text!r} "
                         "(use B, KB, MB, GB, TB or KiB, MiB, GiB, TiB)")
    return int(float(m.group(1)) * _SIZE_UNITS[unit])


def parse_time(text: str, *, now: float | None = None) -> float:
    """Epoch seconds for ``text``: epoch seconds, ISO-8601 (UTC when no offset is given), or a
    duration ago (``15m`` means 15 minutes before now)."""
    raw = text.strip()
    if not raw:
        raise ValueError("empty time")
    try:
        return float(raw)
    except ValueError:
        pass
    iso = raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw
    try:
        dt = datetime.fromisoformat(iso)
    except ValueError:
        pass
    else:
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.timestamp()
    ago = raw[:-4].strip() if raw.lower().endswith(" ago") else raw
    try:
        seconds = parse_duration(ago)
    except ValueError:
        raise ValueError(
            f"invalid time {text!r} (expected epoch seconds, ISO-8601 like 2026-01-31T12:00:00Z, "
            "or a duration ago like 15m, 2h, 7d)"
        ) from None
    return (time.time() if now is None else now) - seconds


class Duration(click.ParamType[float]):
    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Size(click.ParamType[int]):
    name = "size"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class PointInTime(click.ParamType[float]):
    name = "time"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        try:
            return parse_time(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Mode(click.ParamType[str]):
    """A case-insensitive choice whose values may come from plugins (hence a callable).

    ``FAIL_ON_ANOMALY``, ``fail-on-anomaly`` and ``fail_on_anomaly`` are the same mode. The
    shell completes the lower-case names.
    """

    name = "mode"

    def __init__(self, choices: Sequence[str] | Callable[[click.Context | None], Sequence[str]],
                 label: str = "mode") -> None:
        self._choices = choices
        self.label = label

    def choices(self, ctx: click.Context | None) -> list[str]:
        found = self._choices(ctx) if callable(self._choices) else self._choices
        return list(found)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        if callable(self._choices):
            return self.label.upper().replace(" ", "_")
        return "[" + "|".join(self._choices) + "]"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        key = str(value).strip().lower().replace("-", "_")
        choices = self.choices(ctx)
        if key in choices:
            return key
        self.fail(f"unknown {self.label} {value!r} (expected one of {', '.join(choices)}; "
                  "case does not matter)", param, ctx)

    def shell_complete(self, ctx: click.Context, param: click.Parameter,
                       incomplete: str) -> list[CompletionItem]:
        prefix = incomplete.lower().replace("-", "_")
        return [CompletionItem(c) for c in self.choices(ctx) if c.startswith(prefix)]


STARTUP_MODES = ("ignore", "scan_only", "fail_on_anomaly", "recover")
