"""Property test: any sequence of appends, compactions, reopens and disk-bound rotations
leaves a log that reads like a simple model (a list) and scans clean."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from papyra.errors import StoreNotFoundError
from papyra.records import GapRecord
from papyra.retention import RetentionPolicy
from papyra.testing import sample_records
from papyra_backend_rotation import RotationStore

Op = tuple[str, int]

ops_strategy = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 9)),
        st.tuples(st.just("compact"), st.integers(0, 30)),
        st.tuples(st.just("reopen"), st.just(0)),
    ),
    min_size=1, max_size=14,
)


async def run(directory: Path, ops: list[Op], segment_bytes: int, max_segments: int | None
              ) -> None:
    options = {"max_segment_bytes": segment_bytes, "max_segments": max_segments,
               "fsync": "never"}
    store = RotationStore(directory, **options)  # type: ignore[arg-type]
    model: list[str] = []
    appended = 0
    try:
        for op, arg in ops:
            if op == "append":
                recs = sample_records(arg, start=appended)
                stored = await store.append(recs)
                assert [r.seq for r in stored] == list(range(appended + 1, appended + arg + 1))
                appended += arg
                model.extend(r.id for r in recs)
            elif op == "compact":
                if not appended:  # no directory yet: a missing store (exit 4)
                    with pytest.raises(StoreNotFoundError):
                        await store.compact(RetentionPolicy(max_records=arg))
                    continue
                await store.compact(RetentionPolicy(max_records=arg))
                model = model[-arg:] if arg else []
            else:
                await store.aclose()
                store = RotationStore(directory, **options)  # type: ignore[arg-type]
            got = [r.id for r in await store.read_all()]
            if max_segments is None:
                assert got == model
            else:  # the disk bound may have retired a prefix: what is left is a suffix
                assert got == model[len(model) - len(got):]
            physical = await store.read_all(include_gaps=True, apply_retention=False)
            if physical:
                expected = physical[0].seq
                for r in physical:
                    assert r.seq == expected
                    expected = (r.through if isinstance(r, GapRecord) else r.seq or 0) + 1
                assert expected - 1 == appended
            if not appended:
                continue
            report = await store.scan()
            assert report.clean, [a.describe() for a in report.anomalies]
    finally:
        await store.aclose()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops_strategy, segment_bytes=st.integers(250, 2500),
       max_segments=st.one_of(st.none(), st.integers(2, 5)))
def test_any_history_of_operations_reads_like_the_model(
    ops: list[Op], segment_bytes: int, max_segments: int | None
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(Path(tmp) / "log", ops, segment_bytes, max_segments))
