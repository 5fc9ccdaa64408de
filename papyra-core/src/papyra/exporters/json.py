"""The ``json`` exporter: papyra's metrics as one JSON document (``papyra metrics show --json``,
``/metrics?format=json``).

Shape::

    {"timestamp": 1763771234.5,
     "metrics": {"papyra_store_records_written_total": {
         "type": "counter", "unit": "", "help": "...", "labels": ["backend", "kind"],
         "samples": [{"labels": {"backend": "json", "kind": "event"}, "value": 12}]}, ...}}

Histogram samples carry ``count``, ``sum`` and cumulative ``buckets``
(``[{"le": 0.001, "count": 3}, ..., {"le": "+Inf", "count": 9}]``).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from papyra.exporters.catalog import MetricFamily, collect


class JsonExporter:
    """Renders the catalogue for some sources as plain data."""

    name = "json"

    def __init__(self, *sources: Any) -> None:
        self.sources: list[Any] = list(sources)

    def add_source(self, source: Any) -> None:
        self.sources.append(source)

    def snapshot(self) -> dict[str, Any]:
        return to_dict(collect(self.sources))

    def dumps(self, *, indent: bool = False) -> bytes:
        option = orjson.OPT_INDENT_2 if indent else 0
        return orjson.dumps(self.snapshot(), option=option)


def family_to_dict(family: MetricFamily) -> dict[str, Any]:
    spec = family.spec
    samples: list[dict[str, Any]] = []
    if spec.type == "histogram":
        for labels, hist in family.histogram_samples():
            buckets: list[dict[str, Any]] = [{"le": b, "count": n} for b, n in hist.buckets]
            buckets.append({"le": "+Inf", "count": hist.count})
            samples.append({"labels": labels, "count": hist.count, "sum": hist.sum,
                            "buckets": buckets})
    else:
        for labels, value in family.samples():
            samples.append({"labels": labels, "value": _number(value)})
    return {"type": spec.type, "unit": spec.unit, "help": spec.help,
            "labels": list(spec.labels), "samples": samples}


def to_dict(families: list[MetricFamily], *, timestamp: float | None = None) -> dict[str, Any]:
    return {
        "timestamp": time.time() if timestamp is None else timestamp,
        "metrics": {f.spec.name: family_to_dict(f) for f in families},
    }


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value


def create(*sources: Any, **options: Any) -> JsonExporter:
    """Exporter factory registered under the name ``json``."""
    if options:
        from papyra.errors import ConfigError

        raise ConfigError(f"unknown option(s) for the json exporter: {sorted(options)}")
    return JsonExporter(*sources)
