"""The installed ``papyra`` with a broken plugin on the path, and ``inspect --follow`` against
a log that is written, compacted and replaced while it is followed."""

from __future__ import annotations

import asyncio
import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import papyra as papyra_core
from cli_subprocess import FIXTURES, PAPYRA, clean_env, cli, error_lines, out_json, papyra


@pytest.fixture
def broken_plugin_path(tmp_path: Path) -> str:
    """A site dir with two broken plugins: one whose module is missing, one that raises."""
    site = tmp_path / "site"
    dist = site / "papyra_broken-1.2.3.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: papyra-broken\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text(
        "[papyra]\nghost = papyra_broken_missing.plugin\nangry = papyra_broken_angry\n")
    (site / "papyra_broken_angry.py").write_text('raise RuntimeError("angry at import")\n')
    return str(site)


def test_help_version_plugins_and_backends_work_with_a_broken_plugin(
        broken_plugin_path: str) -> None:
    env = clean_env(PYTHONPATH=broken_plugin_path)
    help_ = papyra("--help", env=env)
    assert help_.returncode == 0, help_.stderr
    assert "persistence" in help_.stdout
    assert "angry at import" in help_.stderr  # warned, not fatal
    version = papyra("--version", env=env)
    assert version.returncode == 0
    assert "papyra-broken 1.2.3  [failed]" in version.stdout
    plugins = papyra("plugins", "--json", env=env)
    assert plugins.returncode == 0, plugins.stderr
    by_name = {p["name"]: p for p in out_json(plugins)}
    assert by_name["angry"]["status"] == "failed"
    assert "angry at import" in by_name["angry"]["error"]
    assert by_name["ghost"]["distribution"] == "papyra-broken"
    assert by_name["json"]["status"] == "loaded"
    backends = papyra("backends", "--json", env=env)
    assert backends.returncode == 0
    assert {"memory", "json"} <= {b["name"] for b in out_json(backends)}


def test_strict_plugins_make_a_broken_plugin_a_configuration_error(
        broken_plugin_path: str) -> None:
    proc = papyra("backends", env=clean_env(PYTHONPATH=broken_plugin_path,
                                            PAPYRA_STRICT_PLUGINS="1"))
    assert proc.returncode == 2
    (line,) = error_lines(proc)
    assert "failed to load" in line


def test_disabled_plugins_are_shown_as_disabled(broken_plugin_path: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(broken_plugin_path)
    proc = cli("plugins", "--json", env=clean_env(PYTHONPATH=broken_plugin_path,
                                                  PAPYRA_DISABLE_PLUGINS="angry,ghost"))
    assert proc.returncode == 0
    status = {p["name"]: p["status"] for p in out_json(proc)}
    assert status["angry"] == status["ghost"] == "disabled"
    assert "angry at import" not in proc.stderr


# --------------------------------------------------------------------------- follow


def append(log: Path, n: int, label: str) -> None:
    async def go() -> None:
        async with papyra_core.open_store(f"json://{log}") as store:
            for i in range(n):
                await store.record_event(actor_address="f:1", event_type=f"{label}{i}")

    asyncio.run(go())


class Follower:
    """``papyra inspect events --follow --json`` in a subprocess, lines read by a thread."""

    def __init__(self, log: Path, interval: str = "100ms") -> None:
        self.proc = subprocess.Popen(
            [PAPYRA, "inspect", "events", "--follow", "--json", "--interval", interval,
             "--limit", "3", "--path", str(log)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
        self.lines: queue.Queue[dict[str, object]] = queue.Queue()
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def take(self, n: int, timeout: float = 60) -> list[dict[str, object]]:
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            out.append(self.lines.get(timeout=max(deadline - time.monotonic(), 0.01)))
        return out

    def stop(self, sig: signal.Signals = signal.SIGINT) -> tuple[int, str]:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        assert self.proc.stderr is not None
        return code, self.proc.stderr.read()


def test_follow_prints_new_records_across_compaction_and_a_replaced_log(tmp_path: Path) -> None:
    log = tmp_path / "events.ndjson"
    log.write_bytes((FIXTURES / "events.ndjson").read_bytes())
    log.chmod(0o600)
    follower = Follower(log)
    try:
        first = follower.take(3)
        assert [r["seq"] for r in first] == [9, 10, 11]
        append(log, 2, "Before")
        assert [r["event_type"] for r in follower.take(2)] == ["Before0", "Before1"]
        compacted = cli("persistence", "compact", "--max-records", "2", "--path", str(log))
        assert compacted.returncode == 0, compacted.stderr
        append(log, 2, "After")
        after = follower.take(2)
        assert [r["event_type"] for r in after] == ["After0", "After1"]
        assert [r["seq"] for r in after] == [15, 16]
        log.unlink()  # the log is replaced by a new, shorter one
        (tmp_path / "events.ndjson.lock").unlink(missing_ok=True)
        append(log, 1, "Fresh")
        fresh = follower.take(1)
        assert fresh[0]["event_type"] == "Fresh0"
        assert fresh[0]["seq"] == 1
    finally:
        code, stderr = follower.stop()
    assert code == 0, stderr
    assert "replaced" in stderr
    assert "Traceback" not in stderr
    assert follower.lines.empty()


def test_follow_carries_on_across_segment_rotation(tmp_path: Path) -> None:
    log_dir = tmp_path / "log"

    def write(n: int, label: str) -> None:
        async def go() -> None:
            async with papyra_core.open_store(f"rotation://{log_dir}",
                                              max_segment_bytes=500) as store:
                for i in range(n):
                    await store.record_event(actor_address="r:1", event_type=f"{label}{i}")

        asyncio.run(go())

    write(3, "Old")
    follower = Follower(log_dir)
    try:
        assert [r["event_type"] for r in follower.take(3)] == ["Old0", "Old1", "Old2"]
        segments = len(list(log_dir.glob("segment-*.ndjson")))
        write(8, "New")
        got = follower.take(8)
        assert [r["event_type"] for r in got] == [f"New{i}" for i in range(8)]
        assert [r["seq"] for r in got] == list(range(4, 12))
        assert len(list(log_dir.glob("segment-*.ndjson"))) > segments
    finally:
        code, stderr = follower.stop()
    assert code == 0, stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_follow_ends_cleanly_on_a_signal_while_polling_busily(tmp_path: Path,
                                                              sig: signal.Signals) -> None:
    """A signal that lands mid-read (1 ms polls, records arriving) is a normal end: exit 0,
    no traceback (``asyncio.run``'s own Ctrl-C handling used to log InvalidStateError)."""
    log = tmp_path / "events.ndjson"
    append(log, 3, "Seed")
    for round_ in range(6):
        follower = Follower(log, interval="1ms")
        try:
            follower.take(3)
            append(log, 3, f"Round{round_}-")
            follower.take(3)
            time.sleep(0.01 * round_)
        finally:
            code, stderr = follower.stop(sig)
        assert code == 0, stderr
        assert "Traceback" not in stderr
        assert "Error" not in stderr
