"""Ending long-running commands (``--follow``, ``metrics serve``) cleanly on SIGINT/SIGTERM.

``asyncio.run`` turns Ctrl-C into a cancellation delivered from a Python signal handler, which
runs between two bytecodes of whatever the loop is doing: it can cancel a future inside the
very callback that is completing it, and asyncio then logs an ``InvalidStateError`` traceback
on the way out. The loop's own signal handlers (``loop.add_signal_handler``) run as ordinary
callbacks instead, so a long-running command waits on the event they set and returns normally.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.asynccontextmanager
async def stop_on_signals() -> AsyncIterator[asyncio.Event]:
    """An event set by SIGINT or SIGTERM while the block runs (handlers removed afterwards)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed: list[signal.Signals] = []
    for sig in STOP_SIGNALS:
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, Windows
            continue
        installed.append(sig)
    try:
        yield stop
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` unless ``stop`` is set first; True when it was set."""
    if stop.is_set():
        return True
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
