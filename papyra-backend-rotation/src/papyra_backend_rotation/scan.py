"""Scanning a rotation directory (read-only, streaming, bounded memory).

Every live segment is scanned with filelog's :class:`~papyra.filelog.framing.FileScanner`
(``last_file`` only for the newest segment, so a torn record in a sealed segment is reported
line by line, never as a ``truncated_tail``), each one expecting the seq after the previous
segment's last: a missing middle segment is a ``seq_gap``. Superseded and empty sealed
segments, temp files of dead processes and stray lock files are ``orphaned_file``; anything
else is a ``foreign_file`` warning.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import attrs
from papyra.errors import StoreNotFoundError
from papyra.filelog import framing
from papyra.filelog.fsio import open_read, pid_alive, unavailable
from papyra.reports import Anomaly, ScanReport

from papyra_backend_rotation.layout import list_directory
from papyra_backend_rotation.segments import Layout, Segment, TailCache, resolve

_TMP_PID = re.compile(r"\.(\d+)\.[0-9a-f]+\.tmp$")


@attrs.frozen(kw_only=True)
class SegmentScan:
    """What the scan learned about one live segment (used by repair)."""

    segment: Segment
    size: int
    first_seq: int | None
    last_seq: int | None
    """Last seq seen up to and including this segment (continuity carried over)."""
    damaged_tail: bool


@attrs.frozen(kw_only=True)
class ScanResult:
    report: ScanReport
    layout: Layout
    segments: tuple[SegmentScan, ...]


def listing_or_missing(directory: Path) -> object:
    try:
        return list_directory(directory)
    except FileNotFoundError:
        raise StoreNotFoundError(f"no rotation directory at {directory}") from None
    except NotADirectoryError:
        raise StoreNotFoundError(
            f"{directory} is not a directory (a rotation store is a directory of segments)"
        ) from None
    except OSError as exc:
        raise unavailable(directory, exc, "list directory") from None


def load_layout(directory: Path, tails: TailCache) -> Layout:
    listing = listing_or_missing(directory)
    return resolve(listing, tails)  # type: ignore[arg-type]


def _temp_is_live(name: str) -> bool:
    m = _TMP_PID.search(name)
    if m is None:
        return False
    pid = int(m.group(1))
    return pid != os.getpid() and pid_alive(pid)


def scan_directory(directory: Path, tails: TailCache, *, url: str, backend: str) -> ScanResult:
    layout = load_layout(directory, tails)
    listing = layout.listing
    anomalies: list[Anomaly] = []
    for e in listing.foreign:
        what = "directory" if e.path.is_dir() else "file"
        anomalies.append(Anomaly(
            kind="foreign_file", severity="warning", file=str(e.path), offset=0, length=e.size,
            detail=f"a {what} papyra did not write; left untouched"))
    for e in listing.leftovers:
        if e.kind == "temp":
            if _temp_is_live(e.name):
                continue  # a rewrite in progress in another process
            detail = "temp file of an interrupted rotation, compaction or repair"
        else:
            detail = "stray lock file (papyra's lock is papyra.lock)"
        anomalies.append(Anomaly(kind="orphaned_file", file=str(e.path), offset=0,
                                 length=e.size, detail=detail))
    for seg, why in layout.superseded:
        anomalies.append(Anomaly(kind="orphaned_file", file=str(seg.path), offset=0,
                                 length=seg.size, detail=why))
    records = legacy = total = 0
    first_seq: int | None = None
    last_seq: int | None = None
    damaged_before = False
    scans: list[SegmentScan] = []
    n = len(layout.live)
    for i, seg in enumerate(layout.live):
        scanner = framing.FileScanner(
            str(seg.path), last_file=i == n - 1,
            expect_seq=None if last_seq is None else last_seq + 1,
        )
        if damaged_before:
            scanner._damage_since_seq = True  # damage at the end of the previous segment
        try:
            fd = open_read(seg.path)
        except StoreNotFoundError:
            continue  # deleted while we scanned (disk bound or compaction in another process)
        try:
            scanner.run(fd)
        except OSError as exc:
            anomalies.append(Anomaly(kind="unreadable", file=str(seg.path),
                                     detail=f"cannot read: {exc.strerror or exc}"))
            continue
        finally:
            os.close(fd)
        anomalies.extend(scanner.anomalies)
        records += scanner.records
        legacy += scanner.legacy_records
        total += scanner.bytes
        if first_seq is None and scanner.first_seq is not None:
            first_seq = scanner.first_seq
        if scanner.last_seq is not None:
            last_seq = scanner.last_seq
        damaged_before = scanner._damage_since_seq
        scans.append(SegmentScan(segment=seg, size=scanner.bytes, first_seq=scanner.first_seq,
                                 last_seq=scanner.last_seq, damaged_tail=damaged_before))
    report = ScanReport(store=url, backend=backend, records=records, legacy_records=legacy,
                        bytes=total, anomalies=anomalies,  # type: ignore[arg-type]
                        first_seq=first_seq,
                        last_seq=last_seq)
    return ScanResult(report=report, layout=layout, segments=tuple(scans))
