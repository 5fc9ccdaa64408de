"""Every command line of the operator runbooks (production checklist, CI/CD guide, backups and
recovery guide), typed exactly as there, against a store configured by ``papyra.toml`` — on a
clean log and on a torn one. Run in-process (real files, real installed plugins) to stay fast;
test_cli_workflows.py runs the same workflows through the installed console script."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cli_subprocess import FIXTURES, ROOT, clean_env, cli

# (command line, exit code on a clean store, exit code on a torn store)
RUNBOOK = [
    ("papyra persistence scan", 0, 1),
    ("papyra persistence startup-check --mode fail_on_anomaly", 0, 1),
    ("papyra persistence startup-check", 0, 1),
    ("papyra doctor run --mode fail_on_anomaly", 0, 1),
    ("papyra doctor run --mode FAIL_ON_ANOMALY", 0, 1),
    ("papyra inspect events", 0, 0),
    ("papyra persistence compact", 0, 0),
    ("papyra persistence recover --path events.ndjson", 0, 0),
    ("papyra persistence recover --mode quarantine --quarantine-dir ./quarantine "
     "--path events.ndjson", 0, 0),
    ("papyra persistence startup-check --mode recover --recovery-mode repair", 0, 0),
    ("papyra doctor run --mode RECOVER --recovery-mode REPAIR", 0, 0),
    ("papyra doctor run --mode RECOVER --recovery-mode QUARANTINE --quarantine-dir {qdir}", 0, 0),
]

FROM_REPOSITORY_ROOT = [
    "papyra persistence scan --path tests/fixtures/v1/events.ndjson",
    "papyra persistence scan --path tests/fixtures/events.ndjson",
    "papyra persistence startup-check --mode FAIL_ON_ANOMALY --path tests/fixtures/events.ndjson",
]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "papyra.toml").write_text(
        '[store]\nurl = "json://events.ndjson"\n'
        "[retention]\nmax_records = 10_000_000\nmax_age_seconds = 315360000\n"
        '[startup]\nmode = "fail_on_anomaly"\n[recovery]\nmode = "repair"\n')
    return tmp_path


def install(site: Path, fixture: str) -> None:
    source = FIXTURES / fixture / "events.ndjson" if fixture else FIXTURES / "events.ndjson"
    shutil.copyfile(source, site / "events.ndjson")
    (site / "events.ndjson").chmod(0o600)


@pytest.mark.parametrize(("line", "clean_code", "torn_code"), RUNBOOK,
                         ids=[r[0] for r in RUNBOOK])
def test_runbook_command_works_as_typed(site: Path, line: str, clean_code: int,
                                        torn_code: int) -> None:
    args = line.format(qdir=site / "var" / "quarantine").split()[1:]
    for fixture, expected in (("", clean_code), ("torn", torn_code)):
        install(site, fixture)
        proc = cli(*args, cwd=site, env=clean_env())
        assert proc.returncode == expected, (fixture, proc.stderr)
        assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("line", FROM_REPOSITORY_ROOT)
def test_ci_gates_run_from_the_repository_root(line: str) -> None:
    proc = cli(*line.split()[1:], cwd=ROOT, env=clean_env())
    assert proc.returncode == 0, proc.stderr


def test_backup_verification_scans_a_copied_backup(tmp_path: Path) -> None:
    backup = tmp_path / "backups" / "papyra-2026-01-01"
    backup.mkdir(parents=True)
    shutil.copyfile(FIXTURES / "torn" / "events.ndjson", backup / "events.ndjson")
    proc = cli("persistence", "scan", "--path", "backups/papyra-2026-01-01/events.ndjson",
               cwd=tmp_path, env=clean_env())
    assert proc.returncode == 1  # "anomalies: the backup is still usable after recovery"
    assert cli("persistence", "recover", "--path", "backups/papyra-2026-01-01/events.ndjson",
               cwd=tmp_path, env=clean_env()).returncode == 0
