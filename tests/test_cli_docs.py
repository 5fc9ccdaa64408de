"""docs/cli/reference.md is generated from the click commands and must be current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_committed_cli_reference_matches_the_commands() -> None:
    spec = importlib.util.spec_from_file_location("gen_cli_docs",
                                                  ROOT / "scripts" / "gen_cli_docs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (ROOT / "docs" / "cli" / "reference.md").read_text(encoding="utf-8")
    assert committed == module.render(), "run: .venv/bin/python scripts/gen_cli_docs.py"
    for command in ("papyra persistence scan", "papyra persistence startup-check",
                    "papyra doctor run", "papyra inspect events", "papyra plugins"):
        assert f"`{command}`" in committed
