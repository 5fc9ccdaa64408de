"""From papyra 0.3.0 files to format v1.

- :func:`migrate_file` rewrites a log holding legacy lines as v1, in place and crash-atomically
  (:class:`~papyra.filelog.rewrite.Rewrite`): the same records in the same order, each keeping
  its id (a legacy line's id is derived from its bytes), seqs numbered 1, 2, ... in file order.
  v1 records already in the file (written by a newer papyra after the upgrade) are renumbered
  with them; gap records keep the number of seqs they stand for. Records appended by a live
  writer during the copy are renumbered under the lock as well.
- :func:`legacy_set_files` lists a 0.3.0 rotating set oldest first (``path.N`` … ``path.1``,
  ``path``) and :func:`iter_legacy_records` reads records from such files in order, for
  ``papyra persistence migrate --to URL``.

The caller checks first (with a scan) that the only findings are legacy records: migration
refuses a file with damaged lines and changes nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs

from papyra import codec
from papyra.errors import AnomaliesFoundError, StoreNotFoundError
from papyra.filelog import framing
from papyra.filelog.fsio import open_read
from papyra.filelog.locking import LogLock
from papyra.filelog.rewrite import Rewrite
from papyra.filelog.writer import stamp
from papyra.records import GapRecord, Record, StoredRecord


@attrs.frozen(kw_only=True)
class MigrationResult:
    records: int
    legacy_records: int
    changed: bool
    last_seq: int


class _Renumber:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.next_seq = 1
        self.records = 0
        self.legacy = 0

    def line(self, offset: int, raw: bytes, line_no: int) -> bytes:
        try:
            rec = codec.decode(raw)
        except codec.DecodeError as exc:
            raise AnomaliesFoundError(
                f"{self.path} line {line_no} (offset {offset}) is damaged ({exc.kind}: "
                f"{exc.detail}); run `papyra persistence recover` before migrating") from None
        if isinstance(rec, GapRecord):
            out = codec.encode(attrs.evolve(rec, seq=self.next_seq,
                                            through=self.next_seq + rec.count - 1))
            self.next_seq += rec.count
            return out
        if rec.legacy:
            self.legacy += 1
            rec = attrs.evolve(rec, legacy=False)
        self.records += 1
        out = codec.encode(rec, self.next_seq)
        self.next_seq += 1
        return out

    def feed(self, rw: Rewrite, fd: int, start: int, end: int) -> None:
        line_no = 0
        for off, _size, raw, terminated in framing.iter_lines(fd, start, end):
            line_no += 1
            if isinstance(raw, framing.Overlong):
                raise AnomaliesFoundError(f"{self.path} has an over-long line at offset {off}; "
                                          "run recover before migrating")
            if not raw and not terminated:
                continue
            rw.write(self.line(off, raw, line_no))


def needs_migration(path: Path) -> bool:
    """Whether the file holds any legacy line (a full read; stops at the first one)."""
    fd = open_read(path)
    try:
        for _off, _size, raw, _t in framing.iter_lines(fd):
            if isinstance(raw, bytes) and raw and framing.check_line(raw)[0] == framing.LEGACY:
                return True
        return False
    finally:
        os.close(fd)


def migrate_file(path: Path, lock: LogLock) -> MigrationResult:
    """Rewrite ``path`` as v1 (see module doc). A v1-only file is left untouched."""
    if not needs_migration(path):
        return MigrationResult(records=0, legacy_records=0, changed=False, last_seq=0)
    renumber = _Renumber(path)
    with Rewrite(path, lock, purpose="migrate") as rw:
        renumber.feed(rw, rw.source_fd, 0, rw.source_end)

        def catch_up(rewrite: Rewrite, start: int, end: int) -> None:
            renumber.feed(rewrite, rewrite.source_fd, start, end)

        rw.commit(catch_up)
    return MigrationResult(records=renumber.records, legacy_records=renumber.legacy,
                           changed=True, last_seq=renumber.next_seq - 1)


_ROTATED = re.compile(r"^(?P<base>.+)\.(?P<n>\d+)$")


def legacy_set_files(path: Path) -> list[Path]:
    """A 0.3.0 rotating set oldest first: ``path.N`` … ``path.1``, then ``path`` (if present)."""
    numbered: list[tuple[int, Path]] = []
    try:
        names = os.listdir(path.parent)
    except FileNotFoundError:
        raise StoreNotFoundError(f"no legacy log at {path}") from None
    for name in names:
        m = _ROTATED.match(name)
        if m and m.group("base") == path.name:
            numbered.append((int(m.group("n")), path.parent / name))
    files = [p for _n, p in sorted(numbered, reverse=True)]
    if path.exists():
        files.append(path)
    if not files:
        raise StoreNotFoundError(f"no legacy log at {path} (nor {path.name}.1, ...)")
    return files


def iter_legacy_records(files: Sequence[Path]) -> Iterator[StoredRecord]:
    """Records of ``files`` in order (legacy and v1 lines alike; damaged lines raise)."""
    for path in files:
        fd = open_read(path)
        try:
            line_no = 0
            for off, _size, raw, terminated in framing.iter_lines(fd):
                line_no += 1
                if isinstance(raw, framing.Overlong) or (not raw and not terminated):
                    if isinstance(raw, framing.Overlong):
                        raise AnomaliesFoundError(f"{path} line {line_no} is over-long")
                    continue
                try:
                    yield codec.decode(raw)
                except codec.DecodeError as exc:
                    raise AnomaliesFoundError(
                        f"{path} line {line_no} (offset {off}) is damaged ({exc.kind}: "
                        f"{exc.detail}); recover it before migrating") from None
        finally:
            os.close(fd)


def as_new_record(rec: Record) -> Record:
    """A legacy record as a record to append elsewhere (no seq, not legacy)."""
    return attrs.evolve(stamp(rec, 1), seq=None, legacy=False)
