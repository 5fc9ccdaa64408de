"""papyra.filelog compaction: the block-skipping cut agrees with the line-by-line walk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from papyra import codec
from papyra.filelog import compaction
from papyra.records import GapRecord
from papyra.retention import RetentionPolicy
from papyra.testing import sample_records


class _SlowRule:
    """max_records as a third-party rule: forces the generic line-by-line walk."""

    name = "max_records"
    description = "same as the built-in, but not it"

    def validate(self, value: object) -> object:
        return value

    def start(self, value: object, *, now: float) -> object:
        from papyra.retention import MaxRecordsRule

        return MaxRecordsRule().start(value, now=now)


@pytest.mark.parametrize("keep", [1, 2, 5, 99, 250, 299, 300, 301, 1000])
@pytest.mark.parametrize("torn", [False, True])
def test_the_fast_cut_equals_the_generic_walk(tmp_path: Path, keep: int, torn: bool) -> None:
    recs = sample_records(300)
    lines = [codec.encode(GapRecord(seq=1, through=10, reason="retention"))]
    lines += [codec.encode(r, i + 11) for i, r in enumerate(recs[:150])]
    lines += [codec.encode(GapRecord(seq=161, through=161, reason="repair"))]
    lines += [codec.encode(r, i + 162) for i, r in enumerate(recs[150:])]
    data = b"".join(lines) + (b'{"v":1,"se' if torn else b"")
    path = tmp_path / "log"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        import papyra.filelog.framing as framing

        old = framing.BLOCK
        framing.BLOCK = 4096  # many blocks even for a small file
        try:
            fast = compaction.find_cut(fd, len(data), RetentionPolicy(max_records=keep))
        finally:
            framing.BLOCK = old
        slow = compaction.find_cut(fd, len(data), RetentionPolicy(max_records=keep),
                                   {"max_records": _SlowRule()})  # type: ignore[dict-item]
    finally:
        os.close(fd)
    assert fast == slow


def test_gap_lines_are_counted_by_their_head_not_by_payload_text() -> None:
    from papyra.records import EventRecord

    tricky = EventRecord(system_id="s", actor_address="s:1", event_type="E",
                         payload={"kind": "gap", "note": '"kind":"gap"'})
    data = (codec.encode(GapRecord(seq=1, through=4, reason="retention"))
            + codec.encode(tricky, 5) + codec.encode(tricky, 6))
    assert compaction._gap_lines(data) == 1
    assert compaction._gap_lines(codec.encode(tricky, 5)) == 0
