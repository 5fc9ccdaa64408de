"""What papyra measures (DESIGN §8): every metric's name, type, labels and help, and how its
values are read from the in-process counters. Exporters render this one catalogue; nothing here
knows a wire format, so Prometheus, JSON and OpenTelemetry always agree.

Names follow Prometheus practice: ``papyra_`` prefix, base units (``_seconds``, ``_bytes``),
counters end in ``_total``. Labels are bounded: ``backend``, ``kind``, ``mode``,
``anomaly_kind``, ``reason``, ``version`` — never actor ids, paths, URLs or keys.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import attrs

from papyra.metrics import StoreMetrics

if TYPE_CHECKING:
    from papyra.exporters.probe import StoreGauges

MetricType: TypeAlias = Literal["counter", "gauge", "histogram"]
Aggregate: TypeAlias = Literal["sum", "min", "max"]
Source: TypeAlias = Literal["store", "store_gauges", "scan", "system", "process"]
LabelValues: TypeAlias = tuple[str, ...]


@attrs.frozen(kw_only=True)
class MetricSpec:
    """One metric: its Prometheus name, type, labels, unit and meaning."""

    name: str
    type: MetricType
    help: str
    source: Source
    labels: tuple[str, ...] = ()
    unit: str = ""
    """Base unit carried in the name (``seconds`` or ``bytes``); empty for counts."""
    count_unit: str = "1"
    """UCUM unit for OpenTelemetry when ``unit`` is empty, e.g. ``{record}``."""
    aggregate: Aggregate = "sum"
    """How values from several stores/systems with the same labels are combined."""
    keys: tuple[str, ...] = ()
    """For ``system`` metrics: the snapshot keys this metric is read from (first found wins)."""

    @property
    def base_name(self) -> str:
        """The name without the ``_total`` suffix (what prometheus-client's families take)."""
        return self.name.removesuffix("_total") if self.type == "counter" else self.name

    @property
    def otel_name(self) -> str:
        """OpenTelemetry instrument name: ``papyra.store.append_duration`` (unit kept apart)."""
        base = self.base_name
        if self.unit:
            base = base.removesuffix("_" + self.unit)
        head, _, rest = base.partition("_")
        area, _, tail = rest.partition("_")
        return f"{head}.{area}.{tail}" if tail else f"{head}.{area}"

    @property
    def otel_unit(self) -> str:
        return {"seconds": "s", "bytes": "By"}.get(self.unit, self.count_unit)


def _store(name: str, type_: MetricType, help_: str, *labels: str, unit: str = "",
           count_unit: str = "{record}") -> MetricSpec:
    return MetricSpec(name=name, type=type_, help=help_, source="store",
                      labels=("backend", *labels), unit=unit, count_unit=count_unit)


def _gauge(name: str, help_: str, *labels: str, unit: str = "", aggregate: Aggregate = "sum",
           count_unit: str = "1") -> MetricSpec:
    return MetricSpec(name=name, type="gauge", help=help_, source="store_gauges",
                      labels=("backend", *labels), unit=unit, aggregate=aggregate,
                      count_unit=count_unit)


def _system(name: str, type_: MetricType, help_: str, *keys: str, count_unit: str = "1",
            labels: tuple[str, ...] = (), aggregate: Aggregate = "sum") -> MetricSpec:
    return MetricSpec(name=name, type=type_, help=help_, source="system", keys=keys,
                      labels=labels, count_unit=count_unit, aggregate=aggregate)


SPECS: tuple[MetricSpec, ...] = (
    MetricSpec(name="papyra_build_info", type="gauge", source="process", labels=("version",),
               help="Always 1; the papyra-core version as a label.", aggregate="max"),
    # ---------------------------------------------------------------- store counters
    _store("papyra_store_records_written_total", "counter",
           "Records appended (durable per the fsync policy), by record kind.", "kind"),
    _store("papyra_store_written_bytes_total", "counter",
           "Bytes appended, by record kind (encoded line size including the newline).",
           "kind", unit="bytes"),
    _store("papyra_store_append_batches_total", "counter",
           "Successful append batches.", count_unit="{batch}"),
    _store("papyra_store_append_duration_seconds", "histogram",
           "Time to append one batch, from the call until it is durable.", unit="seconds"),
    _store("papyra_store_append_batch_records", "histogram",
           "Records per append batch."),
    _store("papyra_store_fsyncs_total", "counter", "fsync calls made by the backend.",
           count_unit="{fsync}"),
    _store("papyra_store_write_errors_total", "counter",
           "Append batches that failed (nothing of a failed batch is reported as written).",
           count_unit="{error}"),
    _store("papyra_store_records_read_total", "counter", "Records returned by reads, by kind.",
           "kind"),
    _store("papyra_store_scans_total", "counter", "Scans run.", count_unit="{scan}"),
    _store("papyra_store_anomalies_total", "counter",
           "Anomalies found by scans, by anomaly kind (a store scanned twice counts twice).",
           "anomaly_kind", count_unit="{anomaly}"),
    _store("papyra_store_recoveries_total", "counter", "Recoveries run, by recovery mode.",
           "mode", count_unit="{recovery}"),
    _store("papyra_store_records_dropped_total", "counter",
           "Records removed from the store, by reason (retention, repair).", "reason"),
    _store("papyra_store_records_quarantined_total", "counter",
           "Records copied into quarantine by recovery."),
    _store("papyra_store_compactions_total", "counter", "Compactions run (dry runs excluded).",
           count_unit="{compaction}"),
    _store("papyra_store_reclaimed_bytes_total", "counter", "Bytes reclaimed by compaction.",
           unit="bytes"),
    MetricSpec(name="papyra_store_healthy", type="gauge", source="store", labels=("backend",),
               help="1 while the store is open and usable, 0 once closed or after a "
                    "durability failure (e.g. a failed fsync).", aggregate="min"),
    MetricSpec(name="papyra_store_last_scan_clean", type="gauge", source="scan",
               labels=("backend",), aggregate="min",
               help="1 if the last scan found no error-severity anomaly, else 0 "
                    "(absent until a scan ran)."),
    MetricSpec(name="papyra_store_last_scan_timestamp_seconds", type="gauge", source="scan",
               labels=("backend",), unit="seconds", aggregate="min",
               help="Unix time of the last scan (absent until a scan ran)."),
    MetricSpec(name="papyra_store_last_scan_anomalies", type="gauge", source="scan",
               labels=("backend", "anomaly_kind"), count_unit="{anomaly}",
               help="Anomalies the last scan found, by anomaly kind."),
    # ---------------------------------------------------------------- store contents
    _gauge("papyra_store_up", "1 if the store could be reached by the last probe, else 0.",
           aggregate="min"),
    _gauge("papyra_store_records", "Records in the store (gap records excluded), by kind.",
           "kind", count_unit="{record}"),
    _gauge("papyra_store_size_bytes", "Bytes the store occupies (on disk for file backends).",
           unit="bytes"),
    _gauge("papyra_store_oldest_record_age_seconds",
           "Age of the oldest record kept (now minus its timestamp).", unit="seconds",
           aggregate="max"),
    _gauge("papyra_store_newest_record_age_seconds",
           "Age of the newest record (how long nothing was written).", unit="seconds",
           aggregate="max"),
    _gauge("papyra_store_last_seq", "The highest seq in the log.", aggregate="max"),
    # ---------------------------------------------------------------- actor system
    _system("papyra_actors", "gauge", "Actors alive in the system.",
            "actors_alive", count_unit="{actor}"),
    _system("papyra_actor_spawned_total", "counter", "Actors spawned.",
            "actors_spawned", count_unit="{actor}"),
    _system("papyra_actor_stopped_total", "counter", "Actors stopped.",
            "actors_stopped", count_unit="{actor}"),
    _system("papyra_actor_messages_total", "counter", "Messages processed by actors.",
            "messages_processed", count_unit="{message}"),
    _system("papyra_actor_failures_total", "counter",
            "Messages whose handler raised (each one goes to supervision).",
            "messages_failed", count_unit="{message}"),
    _system("papyra_actor_restarts_total", "counter", "Actor restarts by supervision.",
            "restarts", count_unit="{restart}"),
    _system("papyra_actor_dead_letters_total", "counter",
            "Messages nobody could take (dead letters).", "dead_letters",
            count_unit="{message}"),
    _system("papyra_actor_ask_timeouts_total", "counter",
            "``ask`` calls that timed out (the target actor is not harmed).",
            "asks_timed_out", count_unit="{ask}"),
    _system("papyra_actor_hook_errors_total", "counter",
            "Observer hooks that raised (logged and ignored).", "hook_errors",
            count_unit="{error}"),
    _system("papyra_actor_mailbox_messages", "gauge",
            "Messages waiting in all mailboxes (sum over actors).", "mailbox_depth",
            count_unit="{message}"),
    _system("papyra_persistence_queue_records", "gauge",
            "Records waiting in the system's persistence queue.", "persistence_queue_depth",
            count_unit="{record}"),
    _system("papyra_persistence_records_enqueued_total", "counter",
            "Records the system queued for persistence, by kind.", "records_enqueued",
            labels=("kind",), count_unit="{record}"),
    _system("papyra_persistence_records_written_total", "counter",
            "Records the system's persistence queue wrote to the store, by kind.",
            "records_written", labels=("kind",), count_unit="{record}"),
    _system("papyra_persistence_records_dropped_total", "counter",
            "Records the system could not persist, by reason "
            "(overflow, failed, closed, invalid).", "records_dropped", labels=("reason",),
            count_unit="{record}"),
    _system("papyra_persistence_batches_total", "counter",
            "Batches the persistence queue appended.", "persist_batches",
            count_unit="{batch}"),
    _system("papyra_persistence_errors_total", "counter",
            "Failed append attempts of the persistence queue (each retry counts; the actors "
            "keep running).", "persist_failures", count_unit="{error}"),
)

SPECS_BY_NAME: dict[str, MetricSpec] = {s.name: s for s in SPECS}


@attrs.frozen(kw_only=True)
class HistogramValue:
    """Cumulative buckets (finite upper bounds), count and sum."""

    buckets: tuple[tuple[float, int], ...]
    count: int
    sum: float

    @classmethod
    def from_snapshot(cls, snap: Mapping[str, Any]) -> HistogramValue:
        return cls(buckets=tuple((float(b), int(n)) for b, n in snap["buckets"]),
                   count=int(snap["count"]), sum=float(snap["sum"]))

    def merged(self, other: HistogramValue) -> HistogramValue:
        bounds = sorted({b for b, _ in self.buckets} | {b for b, _ in other.buckets})
        return HistogramValue(
            buckets=tuple((b, _cumulative_at(self, b) + _cumulative_at(other, b))
                          for b in bounds),
            count=self.count + other.count,
            sum=self.sum + other.sum,
        )


def _cumulative_at(h: HistogramValue, bound: float) -> int:
    best = 0
    for b, n in h.buckets:
        if b <= bound:
            best = n
    return best


@attrs.define
class MetricFamily:
    """The values of one metric at one instant, by label values."""

    spec: MetricSpec
    values: dict[LabelValues, float] = attrs.field(factory=dict)
    histograms: dict[LabelValues, HistogramValue] = attrs.field(factory=dict)

    def add(self, labels: LabelValues, value: float) -> None:
        if labels not in self.values:
            self.values[labels] = value
            return
        old = self.values[labels]
        agg = self.spec.aggregate
        self.values[labels] = old + value if agg == "sum" else (
            min(old, value) if agg == "min" else max(old, value))

    def add_histogram(self, labels: LabelValues, value: HistogramValue) -> None:
        old = self.histograms.get(labels)
        self.histograms[labels] = value if old is None else old.merged(value)

    def samples(self) -> Iterator[tuple[dict[str, str], float]]:
        for labels, value in sorted(self.values.items()):
            yield dict(zip(self.spec.labels, labels, strict=True)), value

    def histogram_samples(self) -> Iterator[tuple[dict[str, str], HistogramValue]]:
        for labels, value in sorted(self.histograms.items()):
            yield dict(zip(self.spec.labels, labels, strict=True)), value


# ---------------------------------------------------------------------------- sources


@attrs.define
class Sources:
    """What a set of exporter sources resolves to at one instant."""

    stores: list[tuple[StoreMetrics, Any]] = attrs.field(factory=list)
    gauges: list[StoreGauges] = attrs.field(factory=list)
    systems: list[Mapping[str, Any]] = attrs.field(factory=list)


def resolve(sources: Iterable[Any]) -> Sources:
    """Sort sources into store counters, store gauges and actor-system snapshots.

    A source is a :class:`papyra.Store`, a :class:`~papyra.metrics.StoreMetrics`, a
    :class:`~papyra.exporters.probe.StoreGauges`, an ``ActorSystem`` (anything whose
    ``metrics`` has a ``snapshot()``; its store is included too), or a zero-argument callable
    returning one of these or None (resolved on every collection, e.g. ``lambda:
    app.state.papyra``). The same object reached twice is counted once.
    """
    from papyra.exporters.probe import StoreGauges

    out = Sources()
    seen: set[int] = set()

    def visit(src: Any) -> None:
        if src is None or id(src) in seen:
            return
        if isinstance(src, StoreGauges):
            seen.add(id(src))
            out.gauges.append(src)
            return
        if isinstance(src, StoreMetrics):
            seen.add(id(src))
            out.stores.append((src, None))
            return
        metrics = getattr(src, "metrics", None)
        if isinstance(metrics, StoreMetrics):
            seen.add(id(src))
            if id(metrics) not in seen:
                seen.add(id(metrics))
                out.stores.append((metrics, src))
            return
        if metrics is not None and callable(getattr(metrics, "snapshot", None)):
            seen.add(id(src))
            snap = metrics.snapshot()
            if isinstance(snap, Mapping):
                out.systems.append(snap)
            for attr in ("store", "persistence"):
                store = getattr(src, attr, None)
                if store is not None and isinstance(getattr(store, "metrics", None),
                                                    StoreMetrics):
                    visit(store)
                    break
            return
        if callable(src):
            visit(src())
            return
        raise TypeError(f"not a papyra metrics source: {type(src).__name__}")

    for s in sources:
        visit(s)
    return out


def collect(sources: Iterable[Any], *, now: float | None = None) -> list[MetricFamily]:
    """Every metric family the sources provide, in catalogue order."""
    resolved = resolve(sources)
    now = time.time() if now is None else now
    families = {spec.name: MetricFamily(spec) for spec in SPECS}
    _process(families)
    for metrics, store in resolved.stores:
        _store_counters(families, metrics, store)
    for gauges in resolved.gauges:
        _store_gauges(families, gauges, now)
    for snap in resolved.systems:
        _system_values(families, snap)
    wanted: set[Source] = {"process"}
    if resolved.stores:
        wanted.add("store")
    if resolved.gauges:
        wanted.add("store_gauges")
    if resolved.stores or resolved.gauges:
        wanted.add("scan")
    if resolved.systems:
        wanted.add("system")
    return [f for f in families.values() if f.spec.source in wanted]


def _process(families: dict[str, MetricFamily]) -> None:
    from papyra import __version__

    families["papyra_build_info"].add((__version__,), 1)


def _store_counters(families: dict[str, MetricFamily], m: StoreMetrics, store: Any) -> None:
    snap = m.snapshot()
    b = m.backend

    def labelled(name: str, key: str) -> None:
        for label, value in snap[key].items():
            families[name].add((b, str(label)), value)

    def plain(name: str, key: str) -> None:
        families[name].add((b,), snap[key])

    labelled("papyra_store_records_written_total", "records_written")
    labelled("papyra_store_written_bytes_total", "bytes_written")
    plain("papyra_store_append_batches_total", "append_batches")
    families["papyra_store_append_duration_seconds"].add_histogram(
        (b,), HistogramValue.from_snapshot(snap["append_latency_seconds"]))
    families["papyra_store_append_batch_records"].add_histogram(
        (b,), HistogramValue.from_snapshot(snap["append_batch_size"]))
    plain("papyra_store_fsyncs_total", "fsyncs")
    plain("papyra_store_write_errors_total", "write_errors")
    labelled("papyra_store_records_read_total", "records_read")
    plain("papyra_store_scans_total", "scans")
    labelled("papyra_store_anomalies_total", "anomalies")
    labelled("papyra_store_recoveries_total", "recoveries")
    labelled("papyra_store_records_dropped_total", "records_dropped")
    plain("papyra_store_records_quarantined_total", "records_quarantined")
    plain("papyra_store_compactions_total", "compactions")
    plain("papyra_store_reclaimed_bytes_total", "reclaimed_bytes")
    if store is not None:
        healthy = not getattr(store, "closed", False) and getattr(
            store, "unhealthy_reason", None) is None
        families["papyra_store_healthy"].add((b,), 1 if healthy else 0)
    last = m.last_scan
    if last is not None:
        families["papyra_store_last_scan_clean"].add((b,), 1 if last.clean else 0)
        families["papyra_store_last_scan_timestamp_seconds"].add((b,), last.timestamp)
        for kind, n in last.anomalies.items():
            families["papyra_store_last_scan_anomalies"].add((b, kind), n)


def _store_gauges(families: dict[str, MetricFamily], g: StoreGauges, now: float) -> None:
    b = g.backend
    families["papyra_store_up"].add((b,), 1 if g.up else 0)
    if g.stats is not None:
        for kind, n in g.stats.records_by_kind.items():
            families["papyra_store_records"].add((b, kind), n)
        if g.stats.bytes is not None:
            families["papyra_store_size_bytes"].add((b,), g.stats.bytes)
        if g.stats.oldest_timestamp is not None:
            families["papyra_store_oldest_record_age_seconds"].add(
                (b,), max(0.0, now - g.stats.oldest_timestamp))
        if g.stats.newest_timestamp is not None:
            families["papyra_store_newest_record_age_seconds"].add(
                (b,), max(0.0, now - g.stats.newest_timestamp))
        if g.stats.last_seq is not None:
            families["papyra_store_last_seq"].add((b,), g.stats.last_seq)
    if g.scan is not None:
        families["papyra_store_last_scan_clean"].add((b,), 1 if g.scan.clean else 0)
        families["papyra_store_last_scan_timestamp_seconds"].add((b,), g.scan.timestamp)
        for kind, n in g.scan.anomalies.items():
            families["papyra_store_last_scan_anomalies"].add((b, kind), n)


def flatten_snapshot(snap: Mapping[str, Any]) -> dict[str, float]:
    """Numeric leaves of a (nested) snapshot: ``{"persistence": {"dropped": 2}}`` gives
    ``persistence_dropped``; a mapping of numbers also gives its sum under its own key, so
    per-actor mailbox depths add up to one unlabelled value (actor ids never become labels)."""
    flat: dict[str, float] = {}

    def walk(prefix: str, value: Any) -> float | None:
        if isinstance(value, bool):
            return float(value)
        if isinstance(value, int | float):
            v = float(value)
            return v if math.isfinite(v) else None
        if isinstance(value, Mapping):
            total = 0.0
            numeric = False
            for k, v in value.items():
                key = f"{prefix}_{k}" if prefix else str(k)
                leaf = walk(key, v)
                if leaf is not None:
                    flat.setdefault(key, leaf)
                    total += leaf
                    numeric = True
            return total if numeric and prefix else None
        return None

    for k, v in snap.items():
        leaf = walk(str(k), v)
        if leaf is not None:
            flat[str(k)] = leaf
    return flat


def _system_values(families: dict[str, MetricFamily], snap: Mapping[str, Any]) -> None:
    flat = flatten_snapshot(snap)
    for spec in SPECS:
        if spec.source != "system":
            continue
        for key in spec.keys:
            if spec.labels:
                value = snap.get(key)
                if isinstance(value, Mapping):
                    for label, n in value.items():
                        if isinstance(n, int | float) and not isinstance(n, bool):
                            families[spec.name].add((str(label),), float(n))
                    break
            elif key in flat:
                families[spec.name].add((), flat[key])
                break


def describe_all() -> list[MetricSpec]:
    """The whole catalogue (for docs and ``describe()``)."""
    return list(SPECS)

