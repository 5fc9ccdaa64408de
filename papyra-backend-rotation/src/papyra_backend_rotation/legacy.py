"""Reading papyra 0.3.0's rotating file set for migration.

0.3.0's ``RotatingFilePersistence`` kept ``path`` (active, newest), ``path.1`` (newest rotated)
… ``path.N`` (oldest). The log order is therefore ``path.N``, …, ``path.1``, ``path``. The
numbers need not be contiguous (0.3.0 stopped rotating once its set was full, and operators
delete files by hand), so every ``path.<digits>`` beside ``path`` is taken, highest first.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from papyra import codec
from papyra.codec import DecodeError
from papyra.filelog import framing
from papyra.filelog.fsio import open_read
from papyra.records import GapRecord, Record


def legacy_set_files(path: Path) -> list[Path]:
    """The files of the set at ``path``, oldest first (``path.N`` … ``path.1``, ``path``)."""
    pattern = re.compile(re.escape(path.name) + r"\.(\d+)$")
    numbered: list[tuple[int, Path]] = []
    if path.parent.is_dir():
        for p in path.parent.iterdir():
            m = pattern.match(p.name)
            if m and p.is_file():
                numbered.append((int(m.group(1)), p))
    numbered.sort(key=lambda t: t[0], reverse=True)
    files = [p for _, p in numbered]
    if path.is_file():
        files.append(path)
    return files


class LegacyLineError(ValueError):
    """A line of a legacy set that is not a record (migration refuses to guess)."""

    def __init__(self, file: Path, offset: int, line: int, error: DecodeError) -> None:
        super().__init__(f"{file} line {line} (offset {offset}): {error.kind}: {error.detail}")
        self.file = file
        self.offset = offset
        self.line = line
        self.kind = error.kind


def read_legacy_set(path: Path) -> Iterator[Record]:
    """Every record of the set at ``path`` in log order (oldest file first, then by line).

    v1 lines are accepted too (a half-migrated set); gap records are skipped. A line that does
    not decode raises :class:`LegacyLineError` (recover first).
    """
    for file in legacy_set_files(path):
        fd = open_read(file)
        try:
            for n, (offset, _size, content, _t) in enumerate(framing.iter_lines(fd), start=1):
                if isinstance(content, bytes) and not content.strip():
                    continue
                try:
                    if isinstance(content, framing.Overlong):
                        raise DecodeError("invalid_json", "line is longer than any record")
                    rec = codec.decode(content)
                except DecodeError as exc:
                    raise LegacyLineError(file, offset, n, exc) from None
                if isinstance(rec, GapRecord):
                    continue
                yield rec
        finally:
            os.close(fd)
