from __future__ import annotations

import pytest
from cli_helpers import T0, Invoke, SharedStore, json_out, mixed_log, ndjson_out, one_error_line


def test_inspect_events_prints_a_table_in_log_order(papyra: Invoke, shared: SharedStore) -> None:
    mixed_log(shared)
    result = papyra("inspect", "events", "--store", "shared://")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("SEQ")
    assert "ACTOR" in lines[0]
    assert [ln.split()[3] for ln in lines[1:]] == [
        "ActorStarted", "ActorStarted", "ActorCrashed", "ActorRestarted", "ActorStopped"]
    assert "SEQ" not in result.stderr  # the table is the result: stdout only


def test_inspect_events_json_is_ndjson_as_stored(papyra: Invoke, shared: SharedStore) -> None:
    mixed_log(shared)
    result = papyra("inspect", "events", "--store", "shared://", "--json")
    records = ndjson_out(result)
    assert [r["seq"] for r in records] == [1, 2, 4, 8, 10]
    assert all(r["kind"] == "event" and r["v"] == 1 and len(r["id"]) == 32 for r in records)
    assert records[0]["payload"] == {"n": 1}


def test_limit_selects_the_newest_in_log_order(papyra: Invoke, shared: SharedStore) -> None:
    mixed_log(shared)
    seqs = [r["seq"] for r in ndjson_out(
        papyra("inspect", "events", "--limit", "2", "--store", "shared://", "--json"))]
    assert seqs == [8, 10]
    newest_first = [r["seq"] for r in ndjson_out(
        papyra("inspect", "events", "--limit", "2", "--newest-first", "--store", "shared://",
               "--json"))]
    assert newest_first == [10, 8]


def test_filters_by_actor_and_type_with_globs(papyra: Invoke, shared: SharedStore) -> None:
    mixed_log(shared)
    by_actor = ndjson_out(papyra("inspect", "events", "--actor", "orders:2", "--limit", "2",
                                 "--store", "shared://", "--json"))
    assert [r["event_type"] for r in by_actor] == ["ActorCrashed", "ActorRestarted"]
    by_type = ndjson_out(papyra("inspect", "events", "--type", "Actor*art*", "--store",
                                "shared://", "--json"))
    assert [r["seq"] for r in by_type] == [1, 2, 8]
    reversed_ = ndjson_out(papyra("inspect", "events", "--type", "Actor*art*", "--newest-first",
                                  "--store", "shared://", "--json"))
    assert [r["seq"] for r in reversed_] == [8, 2, 1]
    none = papyra("inspect", "events", "--limit", "0", "--store", "shared://")
    assert "no event records match" in none.stderr


def test_since_and_until_accept_epoch_and_iso(papyra: Invoke, shared: SharedStore) -> None:
    mixed_log(shared)
    records = ndjson_out(papyra("inspect", "events", "--since", str(T0 + 2), "--until",
                                str(T0 + 8), "--store", "shared://", "--json"))
    assert [r["seq"] for r in records] == [2, 4, 8]
    iso = ndjson_out(papyra("inspect", "events", "--since", "2025-11-22T00:20:00Z",
                            "--store", "shared://", "--json"))
    assert len(iso) == 5
    recent = ndjson_out(papyra("inspect", "events", "--since", "15m", "--store", "shared://",
                               "--json"))
    assert recent == []


def test_a_bad_time_is_a_usage_error(papyra: Invoke) -> None:
    result = papyra("inspect", "events", "--since", "last tuesday", "--store", "shared://")
    assert result.exit_code == 2
    assert "invalid time" in one_error_line(result)


def test_dead_letters_filter_by_target(papyra: Invoke, shared: SharedStore) -> None:
    mixed_log(shared)
    result = papyra("inspect", "dead-letters", "--target", "orders:*", "--store", "shared://",
                    "--json")
    assert [r["seq"] for r in ndjson_out(result)] == [3, 6]
    no_target = ndjson_out(papyra("inspect", "dead-letters", "--target", "-",
                                  "--store", "shared://", "--json"))
    assert [r["message_type"] for r in no_target] == ["Ping"]
    table = papyra("inspect", "dead-letters", "--store", "shared://")
    assert "TARGET" in table.stdout.splitlines()[0]


def test_audits_are_listed(papyra: Invoke, shared: SharedStore) -> None:
    mixed_log(shared)
    assert [r["seq"] for r in ndjson_out(papyra("inspect", "audits", "--store", "shared://",
                                                "--json"))] == [5, 9]
    table = papyra("inspect", "audits", "--store", "shared://")
    assert "ALIVE" in table.stdout


def test_an_empty_selection_says_so(papyra: Invoke, shared: SharedStore) -> None:
    result = papyra("inspect", "audits", "--store", "shared://")
    assert result.exit_code == 0
    assert "no audit records match" in result.stderr


def test_follow_with_a_timeout_prints_the_newest_and_ends(papyra: Invoke,
                                                          shared: SharedStore) -> None:
    mixed_log(shared)
    result = papyra("inspect", "events", "--follow", "--interval", "50ms", "--timeout", "0.2s",
                    "--store", "shared://", "--json")
    assert result.exit_code == 0, result.stderr
    assert [r["seq"] for r in ndjson_out(result)] == [1, 2, 4, 8, 10]


def test_follow_cannot_print_newest_first(papyra: Invoke) -> None:
    result = papyra("inspect", "events", "--follow", "--newest-first", "--store", "shared://")
    assert result.exit_code == 2


@pytest.mark.parametrize("kind", ["events", "audits", "dead-letters", "summary"])
def test_inspect_of_a_missing_store_exits_4(papyra: Invoke, shared: SharedStore,
                                            kind: str) -> None:
    shared.missing = True
    assert papyra("inspect", kind, "--store", "shared://").exit_code == 4


def test_summary_counts_kinds_and_names_the_top_targets(papyra: Invoke,
                                                        shared: SharedStore) -> None:
    mixed_log(shared)
    result = papyra("inspect", "summary", "--store", "shared://", "--json")
    assert result.exit_code == 0, result.stderr
    data = json_out(result)
    assert data["records_by_kind"] == {"event": 5, "audit": 2, "dead_letter": 3}
    assert data["newest_audit"]["seq"] == 9
    assert data["top_dead_letter_targets"][0] == {"target": "orders:9", "count": 2}
    assert data["oldest_timestamp"] == T0 + 1
    assert data["newest_timestamp"] == T0 + 10
    assert data["bytes"] > 0
    human = papyra("inspect", "summary", "--store", "shared://")
    assert "newest audit:" in human.stdout
    assert "orders:9" in human.stdout
