"""A hypothesis state machine: the JSON backend behaves like a plain list of records."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from papyra.records import GapRecord
from papyra.retention import RetentionPolicy
from papyra.testing import sample_records
from papyra.urls import StoreURL
from papyra_backend_json import JsonStore, create


class JsonStoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="papyra-stateful-"))
        self.path = self.dir / "log.ndjson"
        self.loop = asyncio.new_event_loop()
        self.store = self._open()
        self.model: list[tuple[int, str]] = []  # (seq, id) of live records, log order
        self.next_seq = 1

    def _open(self) -> JsonStore:
        return create(StoreURL.parse(f"json://{self.path}"), fsync="never")

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    @rule(n=st.integers(1, 6))
    def append(self, n: int) -> None:
        stored = self.run(self.store.append(sample_records(n)))
        assert [r.seq for r in stored] == list(range(self.next_seq, self.next_seq + n))
        self.model += [(r.seq, r.id) for r in stored]
        self.next_seq += n

    @rule(k=st.integers(0, 8), newest_first=st.booleans())
    def read_newest(self, k: int, newest_first: bool) -> None:
        got = self.run(self.store.read_all(limit=k, newest_first=newest_first))
        want = self.model[-k:] if k else []
        if newest_first:
            want = want[::-1]
        assert [(r.seq, r.id) for r in got] == want

    @rule(after=st.integers(0, 40), k=st.none() | st.integers(1, 5))
    def page_forward(self, after: int, k: int | None) -> None:
        got = self.run(self.store.read_all(after_seq=after, limit=k))
        want = [m for m in self.model if m[0] > after]
        if k is not None:
            want = want[:k]
        assert [(r.seq, r.id) for r in got] == want

    @precondition(lambda self: self.path.exists())
    @rule(keep=st.integers(0, 6))
    def compact(self, keep: int) -> None:
        report = self.run(self.store.compact(RetentionPolicy(max_records=keep)))
        kept = self.model[-keep:] if keep else []
        assert report.after_records == len(kept)
        assert report.before_records == len(self.model)
        self.model = kept

    @rule()
    def reopen(self) -> None:
        self.run(self.store.aclose())
        self.store = self._open()

    @precondition(lambda self: self.path.exists())
    @rule()
    def repair_of_a_clean_log_changes_nothing(self) -> None:
        before = self.path.read_bytes()
        report = self.run(self.store.recover("repair"))
        assert report.actions == ()
        assert self.path.read_bytes() == before

    @invariant()
    def everything_reads_back_and_scans_clean(self) -> None:
        got = self.run(self.store.read_all())
        assert [(r.seq, r.id) for r in got] == self.model
        if self.path.exists():
            scan = self.run(self.store.scan())
            assert scan.clean, scan.anomalies
            assert scan.records == len(self.model)
            physical = self.run(self.store.read_all(include_gaps=True))
            seq = physical[0].seq if physical else None
            for rec in physical:  # seq is explainable from the first line to the last
                assert rec.seq == seq
                seq = (rec.through if isinstance(rec, GapRecord) else rec.seq or 0) + 1

    def teardown(self) -> None:
        self.run(self.store.aclose())
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)


JsonStoreMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=25,
                                              deadline=None)
TestJsonStoreBehavesLikeAList = JsonStoreMachine.TestCase
