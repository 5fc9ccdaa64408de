"""What every store does the same way (the Store base class), and the --json shapes of reports."""

from __future__ import annotations

from typing import Any

import papyra
import pytest
from papyra.backends.memory import MemoryStore
from papyra.errors import ConfigError, RecordTooLargeError, UnsupportedOperationError
from papyra.plugin_manager import PluginManager
from papyra.reports import Anomaly, CompactionReport, RecoveryReport, ScanReport
from papyra.retention import RetentionPolicy
from papyra.store import Capabilities
from papyra.testing import sample_records


async def test_open_store_builds_a_memory_store_from_its_url() -> None:
    pm = PluginManager(entry_points=False)
    async with pm.open_store("memory://?system_id=orders") as store:
        assert isinstance(store, MemoryStore)
        assert store.system_id == "orders"
        assert store.plugins is pm
        rec = await store.record_event(actor_address="orders:1", event_type="ActorStarted")
        assert rec.system_id == "orders"
    assert store.closed


async def test_a_negative_limit_is_a_configuration_error() -> None:
    store = MemoryStore()
    with pytest.raises(ConfigError):
        store.read(limit=-1)
    with pytest.raises(ValueError, match="unknown record kind"):
        store.read(kinds="metric")


async def test_appends_reads_scans_and_compactions_are_counted() -> None:
    store = MemoryStore()
    records = sample_records(6)
    await store.append(records[:4])
    await store.append(records[4:])
    assert store.metrics.records_written.snapshot() == {"event": 2, "audit": 2,
                                                       "dead_letter": 2}
    assert store.metrics.append_batches == 2
    assert store.metrics.bytes_written.total() == (await store.scan()).bytes
    assert [r async for r in store.read(kinds="audit")]
    assert store.metrics.records_read.snapshot() == {"audit": 2}
    await store.compact(RetentionPolicy(max_records=2))
    snap = store.metrics.snapshot()
    assert snap["scans"] == 1
    assert snap["compactions"] == 1
    assert snap["records_dropped"] == {"retention": 4}
    assert snap["reclaimed_bytes"] > 0


async def test_a_failed_append_counts_a_write_error() -> None:
    store = MemoryStore(max_record_bytes=50)
    with pytest.raises(RecordTooLargeError):
        await store.append(sample_records(1))
    assert store.metrics.write_errors == 1
    assert store.metrics.append_batches == 0


async def test_stores_without_a_capability_refuse_the_operation_by_type() -> None:
    class ReadOnly(MemoryStore):
        capabilities = Capabilities(recover=False, compact=False, durable=False)

    store = ReadOnly()
    with pytest.raises(UnsupportedOperationError) as info:
        await store.compact()
    assert info.value.exit_code == 2
    with pytest.raises(UnsupportedOperationError):
        await store.recover("repair")


async def test_a_closed_store_is_not_healthy_and_says_why() -> None:
    store = MemoryStore()
    assert (await store.health()).ok
    await store.aclose()
    health = await store.health()
    assert (health.ok, health.reason) == (False, "closed")


def test_store_urls_are_redacted_in_the_store_itself() -> None:
    store = MemoryStore("memory://?token=s3cret")
    assert "s3cret" not in store.url
    assert "s3cret" not in repr(store)


def test_scan_reports_serialise_to_the_documented_shape() -> None:
    report = ScanReport(store="json:///x", backend="json", records=3, bytes=600, anomalies=[
        Anomaly(kind="checksum_mismatch", file="x", offset=10, length=20, line=2),
        Anomaly(kind="foreign_file", severity="warning", file="notes.txt"),
    ])
    shape = report.to_dict()
    assert {"store", "backend", "clean", "records", "legacy_records", "bytes",
            "anomalies"} <= set(shape)
    assert shape["clean"] is False
    assert set(shape["anomalies"][0]) == {"kind", "severity", "file", "stream", "offset",
                                          "length", "line", "entry_id", "detail"}
    assert shape["anomalies"][1]["stream"] is None
    assert report.counts_by_kind() == {"checksum_mismatch": 1, "foreign_file": 1}
    assert report.errors[0].describe() == "checksum_mismatch x line 2 (offset 10, 20 bytes)"


def test_a_warning_alone_leaves_a_store_clean() -> None:
    report = ScanReport(store="s", backend="b", anomalies=[
        Anomaly(kind="foreign_file", severity="warning", file="notes.txt")])
    assert report.clean


def test_unknown_anomaly_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        Anomaly(kind="bad_vibes")


def test_recovery_and_compaction_reports_serialise_to_the_documented_shape() -> None:
    before = ScanReport(store="s", backend="b", anomalies=[Anomaly(kind="truncated_tail")])
    dry = RecoveryReport(store="s", mode="repair", dry_run=True, actions=[], before=before,
                         after=None)
    shape: dict[str, Any] = dry.to_dict()
    assert {"store", "mode", "dry_run", "actions", "before", "after", "clean"} <= set(shape)
    assert shape["after"] is None
    assert shape["clean"] is False
    compaction = CompactionReport(store="s", backend="b", before_records=10, after_records=4,
                                  before_bytes=1000, after_bytes=400)
    assert compaction.to_dict() | {"first_kept_seq": None} == {
        "store": "s", "backend": "b", "dry_run": False, "before_records": 10,
        "after_records": 4, "before_bytes": 1000, "after_bytes": 400, "removed_records": 6,
        "reclaimed_bytes": 600, "first_kept_seq": None,
    }


def test_every_typed_error_carries_its_exit_code() -> None:
    codes = {
        papyra.AnomaliesFoundError: 1, papyra.ConfigError: 2, papyra.UnknownBackendError: 2,
        papyra.PluginError: 2, papyra.RecordTooLargeError: 2, papyra.RecoveryIncompleteError: 3,
        papyra.StoreUnavailableError: 4, papyra.StoreNotFoundError: 4,
        papyra.LockTimeoutError: 4, papyra.StoreClosedError: 4, papyra.StoreUnhealthyError: 4,
        papyra.PapyraError: 5,
    }
    assert {cls: cls.exit_code for cls in codes} == codes
