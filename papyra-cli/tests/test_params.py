from __future__ import annotations

import pytest
from papyra_cli.params import parse_duration, parse_size, parse_time


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90.0), ("30s", 30.0), ("15m", 900.0), ("12h", 43200.0), ("7d", 604800.0),
    ("2w", 1209600.0), ("1h30m", 5400.0), ("1.5h", 5400.0), ("250ms", 0.25),
])
def test_durations_accept_the_units_operators_type(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "7x", "-5", "d", "abc"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(("text", "size"), [
    ("1024", 1024), ("10GiB", 10 * 1024**3), ("10GB", 10 * 1000**3), ("500MB", 500_000_000),
    ("1.5KiB", 1536), ("64 KiB", 65536), ("7b", 7), ("2tib", 2 * 1024**4),
])
def test_sizes_accept_decimal_and_binary_units(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_points_in_time_accept_epoch_iso_and_relative_forms() -> None:
    assert parse_time("1763771234.5") == 1763771234.5
    assert parse_time("2026-01-31T12:00:00Z") == 1769860800.0
    assert parse_time("2026-01-31T13:00:00+01:00") == 1769860800.0
    assert parse_time("2026-01-31T12:00:00") == 1769860800.0
    assert parse_time("15m", now=10_000.0) == 9_100.0
    assert parse_time("2h ago", now=10_000.0) == 2_800.0
    with pytest.raises(ValueError, match="invalid time"):
        parse_time("yesterday-ish")
