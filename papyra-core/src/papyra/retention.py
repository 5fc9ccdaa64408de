"""Retention: which suffix of the log to keep.

A :class:`RetentionPolicy` names rule options (``max_records``, ``max_age_seconds``,
``max_total_bytes``, plus any option of a third-party rule). Each rule is a plugin
(``papyra_register_retention_rules``). A rule is fed the log newest-first, one data record at a
time, and says whether that record is still kept; the first record any rule refuses ends the kept
suffix, so retention never opens a hole in ``seq``. Reads apply this logically; only
``compact()`` deletes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import attrs

from papyra.errors import ConfigError


class RuleCounter(Protocol):
    """Per-evaluation state of one rule."""

    def keep(self, seq: int | None, timestamp: float, size: int) -> bool:
        """Fed newest-first. False means this record and everything older is retired."""


class RetentionRule(Protocol):
    """A retention rule plugin."""

    name: str
    description: str

    def validate(self, value: Any) -> Any:
        """Check and normalise the option's value; raise ConfigError when it is invalid."""

    def start(self, value: Any, *, now: float) -> RuleCounter:
        """Begin one newest-first walk."""


@attrs.frozen(kw_only=True)
class RetentionPolicy:
    """Keep the newest records. ``None`` everywhere means keep everything."""

    max_records: int | None = None
    max_age_seconds: float | None = None
    max_total_bytes: int | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict)
    """Options of third-party rules, by rule name."""

    def __attrs_post_init__(self) -> None:
        for name in ("max_records", "max_total_bytes"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 0):
                raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
        age = self.max_age_seconds
        if age is not None and (isinstance(age, bool) or not isinstance(age, int | float)
                                or age < 0 or age != age):
            raise ConfigError(f"max_age_seconds must be a non-negative number, got {age!r}")

    @property
    def unbounded(self) -> bool:
        return not self.options()

    def options(self) -> dict[str, Any]:
        """The rules in force, ``{rule_name: value}``."""
        out: dict[str, Any] = {}
        for name in ("max_records", "max_age_seconds", "max_total_bytes"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out.update({k: v for k, v in self.extra.items() if v is not None})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_records": self.max_records,
            "max_age_seconds": self.max_age_seconds,
            "max_total_bytes": self.max_total_bytes,
            **dict(self.extra),
        }

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RetentionPolicy:
        known = {k: data[k] for k in ("max_records", "max_age_seconds", "max_total_bytes")
                 if k in data}
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(**known, extra=extra)

    def merged(self, other: RetentionPolicy | None) -> RetentionPolicy:
        """``other``'s options win where set."""
        if other is None:
            return self
        return RetentionPolicy.from_mapping({**self.options(), **other.options()})


# --------------------------------------------------------------------------- built-in rules


@attrs.define
class _CountCounter:
    limit: int
    seen: int = 0

    def keep(self, seq: int | None, timestamp: float, size: int) -> bool:
        self.seen += 1
        return self.seen <= self.limit


@attrs.define
class _AgeCounter:
    cutoff: float

    def keep(self, seq: int | None, timestamp: float, size: int) -> bool:
        return timestamp >= self.cutoff


@attrs.define
class _BytesCounter:
    budget: int
    total: int = 0

    def keep(self, seq: int | None, timestamp: float, size: int) -> bool:
        self.total += size
        return self.total <= self.budget


def _non_negative_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
    return value


@attrs.frozen
class MaxRecordsRule:
    name: str = "max_records"
    description: str = "keep the newest N records"

    def validate(self, value: Any) -> int:
        return _non_negative_int(self.name, value)

    def start(self, value: Any, *, now: float) -> RuleCounter:
        return _CountCounter(int(value))


@attrs.frozen
class MaxAgeRule:
    name: str = "max_age_seconds"
    description: str = "keep records whose timestamp is at most this many seconds old"

    def validate(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"max_age_seconds must be a non-negative number, got {value!r}")
        return float(value)

    def start(self, value: Any, *, now: float) -> RuleCounter:
        return _AgeCounter(now - float(value))


@attrs.frozen
class MaxTotalBytesRule:
    name: str = "max_total_bytes"
    description: str = "keep the newest records whose bytes on disk add up to at most N"

    def validate(self, value: Any) -> int:
        return _non_negative_int(self.name, value)

    def start(self, value: Any, *, now: float) -> RuleCounter:
        return _BytesCounter(int(value))


BUILTIN_RULES: tuple[Any, ...] = (MaxRecordsRule(), MaxAgeRule(), MaxTotalBytesRule())


def builtin_rules() -> dict[str, RetentionRule]:
    return {r.name: r for r in BUILTIN_RULES}


class RetentionWalk:
    """One newest-first walk of the log under a policy.

    >>> walk = RetentionWalk(RetentionPolicy(max_records=2))
    >>> [walk.keep(s, 0.0, 10) for s in (3, 2, 1)]
    [True, True, False]
    """

    def __init__(
        self,
        policy: RetentionPolicy | None,
        rules: Mapping[str, RetentionRule] | None = None,
        *,
        now: float | None = None,
    ) -> None:
        rules = dict(builtin_rules() if rules is None else rules)
        ts = time.time() if now is None else now
        self._counters: list[RuleCounter] = []
        self.done = False
        for name, value in (policy.options() if policy is not None else {}).items():
            rule = rules.get(name)
            if rule is None:
                raise ConfigError(f"unknown retention rule {name!r}")
            self._counters.append(rule.start(rule.validate(value), now=ts))

    @property
    def unbounded(self) -> bool:
        return not self._counters

    def keep(self, seq: int | None, timestamp: float, size: int) -> bool:
        """Fed newest-first; once it says False it keeps saying False."""
        if self.done:
            return False
        for counter in self._counters:
            if not counter.keep(seq, timestamp, size):
                self.done = True
                return False
        return True


def kept_suffix_start(
    newest_first: Iterable[tuple[int, float, int]],
    policy: RetentionPolicy | None,
    rules: Mapping[str, RetentionRule] | None = None,
    *,
    now: float | None = None,
) -> int | None:
    """The seq of the oldest kept record, given ``(seq, timestamp, size)`` newest-first.

    Returns None when every record is kept, and ``last_seq + 1`` when none is.
    """
    walk = RetentionWalk(policy, rules, now=now)
    if walk.unbounded:
        return None
    oldest_kept: int | None = None
    newest: int | None = None
    for seq, ts, size in newest_first:
        if newest is None:
            newest = seq
        if not walk.keep(seq, ts, size):
            return oldest_kept if oldest_kept is not None else newest + 1
        oldest_kept = seq
    return None


RuleLookup = Callable[[], Mapping[str, RetentionRule]]
