"""When to start a new segment, and how much disk the directory may use (DESIGN §10).

- ``max_segment_bytes``: rotate when the active segment would pass this size. A single record
  larger than the limit still gets a segment of its own (never split, never refused here).
- ``max_segment_age_seconds``: rotate when the active segment's first record is older.
- ``max_segments`` / ``max_total_bytes``: the disk bound. At rotation, whole oldest *sealed*
  segments are deleted while the directory is over the bound; the active segment is never
  deleted. These deletions are retention drops (``records_dropped{reason="retention"}``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from papyra.errors import ConfigError

DEFAULT_MAX_SEGMENT_BYTES = 64 * 1024 * 1024


def _positive_int(name: str, value: Any, *, allow_none: bool = True) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return value


def _positive_number(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"{name} must be a positive number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0 \
            or value != value or value == float("inf"):
        raise ConfigError(f"{name} must be a positive number, got {value!r}")
    return float(value)


@attrs.frozen(kw_only=True)
class RotationPolicy:
    """Rotation and disk-bound settings of one rotation store."""

    max_segment_bytes: int = DEFAULT_MAX_SEGMENT_BYTES
    max_segment_age_seconds: float | None = None
    max_segments: int | None = None
    max_total_bytes: int | None = None

    def __attrs_post_init__(self) -> None:
        _positive_int("max_segment_bytes", self.max_segment_bytes, allow_none=False)
        _positive_number("max_segment_age_seconds", self.max_segment_age_seconds)
        _positive_int("max_segments", self.max_segments)
        _positive_int("max_total_bytes", self.max_total_bytes)
        if self.max_total_bytes is not None and self.max_total_bytes < self.max_segment_bytes:
            raise ConfigError(
                f"max_total_bytes ({self.max_total_bytes}) is smaller than max_segment_bytes "
                f"({self.max_segment_bytes}): the active segment alone could exceed the bound; "
                "lower max_segment_bytes too (a few segments' worth is a good bound)")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> RotationPolicy:
        """Build from store options or URL query values (strings accepted)."""
        seg = options.get("max_segment_bytes")
        return cls(
            max_segment_bytes=_positive_int("max_segment_bytes", seg)
            or DEFAULT_MAX_SEGMENT_BYTES,
            max_segment_age_seconds=_positive_number(
                "max_segment_age_seconds", options.get("max_segment_age_seconds")),
            max_segments=_positive_int("max_segments", options.get("max_segments")),
            max_total_bytes=_positive_int("max_total_bytes", options.get("max_total_bytes")),
        )

    @property
    def bounded(self) -> bool:
        return self.max_segments is not None or self.max_total_bytes is not None

    def should_rotate(
        self, *, active_size: int, incoming: int, active_first_timestamp: float | None,
        now: float,
    ) -> bool:
        """Whether the next line (``incoming`` bytes) goes into a new segment."""
        if active_size == 0:
            return False  # an empty segment takes any record, however large
        if active_size + incoming > self.max_segment_bytes:
            return True
        return (
            self.max_segment_age_seconds is not None
            and active_first_timestamp is not None
            and now - active_first_timestamp >= self.max_segment_age_seconds
        )

    def segments_to_delete(self, sealed_sizes: Sequence[int]) -> int:
        """How many of the oldest sealed segments to delete when a new segment starts.

        ``sealed_sizes`` oldest first. The new active segment counts as one segment and, for
        ``max_total_bytes``, as ``max_segment_bytes`` (what it may grow to), so the directory
        stays within the bound until the next rotation. The active segment is never deleted.
        """
        n = len(sealed_sizes)
        total = sum(sealed_sizes) + self.max_segment_bytes
        drop = 0
        while drop < n:
            over_count = self.max_segments is not None and n - drop + 1 > self.max_segments
            over_bytes = self.max_total_bytes is not None and total > self.max_total_bytes
            if not (over_count or over_bytes):
                break
            total -= sealed_sizes[drop]
            drop += 1
        return drop
