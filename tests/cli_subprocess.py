"""Running ``papyra`` as operators do (shared by the test_cli_* files).

:func:`papyra` runs the installed console script in a subprocess: the operator workflows use
it. :func:`cli` runs the same command in-process (real files, real installed plugins, only no
new interpreter): the follow-up checks use it, so the suite stays fast on a loaded machine.
Both return a :class:`subprocess.CompletedProcess`.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
PAPYRA = str(Path(sys.executable).parent / "papyra")

Proc = subprocess.CompletedProcess[str]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPYRA_")}
    env.update(extra)
    return env


def papyra(*args: str, cwd: Path | str | None = None, env: dict[str, str] | None = None,
           timeout: float = 120) -> Proc:
    """The installed ``papyra`` in a subprocess."""
    return subprocess.run([PAPYRA, *args], cwd=cwd, env=env or clean_env(), text=True,
                          capture_output=True, timeout=timeout, check=False)


def cli(*args: str, cwd: Path | str | None = None, env: dict[str, str] | None = None) -> Proc:
    """The same command in-process (``papyra_cli.main.build_cli`` with the installed plugins)."""
    from papyra_cli.main import build_cli

    wanted = env or clean_env()
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(wanted)
        with contextlib.chdir(cwd or os.getcwd()):
            result = CliRunner().invoke(build_cli(), list(args), prog_name="papyra",
                                        catch_exceptions=False)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return subprocess.CompletedProcess(["papyra", *args], result.exit_code, result.stdout,
                                       result.stderr)


def out_json(proc: Proc) -> Any:
    return json.loads(proc.stdout)


def ndjson(proc: Proc) -> list[dict[str, Any]]:
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def error_lines(proc: Proc) -> list[str]:
    assert "Traceback" not in proc.stderr, proc.stderr
    return [ln for ln in proc.stderr.splitlines() if ln.startswith("papyra: error:")]
