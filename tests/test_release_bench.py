"""bench/run's reporting, exercised on saved results (no benchmark is run here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RESULTS = {
    "date": "2026-01-01 00:00 UTC", "quick": True,
    "machine": {"cpu": "Test CPU", "cores": 2, "memory": "1.0 GiB", "disk": "ext4", "python":
                "3.11.7", "kernel": "Linux 6", "load_average": [0.5, 0.4, 0.3]},
    "rows": [
        {"bench": "raw", "metric": "append, fsync per 100-line batch", "ours": None,
         "raw": 1000.0, "papyra03": None, "unit": "records/s", "ratio_raw": None,
         "ratio_03": None, "peak_rss_kib": 51200},
        {"bench": "json", "metric": "append, batches of 100", "ours": 500.0, "raw": 1000.0,
         "papyra03": 50.0, "unit": "records/s", "ratio_raw": 0.5, "ratio_03": 10.0,
         "peak_rss_kib": 40960},
    ],
    "scripts": {"bench_raw.py": {"exit": 0}, "bench_json.py": {"exit": 0}},
}


def test_bench_run_reports_saved_results_with_ratios_and_missing_areas(tmp_path: Path) -> None:
    saved = tmp_path / "latest.json"
    saved.write_text(json.dumps(RESULTS))
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run"), "--from-results",
                           str(saved)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Test CPU, 2 cores" in proc.stdout
    line = next(x for x in proc.stdout.splitlines() if "json: append" in x)
    assert "0.50x" in line
    assert "10.00x" in line
    assert "40 MiB" in line


def test_bench_run_fails_when_a_saved_benchmark_had_failed(tmp_path: Path) -> None:
    broken = {**RESULTS, "scripts": {"bench_json.py": {"exit": 1}}}
    saved = tmp_path / "latest.json"
    saved.write_text(json.dumps(broken))
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run"), "--from-results",
                           str(saved)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
