"""Carrying out a recovery plan on a rotation directory (DESIGN §6), under the writer lock.

Per action:

- ``quarantine``: the byte range is copied verbatim into the quarantine directory (file created
  ``O_EXCL|O_NOFOLLOW``) with a JSON sidecar (source, offset, length, kind, sha256).
- ``delete`` / ``move``: papyra's leftovers (temp files, stray locks, superseded or empty
  sealed segments) are deleted, or moved into the quarantine directory.
- ``drop`` / ``truncate`` / ``newline`` and in-segment ``gap``: the segment is rewritten
  crash-atomically (filelog's :class:`~papyra.filelog.rewrite.Rewrite`) without the bad lines;
  one gap record stands for each removed run whose seqs are really missing. A run at the end of
  a sealed segment is explained up to the next segment's first seq.
- ``gap`` between segments (a missing middle segment): a new segment named by the first missing
  seq holding one gap record, created without ever overwriting anything.

Every step is atomic; killed at any point and run again, repair converges to the same bytes.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import attrs
from papyra.errors import ConfigError, StoreUnavailableError
from papyra.filelog import framing
from papyra.filelog import repair as filelog_repair
from papyra.filelog.fsio import FILE_MODE, fsync_dir, open_read, write_all
from papyra.filelog.locking import LogLock
from papyra.filelog.rewrite import Rewrite
from papyra.reports import RecoveryAction

from papyra_backend_rotation.crashpoints import crashpoint
from papyra_backend_rotation.layout import is_inside, parse_segment_name, segment_name, temp_name
from papyra_backend_rotation.scan import ScanResult

_GAP_RANGE = re.compile(r"seqs (\d+)\.\.(\d+)")


def check_quarantine_dir(qdir: Path, directory: Path) -> Path:
    """Refuse a quarantine directory inside the rotation directory or that is a symlink."""
    if is_inside(qdir, directory) or is_inside(qdir.parent, directory):
        raise ConfigError(
            f"quarantine directory {qdir} is inside the rotation directory {directory}, where "
            "it would be scanned as data; choose a directory outside it"
        )
    if qdir.is_symlink():
        raise ConfigError(f"quarantine directory {qdir} is a symlink; refusing to follow it")
    return qdir


@attrs.define
class _FilePlan:
    drops: dict[int, str | None] = attrs.field(factory=dict)
    truncate_at: int | None = None
    newline: bool = False
    rewrite: bool = False


def execute(
    directory: Path, lock: LogLock, scan: ScanResult, plan: list[RecoveryAction],
    qdir: Path | None,
) -> list[RecoveryAction]:
    """Carry out ``plan`` (made from ``scan``, taken under ``lock``, which the caller holds)."""
    done: list[RecoveryAction] = []
    files: dict[str, _FilePlan] = {}
    quarantined: dict[tuple[str, int], str] = {}
    new_gap_segments: list[tuple[int, int]] = []

    def fp(name: str | None) -> _FilePlan:
        return files.setdefault(name or "", _FilePlan())

    if qdir is not None and any(a.action in ("quarantine", "move") for a in plan):
        filelog_repair.prepare_quarantine_dir(qdir, forbidden=directory)
    for a in plan:
        if a.action == "quarantine" and a.file and a.offset is not None and qdir is not None:
            fd = open_read(Path(a.file))
            try:
                target = filelog_repair.quarantine_range(
                    qdir, Path(a.file), fd, a.offset, a.length or 0,
                    kind=a.anomaly.kind if a.anomaly is not None else "unknown",
                    line=a.anomaly.line if a.anomaly is not None else None,
                    detail=a.anomaly.detail if a.anomaly is not None else "")
            finally:
                os.close(fd)
            quarantined[(a.file, a.offset)] = str(target)
            done.append(attrs.evolve(a, to=str(target)))
    for a in plan:
        if a.action in ("delete", "move") and a.file:
            path = Path(a.file)
            if not path.exists():
                continue
            moved = filelog_repair.remove_leftover(
                path, to=qdir if a.action == "move" else None)
            done.append(attrs.evolve(a, to=str(moved) if moved else a.to))
            crashpoint("repair.after_leftover")
        elif a.action == "drop" and a.file and a.offset is not None:
            p = fp(a.file)
            p.drops[a.offset] = quarantined.get((a.file, a.offset))
            p.rewrite = True
            done.append(a)
        elif a.action == "truncate" and a.file and a.offset is not None:
            p = fp(a.file)
            p.truncate_at = a.offset
            p.drops[a.offset] = quarantined.get((a.file, a.offset))
            p.rewrite = True
            done.append(a)
        elif a.action == "newline" and a.file:
            fp(a.file).rewrite = True
            done.append(a)
        elif a.action == "gap" and a.file:
            m = _GAP_RANGE.search(a.detail or (a.anomaly.detail if a.anomaly else ""))
            name_seq = parse_segment_name(Path(a.file).name)
            if m is None or name_seq is None:
                continue
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo < name_seq:
                new_gap_segments.append((lo, min(hi, name_seq - 1)))
            if hi >= name_seq:
                fp(a.file).rewrite = True
    with contextlib.suppress(OSError):
        fsync_dir(directory)

    segs = list(scan.segments)
    for i, ss in enumerate(segs):
        todo = files.get(str(ss.segment.path))
        if todo is None or not todo.rewrite:
            continue
        prev_last = segs[i - 1].last_seq if i > 0 else None
        start = ss.segment.first_seq
        if prev_last is not None:
            start = max(start, prev_last + 1)
        end_limit = segs[i + 1].segment.first_seq - 1 if i + 1 < len(segs) else None
        done.extend(_rewrite(ss.segment.path, lock, todo, start, end_limit))
        crashpoint("repair.after_rewrite")

    for lo, hi in new_gap_segments:
        target = directory / segment_name(lo)
        _create_new(target, _gap(lo, hi, target, 0.0, None))
        done.append(RecoveryAction(action="gap", file=str(target), offset=0, length=0,
                                   detail=f"gap record for missing seqs {lo}..{hi}"))
    return done


def _create_new(target: Path, data: bytes) -> None:
    """Create ``target`` with ``data`` atomically, never overwriting an existing file."""
    tmp = target.with_name(temp_name(target.name, "gap"))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 FILE_MODE)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, target)
    except FileExistsError:
        pass
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    fsync_dir(target.parent)


def _rewrite(
    path: Path, lock: LogLock, p: _FilePlan, start_expected: int, end_limit: int | None
) -> list[RecoveryAction]:
    added: list[RecoveryAction] = []
    rw = Rewrite(path, lock, purpose="repair")
    try:
        end = rw.source_end if p.truncate_at is None else p.truncate_at
        expected = start_expected
        run_open = False
        run_q: str | None = None
        last_ts = 0.0
        for off, _size, line, _term in framing.iter_lines(rw.source_fd, 0, end):
            if off in p.drops:
                run_open = True
                run_q = run_q or p.drops[off]
                continue
            if isinstance(line, framing.Overlong):
                continue  # only reachable when the plan did not list it: nothing to keep
            if not line:
                continue
            status, a, b, _info = framing.check_line(line)
            if status in (framing.VALID, framing.GAP) and a is not None:
                if a > expected:
                    rw.write(_gap(expected, a - 1, path, _timestamp(line), run_q))
                    added.append(RecoveryAction(
                        action="gap", file=str(path), offset=off, length=0,
                        detail=f"gap record for seqs {expected}..{a - 1}"))
                expected = max(expected, int(b) + 1)
            last_ts = _timestamp(line) or last_ts
            rw.write(line + b"\n")
            run_open = False
            run_q = None
        if run_open and end_limit is not None and expected <= end_limit:
            rw.write(_gap(expected, end_limit, path, last_ts, run_q))
            added.append(RecoveryAction(action="gap", file=str(path), offset=end, length=0,
                                        detail=f"gap record for seqs {expected}..{end_limit}"))
        # a truncate plan covers the tail; anything appended after the scan cannot exist
        # because the caller holds the lock
        rw.commit(catch_up=_refuse_catch_up)
    finally:
        rw.close()
    return added


def _gap(first: int, through: int, path: Path, timestamp: float, q: str | None) -> bytes:
    """A repair gap record with a deterministic id and timestamp (reruns give equal bytes)."""
    return filelog_repair._gap(first, through, source=path, timestamp=timestamp, quarantine=q)


def _timestamp(line: bytes) -> float:
    head = framing.quick_header(line)
    return head[2] if head is not None else 0.0


def _refuse_catch_up(rw: Rewrite, start: int, end: int) -> None:
    raise StoreUnavailableError(f"{rw.path} grew during repair although the lock was held")
