"""What a rotation directory holds, by name (DESIGN §10).

- Segments ``segment-<first seq, 20 digits>.ndjson``: names sort in log order.
- The lock file ``papyra.lock`` (writers hold ``flock`` on it while they write a batch).
- papyra's own leftovers (``orphaned_file``): temp files of an interrupted rotation, compaction
  or repair, and lock files that are not the directory's lock.
- Anything else is a stranger (``foreign_file``): reported as a warning, never touched.

Classification by name is pure (no I/O beyond one ``scandir``); whether a segment is superseded
(its seqs are all held by an earlier segment, after a compaction crashed before it deleted the
old segments) needs the segments' contents and is decided by the store.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final, Literal

import attrs

SEGMENT_PREFIX: Final = "segment-"
SEGMENT_SUFFIX: Final = ".ndjson"
SEQ_DIGITS: Final = 20
LOCK_NAME: Final = "papyra.lock"

_SEGMENT_RE: Final = re.compile(r"^segment-(\d{20})\.ndjson$")
# Temp files papyra writes in the directory: ``.segment-<seq>.ndjson.<what>.<pid>.<rand>.tmp``
# (and the shorter forms older helpers used). Anything ending in .tmp that starts with a
# segment name or with ``.papyra`` is ours.
_TEMP_RE: Final = re.compile(r"^\.?(segment-\d{20}\.ndjson|papyra)[^/]*\.tmp$")
_LOCK_RE: Final = re.compile(r"^\.?(segment-\d{20}\.ndjson|papyra)[^/]*\.lock$")

EntryKind = Literal["segment", "lock", "temp", "stray_lock", "foreign"]


def segment_name(first_seq: int) -> str:
    """``segment-00000000000000000001.ndjson`` for ``first_seq=1``."""
    if first_seq < 1:
        raise ValueError(f"a segment starts at seq >= 1, not {first_seq}")
    return f"{SEGMENT_PREFIX}{first_seq:0{SEQ_DIGITS}d}{SEGMENT_SUFFIX}"


def parse_segment_name(name: str) -> int | None:
    """The first seq a segment name announces, or None when ``name`` is not a segment."""
    m = _SEGMENT_RE.match(name)
    if m is None:
        return None
    seq = int(m.group(1))
    return seq if seq >= 1 else None


def temp_name(target: str, what: str) -> str:
    """A temp file name for ``target`` that a later listing recognises as papyra's leftover."""
    return f".{target}.{what}.{os.getpid()}.{os.urandom(4).hex()}.tmp"


def classify(name: str, *, is_dir: bool = False) -> EntryKind:
    """What a directory entry is, by its name alone."""
    if is_dir:
        return "foreign"
    if parse_segment_name(name) is not None:
        return "segment"
    if name == LOCK_NAME:
        return "lock"
    if _TEMP_RE.match(name):
        return "temp"
    if _LOCK_RE.match(name):
        return "stray_lock"
    return "foreign"


@attrs.frozen(kw_only=True)
class Entry:
    """One directory entry with its size (``os.scandir``'s stat, no extra syscall for most)."""

    name: str
    location: str
    """The entry's path as listed (a string: most entries are never opened)."""
    kind: EntryKind
    size: int
    first_seq: int | None = None
    stamp: tuple[int, int, int, int] | None = None
    """``(device, inode, size, mtime_ns)`` as listed: what the tail cache of segments keys on."""

    @property
    def path(self) -> Path:
        return Path(self.location)


@attrs.frozen(kw_only=True)
class Listing:
    """A directory listing split by kind; segments sorted by first seq (= log order)."""

    segments: tuple[Entry, ...]
    leftovers: tuple[Entry, ...]
    foreign: tuple[Entry, ...]
    lock: Entry | None

    @property
    def total_segment_bytes(self) -> int:
        return sum(e.size for e in self.segments)


def list_directory(directory: Path) -> Listing:
    """List ``directory``; raises FileNotFoundError when it does not exist."""
    segments: list[Entry] = []
    leftovers: list[Entry] = []
    foreign: list[Entry] = []
    lock: Entry | None = None
    with os.scandir(directory) as it:
        for de in it:
            stamp: tuple[int, int, int, int] | None = None
            try:
                is_dir = de.is_dir(follow_symlinks=False)
                if is_dir:
                    size = 0
                else:
                    st = de.stat(follow_symlinks=False)
                    size = st.st_size
                    stamp = (st.st_dev, st.st_ino, size, st.st_mtime_ns)
            except FileNotFoundError:
                continue  # removed while we listed (a concurrent compaction or repair)
            first_seq = None if is_dir else parse_segment_name(de.name)
            kind: EntryKind = "segment" if first_seq is not None else classify(
                de.name, is_dir=is_dir)
            if kind == "segment" and de.is_symlink():
                kind, first_seq = "foreign", None  # papyra never creates symlinked segments
            entry = Entry(name=de.name, location=de.path, kind=kind, size=size,
                          first_seq=first_seq, stamp=stamp)
            if kind == "segment":
                segments.append(entry)
            elif kind == "lock":
                lock = entry
            elif kind in ("temp", "stray_lock"):
                leftovers.append(entry)
            else:
                foreign.append(entry)
    segments.sort(key=lambda e: e.first_seq or 0)
    leftovers.sort(key=lambda e: e.name)
    foreign.sort(key=lambda e: e.name)
    return Listing(segments=tuple(segments), leftovers=tuple(leftovers),
                   foreign=tuple(foreign), lock=lock)


def is_inside(path: Path, directory: Path) -> bool:
    """Whether ``path`` is ``directory`` or lies below it (symlinks resolved)."""
    try:
        p = path.resolve()
        d = directory.resolve()
    except OSError:
        return False
    return p == d or d in p.parents
