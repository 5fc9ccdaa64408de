"""``papyra metrics show`` in-process (CliRunner) on the shared test store."""

from __future__ import annotations

from cli_helpers import T0, Invoke, SharedStore, json_out, mixed_log, one_error_line


def test_show_json_gives_records_by_kind_bytes_ages_and_the_last_scan(
    papyra: Invoke, shared: SharedStore
) -> None:
    mixed_log(shared)
    result = papyra("metrics", "show", "--store", "shared://", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json_out(result)
    assert doc["records_by_kind"] == {"event": 5, "audit": 2, "dead_letter": 3}
    assert doc["records"] == 10
    assert (doc["first_seq"], doc["last_seq"]) == (1, 10)
    assert doc["oldest_timestamp"] == T0 + 1
    assert doc["newest_record_age_seconds"] >= 0
    assert doc["last_scan"] == {**doc["last_scan"], "clean": True, "anomalies": {}}
    assert doc["store"] == "shared://"
    assert "papyra_store_records" in doc["metrics"]


def test_show_reports_anomalies_as_a_gauge_and_still_exits_0(
    papyra: Invoke, shared: SharedStore
) -> None:
    mixed_log(shared)
    shared.damaged = True
    result = papyra("metrics", "show", "--store", "shared://", "--format", "prometheus")
    assert result.exit_code == 0
    assert 'papyra_store_last_scan_clean{backend="shared"} 0.0' in result.stdout
    assert ('papyra_store_last_scan_anomalies{anomaly_kind="truncated_tail",backend="shared"}'
            ' 1.0') in result.stdout
    table = papyra("metrics", "show", "--store", "shared://")
    assert "ANOMALIES: truncated_tail x1" in table.stdout


def test_show_without_scan_skips_it(papyra: Invoke, shared: SharedStore) -> None:
    mixed_log(shared)
    shared.damaged = True
    doc = json_out(papyra("metrics", "show", "--store", "shared://", "--json", "--no-scan"))
    assert doc["last_scan"] is None
    assert doc["records"] == 10


def test_show_on_a_missing_store_is_exit_4(papyra: Invoke, shared: SharedStore) -> None:
    shared.missing = True
    result = papyra("metrics", "show", "--store", "shared://", "--json")
    assert result.exit_code == 4
    one_error_line(result)


def test_show_on_a_failing_store_is_exit_4_without_a_traceback(
    papyra: Invoke, shared: SharedStore
) -> None:
    shared.explode = OSError(5, "Input/output error")
    result = papyra("metrics", "show", "--store", "shared://")
    assert result.exit_code == 4
    assert "Input/output error" in one_error_line(result)


def test_serve_without_a_store_is_a_usage_error(papyra: Invoke) -> None:
    result = papyra("metrics", "serve", "--port", "0")
    assert result.exit_code == 2
    one_error_line(result)
