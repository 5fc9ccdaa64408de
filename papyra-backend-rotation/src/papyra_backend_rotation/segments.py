"""Which segments of a directory make up the log.

A directory normally holds a run of segments whose seqs follow one another. Two states need a
decision, and the same one everywhere (reads, the writer, scan, the disk bound):

- *superseded* segments: a compaction rewrote the first segment so that it now holds seqs up to
  some ``s`` (a leading retention gap plus the kept records of the boundary segment) and crashed
  before it deleted the old segments in between. Every segment whose last seq is ``<= s`` and
  that starts after the first one is superseded: readers skip it, scan reports it as
  ``orphaned_file`` and repair deletes it. The log is then exactly the compacted one: never
  both the old and the new content.
- an *empty sealed* segment (created by a rotation that crashed before its first write, then
  followed by another segment): skipped and reported as ``orphaned_file``. An empty *last*
  segment is simply the active segment before its first record, unless its name is further
  ahead than the next seq:
- a *reserved* segment: an empty last segment whose first seq is beyond the seq after the
  log's last record. The writer creates it ahead of time (and fsyncs the directory off the
  append path) and rotates into it when the log reaches that seq; the records before it still
  go into the segment before. Its name says nothing about records: readers and scan skip it,
  writers adopt it.

The last seq of a segment is read backwards from its end (cheap) and cached by file identity
and size, so sealed segments are read once per process.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import attrs
from papyra.filelog import framing
from papyra.filelog.fsio import file_identity

from papyra_backend_rotation.layout import Entry, Listing


@attrs.frozen(kw_only=True)
class Segment:
    """A segment of the log with what its bytes say."""

    entry: Entry
    last_seq: int | None
    """Highest seq of its last valid (sequenced) line; None when it holds none."""

    @property
    def path(self) -> Path:
        return self.entry.path

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def first_seq(self) -> int:
        assert self.entry.first_seq is not None
        return self.entry.first_seq

    @property
    def size(self) -> int:
        return self.entry.size


@attrs.frozen(kw_only=True)
class Layout:
    """The live segments (log order) and the segments that are papyra leftovers."""

    live: tuple[Segment, ...]
    superseded: tuple[tuple[Segment, str], ...]
    """``(segment, reason)`` for superseded and empty sealed segments."""
    listing: Listing
    reserved: Segment | None = None
    """The empty segment created ahead of the next rotation, if any (see module doc)."""


class TailCache:
    """Last seq of segments, keyed by (path, device, inode, size, mtime)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int, int, int, int], int | None] = {}
        self._lock = threading.Lock()

    def last_seq(
        self, path: Path | str, listed: tuple[int, int, int, int] | None = None
    ) -> tuple[int | None, int]:
        """``(last seq or None, size)`` of ``path``; raises FileNotFoundError if it vanished.

        ``listed`` is the entry's ``(device, inode, size, mtime_ns)`` from the directory listing
        (saves a ``stat`` when the answer is cached)."""
        if listed is None:
            st = os.stat(path)
            listed = (*file_identity(st), st.st_size, st.st_mtime_ns)
        key = (str(path), *listed)
        with self._lock:
            if key in self._cache:
                return self._cache[key], listed[2]
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            st = os.fstat(fd)
            key = (str(path), *file_identity(st), st.st_size, st.st_mtime_ns)
            seq, _end, _term = framing.last_sequenced(fd, st.st_size)
        finally:
            os.close(fd)
        value = seq if seq > 0 else None
        with self._lock:
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[key] = value
        return value, st.st_size


def resolve(listing: Listing, tails: TailCache) -> Layout:
    """Split the listing's segments into live ones and leftovers (see module doc)."""
    live: list[Segment] = []
    superseded: list[tuple[Segment, str]] = []
    covered = 0
    entries = listing.segments
    for i, entry in enumerate(entries):
        try:
            last, size = tails.last_seq(entry.location, entry.stamp)
        except FileNotFoundError:
            continue  # deleted while we looked (maintenance in another process)
        if size != entry.size:
            entry = attrs.evolve(entry, size=size)
        seg = Segment(entry=entry, last_seq=last)
        is_last = i == len(entries) - 1
        if live and size == 0 and not is_last:
            superseded.append((seg, "empty segment left by an interrupted rotation"))
            continue
        if is_last and size == 0 and covered and seg.first_seq > covered + 1:
            return Layout(live=tuple(live), superseded=tuple(superseded), listing=listing,
                          reserved=seg)
        if live and covered and seg.first_seq <= covered and (last is None or last <= covered):
            superseded.append((seg, f"superseded: every seq it holds is in {live[-1].name} "
                                    "(left by an interrupted compaction)"))
            continue
        live.append(seg)
        if last is not None:
            covered = max(covered, last)
    return Layout(live=tuple(live), superseded=tuple(superseded), listing=listing)


RACY_NS = 1_000_000_000
"""A listing is reused only when the directory had not changed for this long before it was
taken (see :class:`ReadLayouts`)."""


class ReadLayouts:
    """The layout for readers, listed again only when the directory changed.

    Segments are created, renamed and deleted (rotation, the disk bound, compaction, repair):
    each changes the directory's mtime; appends only grow the active segment, which readers
    look at through ``fstat`` anyway. A directory's mtime comes from a coarse clock, so two
    changes within one tick can leave it equal: like git's "racily clean" index entries, a
    cached listing is trusted only if it was taken at least :data:`RACY_NS` after the
    directory's mtime (a change after it then necessarily moves the mtime). Writers, scan and
    maintenance always list afresh.
    """

    def __init__(self, directory: Path, tails: TailCache, load: Callable[[], Layout]) -> None:
        self.directory = directory
        self._dir = os.fspath(directory)
        self.tails = tails
        self._load = load
        self._cached: tuple[tuple[int, int, int], int, Layout] | None = None
        self._lock = threading.Lock()
        self.listings = 0

    def current(self) -> Layout:
        st = os.stat(self._dir)
        key = (st.st_dev, st.st_ino, st.st_mtime_ns)
        cached = self._cached  # one attribute read: atomic, no lock needed
        if cached is not None and cached[0] == key and cached[1] - key[2] >= RACY_NS:
            return cached[2]
        listed_at = time.time_ns()  # before listing: a change meanwhile is never trusted
        layout = self._load()
        with self._lock:
            self._cached = (key, listed_at, layout)
            self.listings += 1
        return layout
