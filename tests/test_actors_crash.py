"""An application killed with SIGKILL mid-run: the next start checks the store first.

fail_on_anomaly either finds the store clean or refuses to start without changing a byte;
recover always gets a clean store and appends after the records that survived.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import papyra
import pytest
from papyra import ActorSystem, AnomaliesFoundError

WORKLOAD = r"""
import asyncio, sys
from papyra import Actor, ActorSystem

class Noop(Actor):
    async def receive(self, message):
        return message

async def main():
    async with ActorSystem(system_id="crash", persistence=sys.argv[1],
                           persistence_options={"fsync": "never"}, startup="recover") as s:
        while True:
            refs = [s.spawn(Noop) for _ in range(50)]
            for r in refs:
                await r.ask("x")
                await r.stop()

asyncio.run(main())
"""


def _json_installed() -> bool:
    try:
        papyra.get_plugin_manager().backend_for_scheme("json")
    except papyra.UnknownBackendError:
        return False
    return True


def _run_and_kill(url: str, log: Path, min_bytes: int) -> None:
    """Run the workload until the log holds ``min_bytes``, then SIGKILL it."""
    proc = subprocess.Popen([sys.executable, "-c", WORKLOAD, url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while (not log.exists() or log.stat().st_size < min_bytes):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the workload wrote too little"
            time.sleep(0.01)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        if proc.stderr:
            proc.stderr.close()


@pytest.mark.parametrize("round_", range(2))
async def test_a_killed_actor_application_restarts_on_a_checked_store(
    tmp_path: Path, round_: int
) -> None:
    if not _json_installed():
        pytest.skip("the json backend plugin is not installed")
    log = tmp_path / "papyra.ndjson"
    url = f"json://{log}"
    await asyncio.to_thread(_run_and_kill, url, log, 20_000 * (round_ + 1))

    digest = hashlib.sha256(log.read_bytes()).hexdigest()
    try:
        async with ActorSystem(system_id="crash", persistence=url,
                               startup="fail_on_anomaly") as system:
            system.spawn(papyra.Actor)
    except AnomaliesFoundError:
        assert hashlib.sha256(log.read_bytes()).hexdigest() == digest
        async with ActorSystem(system_id="crash", persistence=url,
                               startup={"mode": "recover"}) as system:
            system.spawn(papyra.Actor)
    async with papyra.open_store(url) as store:
        report = await store.scan()
        rows = await store.read_all(kinds="event")
    assert report.clean, report.anomalies
    assert rows[-1].event_type == "ActorStopped"
    assert rows[-1].actor_address == "crash:1"
