"""docs/metrics.md documents every metric papyra exports, with its type and labels."""

from __future__ import annotations

from pathlib import Path

from papyra.exporters.catalog import SPECS

DOC = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"


def test_every_metric_is_documented_with_its_type_and_labels() -> None:
    text = DOC.read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip().strip("`"): line for line in text.splitlines()
            if line.startswith("| `papyra_")}
    for spec in SPECS:
        assert spec.name in rows, f"{spec.name} is missing from docs/metrics.md"
        row = rows[spec.name]
        assert f"| {spec.type} |" in row, spec.name
        assert spec.help in row, f"the help text of {spec.name} changed: update its row"
        for label in spec.labels:
            assert f"`{label}`" in row, (spec.name, label)
    assert set(rows) == {s.name for s in SPECS}
