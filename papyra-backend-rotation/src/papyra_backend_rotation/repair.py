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
import errno
import hashlib
import json
import os
import re
import stat
from pathlib import Path

import attrs
from papyra import codec
from papyra.errors import ConfigError, StoreUnavailableError
from papyra.filelog import framing
from papyra.filelog.fsio import DIR_MODE, FILE_MODE, fsync_dir, open_read, unavailable, write_all
from papyra.filelog.locking import LogLock
from papyra.filelog.rewrite import Rewrite
from papyra.records import GapRecord
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


def _ensure_qdir(qdir: Path) -> None:
    try:
        os.makedirs(qdir, mode=DIR_MODE, exist_ok=True)
    except OSError as exc:
        raise unavailable(qdir, exc, "create quarantine directory") from None
    st = os.lstat(qdir)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"quarantine directory {qdir} is not a plain directory")


def _exclusive(path: Path) -> tuple[int, Path]:
    """Create ``path`` (or ``path.1``, ``path.2`` ... if taken) exclusively, 0600."""
    candidate = path
    n = 0
    while True:
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, FILE_MODE)
            return fd, candidate
        except FileExistsError:
            n += 1
            candidate = path.with_name(f"{path.name}.{n}")
        except OSError as exc:
            raise unavailable(candidate, exc, "create quarantine file") from None


def quarantine_range(src: Path, offset: int, length: int, kind: str, qdir: Path) -> Path:
    _ensure_qdir(qdir)
    fd_in = open_read(src)
    try:
        data = os.pread(fd_in, length, offset)
    finally:
        os.close(fd_in)
    fd, target = _exclusive(qdir / f"{src.name}.{offset:012d}.{kind}.bin")
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    side = {"source": str(src), "offset": offset, "length": len(data), "kind": kind,
            "sha256": hashlib.sha256(data).hexdigest()}
    sfd, _ = _exclusive(target.with_name(target.name + ".json"))
    try:
        write_all(sfd, json.dumps(side, indent=2).encode() + b"\n")
        os.fsync(sfd)
    finally:
        os.close(sfd)
    fsync_dir(qdir)
    return target


def move_to_quarantine(src: Path, qdir: Path) -> Path:
    _ensure_qdir(qdir)
    fd, target = _exclusive(qdir / src.name)
    os.close(fd)
    try:
        os.rename(src, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            with contextlib.suppress(OSError):
                target.unlink()
            raise unavailable(src, exc, "move") from None
        with open(src, "rb") as fin, open(target, "wb") as fout:
            while chunk := fin.read(1 << 20):
                fout.write(chunk)
            fout.flush()
            os.fsync(fout.fileno())
        os.unlink(src)
    fsync_dir(qdir)
    fsync_dir(src.parent)
    return target


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

    for a in plan:
        if a.action == "quarantine" and a.file and a.offset is not None and qdir is not None:
            kind = a.anomaly.kind if a.anomaly is not None else "damaged"
            target = quarantine_range(Path(a.file), a.offset, a.length or 0, kind, qdir)
            quarantined[(a.file, a.offset)] = str(target)
            done.append(attrs.evolve(a, to=str(target)))
    for a in plan:
        if a.action in ("delete", "move") and a.file:
            path = Path(a.file)
            if not path.exists():
                continue
            if a.action == "move" and qdir is not None:
                target = move_to_quarantine(path, qdir)
                done.append(attrs.evolve(a, to=str(target)))
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                done.append(a)
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
        gap = GapRecord(seq=lo, through=hi, reason="repair")
        _create_new(target, codec.encode(gap))
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
                    gap = GapRecord(seq=expected, through=a - 1, reason="repair",
                                    quarantine=run_q)
                    rw.write(codec.encode(gap))
                    added.append(RecoveryAction(
                        action="gap", file=str(path), offset=off, length=0,
                        detail=f"gap record for seqs {expected}..{a - 1}"))
                expected = max(expected, int(b) + 1)
            rw.write(line + b"\n")
            run_open = False
            run_q = None
        if run_open and end_limit is not None and expected <= end_limit:
            gap = GapRecord(seq=expected, through=end_limit, reason="repair", quarantine=run_q)
            rw.write(codec.encode(gap))
            added.append(RecoveryAction(action="gap", file=str(path), offset=end, length=0,
                                        detail=f"gap record for seqs {expected}..{end_limit}"))
        # a truncate plan covers the tail; anything appended after the scan cannot exist
        # because the caller holds the lock
        rw.commit(catch_up=_refuse_catch_up)
    finally:
        rw.close()
    return added


def _refuse_catch_up(rw: Rewrite, start: int, end: int) -> None:
    raise StoreUnavailableError(f"{rw.path} grew during repair although the lock was held")
