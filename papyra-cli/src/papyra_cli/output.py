"""Where output goes: machine output (``--json``) on stdout, everything for people on stderr.

- :func:`emit_json` writes one JSON document, :func:`emit_ndjson` one compact line per item;
  both through orjson with papyra's codec hook, so any record payload serialises.
- :func:`show` and :func:`table` write a command's human-readable *result* (records, summaries,
  lists) to stdout, so ``papyra inspect events | grep ActorCrashed`` works.
- :func:`say` and :func:`warn` write messages (status, progress, diagnostics) to stderr.
- :func:`activity` shows a progress indicator on stderr while an operation runs, only when
  stderr is a terminal and never with ``--json``.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import click
import orjson
from papyra.codec import json_default

_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def dumps(value: Any, *, indent: bool = False) -> bytes:
    option = _JSON_OPTIONS | (orjson.OPT_INDENT_2 if indent else 0)
    return orjson.dumps(value, default=json_default, option=option)


def _stdout_write(data: bytes) -> None:
    stream = sys.stdout.buffer
    stream.write(data)
    stream.flush()


def emit_json(value: Any) -> None:
    """One JSON document on stdout (pretty-printed, newline-terminated)."""
    _stdout_write(dumps(value, indent=True) + b"\n")


def emit_ndjson(items: Iterable[Any]) -> None:
    """One compact JSON object per line on stdout."""
    for item in items:
        _stdout_write(dumps(item) + b"\n")


def emit_line(value: Any) -> None:
    """A single NDJSON line on stdout (used while following a log)."""
    _stdout_write(dumps(value) + b"\n")


def say(message: str = "", *, fg: str | None = None, bold: bool = False) -> None:
    """A message for people, on stderr (colour only on a terminal)."""
    text = click.style(message, fg=fg, bold=bold) if fg or bold else message
    click.echo(text, err=True)


def show(text: str = "", *, bold: bool = False) -> None:
    """A line of a command's human-readable result, on stdout (bold only on a terminal)."""
    click.echo(click.style(text, bold=True) if bold else text)


def warn(message: str) -> None:
    say(f"papyra: warning: {message}", fg="yellow")


def stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def terminal_width() -> int:
    return shutil.get_terminal_size((120, 24)).columns


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *,
          max_widths: Sequence[int | None] | None = None) -> None:
    """A plain aligned table on stdout. ``max_widths`` truncates columns (None = unbounded)."""
    text_rows = [[_cell(v) for v in row] for row in rows]
    if max_widths is not None:
        text_rows = [
            [_truncate(c, w) for c, w in zip(row, max_widths, strict=False)] + row[len(max_widths):]
            for row in text_rows
        ]
    widths = [len(h) for h in headers]
    for row in text_rows:
        for i, cell in enumerate(row):
            if i < len(widths):
                widths[i] = max(widths[i], len(cell))
    show("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(), bold=True)
    for row in text_rows:
        show("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return str(value)


def _truncate(text: str, width: int | None) -> str:
    if width is None or len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + "…"


def human_bytes(n: int | None) -> str:
    """``1536`` → ``1.5 KiB``."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover - loop always returns


@asynccontextmanager
async def activity(label: str, *, enabled: bool) -> AsyncIterator[None]:
    """A progress indicator on stderr while the block runs (terminal only, never with --json).

    Backends report no fractional progress, so this shows elapsed time with a moving bar: it
    tells an operator that a long scan of a big log is alive without touching stdout.
    """
    if not enabled or not stderr_is_terminal():
        yield
        return
    stream = sys.stderr
    start = time.monotonic()
    stop = asyncio.Event()

    async def spin() -> None:
        frames = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
        i = 0
        while not stop.is_set():
            elapsed = time.monotonic() - start
            if elapsed >= 0.3:
                stream.write(f"\r{frames[i % len(frames)]} {label} … {elapsed:5.1f}s")
                stream.flush()
            i += 1
            try:
                await asyncio.wait_for(stop.wait(), timeout=0.1)
            except TimeoutError:
                continue

    task = asyncio.create_task(spin())
    try:
        yield
    finally:
        stop.set()
        await task
        if time.monotonic() - start >= 0.3:
            stream.write("\r\x1b[2K")
            stream.flush()
