"""Carrying out a recovery plan (from :func:`papyra.recovery.plan_repair`) on one log file.

- ``quarantine`` actions copy the byte range verbatim into the quarantine directory *before*
  the log changes: ``<log>.<offset>-<length>.<sha256[:16]>.bad`` plus a JSON sidecar
  ``….bad.json`` (source, offset, length, kind, line, detail, source checksum). Both are created
  ``O_EXCL|O_NOFOLLOW``; an identical file left by an interrupted run is reused, so a rerun
  converges. A symlinked quarantine directory is refused.
- ``drop`` and ``truncate`` remove byte ranges; one ``gap`` record (``"reason":"repair"``,
  deterministic id and timestamp) replaces each removed run whose neighbours show missing seqs,
  and ``gap`` actions fill seq gaps that no damage explains. ``newline`` ends a valid last record.
- A repair that only cuts or completes the tail is done in place (``ftruncate``/append + fsync,
  under the lock, after checking nothing was appended); anything else is one crash-atomic
  :class:`~papyra.filelog.rewrite.Rewrite` that keeps what writers append meanwhile.
- ``delete`` / ``move`` handle papyra's own leftovers (temp files of dead rewrites).

Every step is atomic, and the result is a pure function of the damaged bytes, so a run killed at
any point and started again ends with the same bytes. A segmented store calls
:func:`execute_plan` once per damaged segment with that segment's actions.
"""

from __future__ import annotations

import bisect
import errno
import hashlib
import itertools
import os
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path

import orjson

from papyra import codec
from papyra.errors import ConfigError, StoreUnavailableError
from papyra.filelog import framing
from papyra.filelog.fsio import (
    DIR_MODE,
    FILE_MODE,
    ensure_dir,
    file_identity,
    fsync_dir,
    open_read,
    unavailable,
    write_all,
)
from papyra.filelog.locking import LogLock
from papyra.filelog.rewrite import Rewrite
from papyra.records import GapRecord
from papyra.reports import RecoveryAction

_CHUNK = 1 << 20


# --------------------------------------------------------------------------- quarantine


def prepare_quarantine_dir(directory: Path, *, forbidden: Path | None = None) -> Path:
    """Check (and create, 0700) a quarantine directory; refuse a symlink or a data directory."""
    try:
        st = os.lstat(directory)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise unavailable(directory, exc, "use quarantine directory") from None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise ConfigError(
                f"quarantine directory {directory} is a symbolic link; refusing to write there"
            )
        if not stat.S_ISDIR(st.st_mode):
            raise ConfigError(f"quarantine directory {directory} exists and is not a directory")
    if forbidden is not None:
        real = Path(os.path.realpath(directory))
        data = Path(os.path.realpath(forbidden))
        if real == data or data in real.parents:
            raise ConfigError(
                f"quarantine directory {directory} is inside the data directory {forbidden}, "
                "where it would be scanned as data; choose another directory"
            )
    if st is None:
        ensure_dir(directory)
        os.chmod(directory, DIR_MODE)
    return directory


def _exclusive(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                   FILE_MODE)


def _same_content(path: Path, sha: str) -> bool:
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            return False
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(_CHUNK), b""):
                h.update(block)
    except OSError:
        return False
    return h.hexdigest() == sha


def _write_exclusive(path: Path, chunks: Sequence[bytes] | None, fd_src: int | None = None,
                     offset: int = 0, length: int = 0) -> None:
    fd = _exclusive(path)
    try:
        if chunks is not None:
            for c in chunks:
                write_all(fd, c)
        else:
            assert fd_src is not None
            pos, end = offset, offset + length
            while pos < end:
                data = os.pread(fd_src, min(_CHUNK, end - pos), pos)
                if not data:
                    break
                write_all(fd, data)
                pos += len(data)
        os.fsync(fd)
    finally:
        os.close(fd)


def quarantine_range(
    directory: Path, source: Path, fd: int, offset: int, length: int, *, kind: str,
    line: int | None = None, detail: str = "",
) -> Path:
    """Copy source bytes ``[offset, offset+length)`` into ``directory`` with a sidecar."""
    h = hashlib.sha256()
    pos, end = offset, offset + length
    while pos < end:
        data = os.pread(fd, min(_CHUNK, end - pos), pos)
        if not data:
            break
        h.update(data)
        pos += len(data)
    sha = h.hexdigest()
    base = f"{source.name}.{offset}-{length}.{sha[:16]}"
    sidecar = orjson.dumps({
        "source": str(source), "offset": offset, "length": length, "kind": kind, "line": line,
        "detail": detail, "source_checksum": f"sha256:{sha}",
    }, option=orjson.OPT_INDENT_2) + b"\n"
    for n in range(1000):
        name = base if n == 0 else f"{base}.{n}"
        target = directory / f"{name}.bad"
        side = directory / f"{name}.bad.json"
        try:
            _write_exclusive(target, None, fd, offset, length)
        except FileExistsError:
            if not _same_content(target, sha):
                continue
        except OSError as exc:
            raise unavailable(target, exc, "write quarantine file") from None
        try:
            _write_exclusive(side, [sidecar])
        except FileExistsError:
            if not _same_content(side, hashlib.sha256(sidecar).hexdigest()):
                continue
        except OSError as exc:
            raise unavailable(side, exc, "write quarantine sidecar") from None
        try:
            fsync_dir(directory)
        except OSError as exc:
            raise unavailable(directory, exc, "fsync quarantine directory") from None
        return target
    raise StoreUnavailableError(f"cannot find a free quarantine file name for {base}")


# --------------------------------------------------------------------------- leftovers


def remove_leftover(path: Path, *, to: Path | None) -> Path | None:
    """Delete a leftover file, or move it into ``to`` (a prepared quarantine directory)."""
    try:
        if to is None:
            os.unlink(path)
            fsync_dir(path.parent)
            return None
        target = to / path.name
        n = 0
        while os.path.lexists(target):
            n += 1
            target = to / f"{path.name}.{n}"
        try:
            os.rename(path, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            shutil.copy2(path, target)
            os.unlink(path)
        fsync_dir(to)
        fsync_dir(path.parent)
        return target
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise unavailable(path, exc, "remove leftover") from None


# --------------------------------------------------------------------------- the log itself


def _gap(first: int, through: int, *, source: Path, timestamp: float,
         quarantine: str | None) -> bytes:
    rid = hashlib.blake2b(f"{source.name}:repair:{first}:{through}".encode(),
                          digest_size=16).hexdigest()
    return codec.encode(GapRecord(seq=first, through=through, reason="repair",
                                  quarantine=quarantine, timestamp=timestamp, id=rid))


class Verified:
    """Filled by :func:`execute_plan`: the new file's identity, its trusted byte ranges and the
    known clean stretches (``stretches`` of the scan before the repair, as
    :class:`~papyra.filelog.framing.FileScanner` ``known`` ranges) that were copied verbatim."""

    def __init__(self, stretches: Sequence[framing.Stretch] = ()) -> None:
        self.identity: tuple[int, int] | None = None
        self.ranges: list[tuple[int, int]] = []
        self.known: list[tuple[int, int, framing.Stretch]] = []
        self._stretches = list(stretches)

    def record(self, path: Path, pieces: list[tuple[int, int, int]], untrusted: _Ranges) -> None:
        try:
            self.identity = file_identity(os.stat(path))
        except OSError:
            self.identity = None
            return
        out: list[tuple[int, int]] = []
        for old_start, old_end, new_start in pieces:
            cuts = [(max(s, old_start), min(e, old_end)) for s, e in untrusted.ranges
                    if s < old_end and e > old_start]
            pos = old_start
            for s, e in cuts:
                if s > pos:
                    out.append((new_start + pos - old_start, new_start + s - old_start))
                pos = max(pos, e)
            if old_end > pos:
                out.append((new_start + pos - old_start, new_start + old_end - old_start))
        self.ranges = out
        ordered = sorted(pieces)
        starts = [p[0] for p in ordered]
        known: list[tuple[int, int, framing.Stretch]] = []
        for st in self._stretches:
            i = bisect.bisect_right(starts, st.start) - 1
            if i < 0:
                continue
            old_start, old_end, new_start = ordered[i]
            if st.end > old_end or untrusted.overlaps(st.start, st.end):
                continue  # not copied whole and verbatim: the next scan reads it
            known.append((new_start + st.start - old_start, new_start + st.end - old_start, st))
        self.known = known


class _Ranges:
    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        self.ranges = sorted(ranges)
        self.starts = [r[0] for r in self.ranges]
        self.max_ends = list(itertools.accumulate((r[1] for r in self.ranges), max))

    def covers(self, offset: int) -> bool:
        i = bisect.bisect_right(self.starts, offset) - 1
        return i >= 0 and self.ranges[i][0] <= offset < self.ranges[i][1]

    def overlaps(self, start: int, end: int) -> bool:
        """Whether any range meets ``[start, end)``."""
        i = bisect.bisect_left(self.starts, end)
        return i > 0 and self.max_ends[i - 1] > start


def _seq_before(fd: int, offset: int, removed: _Ranges) -> int | None:
    for off, _size, line, _t in framing.iter_lines_reverse(fd, offset):
        if removed.covers(off) or not line:
            continue
        status, _a, b, _info = framing.check_line(line)
        if status in (framing.VALID, framing.GAP) and b is not None:
            return int(b)
    return None


def _seq_after(fd: int, offset: int, end: int, removed: _Ranges
               ) -> tuple[int | None, float | None]:
    # small blocks: the next valid line is usually right after the removed run
    for off, _size, line, terminated in framing.iter_lines(fd, offset, end, block=1 << 16):
        if removed.covers(off) or not isinstance(line, bytes) or not terminated:
            continue
        status, a, _b, _info = framing.check_line(line)
        if status in (framing.VALID, framing.GAP) and a is not None:
            rec = codec.decode(line)
            return int(a), rec.timestamp
    return None, None


def execute_plan(
    path: Path, lock: LogLock, plan: Sequence[RecoveryAction], *,
    quarantine_dir: Path | None = None, label: str | None = None,
    expect_identity: tuple[int, int] | None = None,
    untrusted: Sequence[tuple[int, int]] = (), verified: Verified | None = None,
) -> list[RecoveryAction]:
    """Carry out the actions of ``plan`` whose ``file`` is this log (``label``, default the
    path as a string) and the leftover actions. Returns what was done, gaps included.

    When ``verified`` is given it receives the new file's identity and the byte ranges (in the
    new file) that are verbatim copies of bytes the scan before the repair found valid, minus
    the ``untrusted`` ranges (old offsets, e.g. every anomaly of that scan): a post-scan may
    skip re-checksumming lines inside them (:class:`~papyra.filelog.framing.FileScanner`'s
    ``trusted``)."""
    label = label or str(path)
    mine = [a for a in plan if a.file == label and a.action not in ("delete", "move")]
    leftovers = [a for a in plan if a.action in ("delete", "move")]
    done: list[RecoveryAction] = []
    if mine:
        done.extend(_repair_log(path, lock, mine, quarantine_dir=quarantine_dir, label=label,
                                expect_identity=expect_identity,
                                untrusted=_Ranges(list(untrusted)), verified=verified))
    for a in leftovers:
        if a.file is None:
            continue
        moved = remove_leftover(Path(a.file), to=quarantine_dir if a.action == "move" else None)
        done.append(RecoveryAction(action=a.action, file=a.file, offset=a.offset,
                                   length=a.length, to=str(moved) if moved else a.to,
                                   anomaly=a.anomaly, detail=a.detail))
    return done


def _repair_log(
    path: Path, lock: LogLock, actions: list[RecoveryAction], *, quarantine_dir: Path | None,
    label: str, expect_identity: tuple[int, int] | None, untrusted: _Ranges,
    verified: Verified | None,
) -> list[RecoveryAction]:
    fd = open_read(path)
    try:
        st = os.fstat(fd)
        size = st.st_size
        identity = file_identity(st)
        if expect_identity is not None and identity != expect_identity:
            raise StoreUnavailableError(
                f"{path} was replaced since it was scanned; nothing was changed, run again")
        for a in actions:
            if (a.offset or 0) + (a.length or 0) > size and a.action != "newline":
                raise StoreUnavailableError(
                    f"{path} is shorter than when it was scanned; nothing was changed")
        done: list[RecoveryAction] = []
        qfiles: dict[int, str] = {}
        # 1. quarantine copies, before anything in the log changes
        for a in actions:
            if a.action != "quarantine":
                continue
            if quarantine_dir is None:
                raise ConfigError("a quarantine action needs a quarantine directory")
            anomaly = a.anomaly
            target = quarantine_range(
                quarantine_dir, path, fd, a.offset or 0, a.length or 0,
                kind=anomaly.kind if anomaly else "unknown",
                line=anomaly.line if anomaly else None,
                detail=anomaly.detail if anomaly else "")
            qfiles[a.offset or 0] = str(target)
            done.append(RecoveryAction(action="quarantine", file=label, offset=a.offset,
                                       length=a.length, to=str(target), anomaly=a.anomaly,
                                       detail=a.detail))
        # 2. the edits: removals, gap insertions, a final newline
        removals: list[tuple[int, int]] = []
        for a in actions:
            if a.action in ("drop", "truncate"):
                start = a.offset or 0
                end = start + (a.length or 0)
                if (end < size and end > start
                        and os.pread(fd, 1, end - 1) != b"\n" and os.pread(fd, 1, end) == b"\n"):
                    end += 1  # a torn fragment a writer separated with a newline
                removals.append((start, end))
                done.append(a)
        removed = _Ranges(removals)
        runs: list[list[int]] = []
        for start, end in removed.ranges:
            if runs and start <= runs[-1][1]:
                runs[-1][1] = max(runs[-1][1], end)
            else:
                runs.append([start, end])
        edits: list[tuple[int, int, bytes]] = []
        # gap records, in file order: a removed run, or a gap action (seqs missing with no
        # damage to explain them). ``covered`` is the highest seq a gap of this repair already
        # stands for, so two runs around one missing seq never both claim it.
        run_ends = {end for _s, end in runs}
        places: list[tuple[int, int, RecoveryAction | None]] = [(s, e, None) for s, e in runs]
        for a in actions:
            if a.action == "gap" and a.offset is not None and a.offset not in run_ends:
                places.append((a.offset, a.offset, a))
        places.sort(key=lambda p: (p[0], p[1]))
        covered = 0
        for start, end, action in places:
            prev = _seq_before(fd, start, removed)
            nxt, ts = _seq_after(fd, end, size, removed)
            if action is not None and prev is None:
                continue  # seqs before the first record are not missing
            first = max(prev or 0, covered) + 1
            replacement = b""
            if nxt is not None and nxt > first:
                q = next((qfiles[o] for o in sorted(qfiles) if start <= o < end), None)
                replacement = _gap(first, nxt - 1, source=path, timestamp=ts or 0.0,
                                   quarantine=q)
                covered = nxt - 1
                done.append(RecoveryAction(action="gap", file=label, offset=start,
                                           length=len(replacement),
                                           anomaly=action.anomaly if action else None,
                                           detail=f"seqs {first}..{nxt - 1}"))
            if action is None or replacement:
                edits.append((start, end, replacement))
        for a in actions:
            if a.action == "newline":
                at = min(a.offset if a.offset is not None else size, size)
                if at < size and os.pread(fd, 1, at) == b"\n":
                    continue  # a writer already separated it
                edits.append((at, at, b"\n"))
                done.append(a)
        edits.sort(key=lambda e: (e[0], e[1]))
        if not edits:
            return done
        if _tail_only(edits, size):
            pieces = _edit_tail_in_place(path, lock, edits, size, identity)
        else:
            pieces = _rewrite(path, lock, fd, edits, size, identity)
        if verified is not None:
            verified.record(path, pieces, untrusted)
        return done
    finally:
        os.close(fd)


def _tail_only(edits: list[tuple[int, int, bytes]], size: int) -> bool:
    for start, end, repl in edits:
        if end != size:
            return False
        if repl not in (b"", b"\n"):
            return False
        if repl == b"\n" and start != size:
            return False
    return len(edits) == 1


def _edit_tail_in_place(path: Path, lock: LogLock, edits: list[tuple[int, int, bytes]],
                        size: int, identity: tuple[int, int]) -> list[tuple[int, int, int]]:
    start, _end, repl = edits[0]
    with lock.held():
        try:
            st = os.stat(path)
        except OSError as exc:
            raise unavailable(path, exc, "stat log") from None
        if file_identity(st) != identity or st.st_size != size:
            # a writer appended meanwhile: the general rewrite keeps its records
            fd = open_read(path)
            try:
                return _rewrite(path, lock, fd, edits, size, identity)
            finally:
                os.close(fd)
        try:
            wfd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise unavailable(path, exc, "open log for repair") from None
        try:
            if repl:
                os.pwrite(wfd, repl, size)
            else:
                os.ftruncate(wfd, start)
            os.fsync(wfd)
        except OSError as exc:
            raise unavailable(path, exc, "repair") from None
        finally:
            os.close(wfd)
    return [(0, start if not repl else size, 0)]


def _rewrite(path: Path, lock: LogLock, fd: int, edits: list[tuple[int, int, bytes]],
             size: int, identity: tuple[int, int]) -> list[tuple[int, int, int]]:
    """Returns the verbatim pieces as ``(old_start, old_end, new_start)``."""
    with Rewrite(path, lock, purpose="repair") as rw:
        if rw.source_identity != identity:
            raise StoreUnavailableError(
                f"{path} was replaced since it was scanned; nothing was changed, run again")
        pieces: list[tuple[int, int, int]] = []
        pos = 0
        for start, end, repl in edits:
            if start > pos:
                pieces.append((pos, start, rw.written))
            rw.copy_range(pos, start)
            rw.write(repl)
            pos = max(pos, end)
        if size > pos:
            pieces.append((pos, size, rw.written))
        rw.copy_range(pos, size)
        rw.source_end = size
        rw.commit()
    return pieces
