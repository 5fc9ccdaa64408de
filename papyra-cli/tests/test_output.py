from __future__ import annotations

import asyncio
import io

import pytest
from papyra_cli import output


def run_activity(monkeypatch: pytest.MonkeyPatch, *, terminal: bool, enabled: bool) -> str:
    stream = io.StringIO()
    monkeypatch.setattr(output.sys, "stderr", stream)
    monkeypatch.setattr(output, "stderr_is_terminal", lambda: terminal)

    async def slow() -> None:
        async with output.activity("scanning json:///x", enabled=enabled):
            await asyncio.sleep(0.6)

    asyncio.run(slow())
    return stream.getvalue()


def test_a_long_operation_shows_progress_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    shown = run_activity(monkeypatch, terminal=True, enabled=True)
    assert "scanning json:///x" in shown
    assert shown.endswith("\r\x1b[2K")  # the line is cleared afterwards


def test_no_progress_in_pipes_or_with_json(monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_activity(monkeypatch, terminal=False, enabled=True) == ""
    assert run_activity(monkeypatch, terminal=True, enabled=False) == ""


def test_human_sizes() -> None:
    assert output.human_bytes(None) == "-"
    assert output.human_bytes(512) == "512 B"
    assert output.human_bytes(1536) == "1.5 KiB"
    assert output.human_bytes(10 * 1024**3) == "10.0 GiB"
