"""Retention rules: fed newest-first, the first refusal ends the kept suffix."""

from __future__ import annotations

import math
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from papyra import hookimpl
from papyra.backends.memory import MemoryStore
from papyra.errors import ConfigError
from papyra.plugin_manager import PluginManager
from papyra.records import EventRecord
from papyra.retention import RetentionPolicy, RetentionWalk, builtin_rules, kept_suffix_start

NOW = 1_000_000.0


def newest_first(
    n: int, *, size: int = 100, age_step: float = 10.0
) -> list[tuple[int, float, int]]:
    """(seq, timestamp, size) for seqs n..1; seq k is (n - k) * age_step seconds old."""
    return [(s, NOW - (n - s) * age_step, size) for s in range(n, 0, -1)]


def test_an_empty_policy_keeps_everything() -> None:
    policy = RetentionPolicy()
    assert policy.unbounded
    assert RetentionWalk(policy).unbounded
    assert kept_suffix_start(newest_first(5), policy) is None


def test_max_records_keeps_the_newest_n() -> None:
    assert kept_suffix_start(newest_first(10), RetentionPolicy(max_records=3)) == 8
    assert kept_suffix_start(newest_first(3), RetentionPolicy(max_records=3)) is None


def test_max_records_zero_keeps_nothing() -> None:
    assert kept_suffix_start(newest_first(4), RetentionPolicy(max_records=0)) == 5


def test_max_age_keeps_records_at_most_that_old() -> None:
    policy = RetentionPolicy(max_age_seconds=25)
    assert kept_suffix_start(newest_first(10), policy, now=NOW) == 8  # ages 0, 10, 20


def test_a_record_exactly_at_the_age_limit_is_kept() -> None:
    policy = RetentionPolicy(max_age_seconds=20)
    assert kept_suffix_start(newest_first(10), policy, now=NOW) == 8


def test_max_total_bytes_counts_bytes_newest_first_and_the_budget_is_inclusive() -> None:
    assert kept_suffix_start(newest_first(10, size=100), RetentionPolicy(max_total_bytes=300)) == 8
    assert kept_suffix_start(newest_first(10, size=100), RetentionPolicy(max_total_bytes=299)) == 9


def test_the_strictest_rule_wins() -> None:
    policy = RetentionPolicy(max_records=5, max_age_seconds=25, max_total_bytes=10_000)
    assert kept_suffix_start(newest_first(10), policy, now=NOW) == 8
    policy = RetentionPolicy(max_records=2, max_age_seconds=1000)
    assert kept_suffix_start(newest_first(10), policy, now=NOW) == 9


def test_an_old_record_ends_the_suffix_even_if_older_seqs_look_newer() -> None:
    walk = RetentionWalk(RetentionPolicy(max_age_seconds=60), now=NOW)
    decisions = [walk.keep(s, ts, 1) for s, ts in [(4, NOW), (3, NOW - 100), (2, NOW), (1, NOW)]]
    assert decisions == [True, False, False, False]
    assert walk.done


@given(st.lists(st.integers(min_value=1, max_value=500), max_size=40),
       st.integers(min_value=0, max_value=40), st.integers(min_value=0, max_value=5000))
@settings(deadline=None)
def test_retention_always_keeps_a_suffix(sizes: list[int], max_records: int,
                                         max_bytes: int) -> None:
    n = len(sizes)
    entries = [(s, NOW, sizes[s - 1]) for s in range(n, 0, -1)]
    start = kept_suffix_start(entries, RetentionPolicy(max_records=max_records,
                                                       max_total_bytes=max_bytes))
    kept = list(range(start if start is not None else 1, n + 1))
    assert len(kept) <= max_records
    assert sum(sizes[s - 1] for s in kept) <= max_bytes
    if start is not None and start > 1:
        # one more record would break a rule
        wider = [start - 1, *kept]
        assert len(wider) > max_records or sum(sizes[s - 1] for s in wider) > max_bytes


@pytest.mark.parametrize("bad", [
    {"max_records": -1}, {"max_records": True}, {"max_records": 1.5},
    {"max_total_bytes": -3}, {"max_total_bytes": "10GiB"},
    {"max_age_seconds": -1}, {"max_age_seconds": math.nan}, {"max_age_seconds": False},
])
def test_invalid_options_are_configuration_errors(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        RetentionPolicy(**bad)
    assert info.value.exit_code == 2


def test_from_mapping_keeps_third_party_options_apart() -> None:
    policy = RetentionPolicy.from_mapping({"max_records": 5, "keep_kinds": ["audit"]})
    assert policy.max_records == 5
    assert policy.extra == {"keep_kinds": ["audit"]}
    assert policy.options() == {"max_records": 5, "keep_kinds": ["audit"]}
    assert policy.to_dict()["max_age_seconds"] is None


def test_merged_lets_the_other_policy_win_where_it_is_set() -> None:
    base = RetentionPolicy(max_records=10, max_age_seconds=60)
    merged = base.merged(RetentionPolicy(max_records=3))
    assert (merged.max_records, merged.max_age_seconds) == (3, 60)
    assert base.merged(None) is base


def test_an_unknown_rule_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="unknown retention rule 'keep_kinds'"):
        RetentionWalk(RetentionPolicy(extra={"keep_kinds": 1}))


def test_builtin_rules_describe_themselves() -> None:
    rules = builtin_rules()
    assert all(rule.description for rule in rules.values())
    with pytest.raises(ConfigError):
        rules["max_records"].validate(-1)


@attrs.frozen
class MaxPerMinuteRule:
    """A third-party rule: keep records while no minute holds more than N of them."""

    name: str = "max_per_minute"
    description: str = "keep the newest records while no minute holds more than N"

    def validate(self, value: Any) -> int:
        if not isinstance(value, int) or value < 1:
            raise ConfigError("max_per_minute must be a positive integer")
        return value

    def start(self, value: Any, *, now: float) -> Any:
        counts: dict[int, int] = {}

        class Counter:
            def keep(self, seq: int | None, timestamp: float, size: int) -> bool:
                minute = int(timestamp // 60)
                counts[minute] = counts.get(minute, 0) + 1
                return counts[minute] <= value

        return Counter()


async def test_a_retention_rule_from_a_plugin_applies_to_reads_and_compaction() -> None:
    class Plugin:
        @hookimpl
        def papyra_register_retention_rules(self, register: Any) -> None:
            register(MaxPerMinuteRule())

    pm = PluginManager(entry_points=False)
    pm.register(Plugin(), "per-minute")
    store = MemoryStore(plugins=pm, retention={"max_per_minute": 2})
    base = 60_000.0
    stamps = [base + 1, base + 61, base + 62, base + 63, base + 121]
    await store.append([EventRecord(system_id="s", actor_address="a", event_type=f"E{i}",
                                    timestamp=t) for i, t in enumerate(stamps)])
    kept = [r.event_type async for r in store.read()]  # type: ignore[union-attr]
    assert kept == ["E2", "E3", "E4"]
    report = await store.compact()
    assert report.removed_records == 2
    assert pm.infos["per-minute"].components == ["retention_rule:max_per_minute"]
