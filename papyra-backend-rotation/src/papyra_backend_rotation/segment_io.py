"""Low-level file work on one segment: whole-line writes, streaming line iteration (forwards
and backwards), crash-atomic rewrites, directory fsync and the ``flock`` writer lock.

Everything here is blocking; the store calls it from a worker thread.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

from papyra.errors import LockTimeoutError, StoreUnavailableError

from papyra_backend_rotation.crashpoints import crashpoint
from papyra_backend_rotation.layout import temp_name

CHUNK: Final = 1 << 20
DEFAULT_MAX_LINE: Final = 16 * 1024 * 1024
FILE_MODE: Final = 0o600
DIR_MODE: Final = 0o700

Line = tuple[int, bytes | None, int, bool]
"""``(offset, content without newline or None when longer than max_line, length incl. newline,
has_newline)``."""


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write every byte (short writes looped)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:  # pragma: no cover - os.write raises instead on every platform we run on
            raise OSError(errno.EIO, "write returned 0")
        view = view[n:]


def append_lines(fd: int, data: bytes, *, size_before: int) -> None:
    """Append ``data`` (whole lines) at the end; a failed partial write is truncated back."""
    try:
        write_all(fd, data)
    except BaseException:
        try:
            os.ftruncate(fd, size_before)
        except OSError:
            pass
        raise


def fsync_dir(directory: Path) -> None:
    """Make creations, renames and deletions in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_exclusive(path: Path) -> int:
    """Create a new file that must not exist yet (0600); returns an append fd."""
    return os.open(
        path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW,
        FILE_MODE,
    )


def open_append(path: Path) -> int:
    """Open an existing segment for appending."""
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW)


def iter_lines(
    path: Path, *, start: int = 0, end: int | None = None, max_line: int = DEFAULT_MAX_LINE
) -> Iterator[Line]:
    """Lines of ``path`` from byte ``start`` to ``end`` (default: the size when opened).

    Bounded memory: a line longer than ``max_line`` is yielded with content None.
    """
    with open(path, "rb", buffering=0) as f:
        if end is None:
            end = os.fstat(f.fileno()).st_size
        f.seek(start)
        pos = start
        buf = b""
        buf_start = start
        long_start: int | None = None
        long_len = 0
        while pos < end:
            chunk = f.read(min(CHUNK, end - pos))
            if not chunk:
                break
            pos += len(chunk)
            if long_start is not None:
                j = chunk.find(b"\n")
                if j < 0:
                    long_len += len(chunk)
                    continue
                yield (long_start, None, long_len + j + 1, True)
                long_start = None
                buf = chunk[j + 1 :]
                buf_start = pos - len(buf)
            else:
                buf += chunk
            i = 0
            while True:
                j = buf.find(b"\n", i)
                if j < 0:
                    break
                yield (buf_start + i, buf[i:j], j + 1 - i, True)
                i = j + 1
            buf = buf[i:]
            buf_start += i
            if len(buf) > max_line:
                long_start, long_len = buf_start, len(buf)
                buf = b""
                buf_start = pos
        if long_start is not None:
            yield (long_start, None, long_len, False)
        elif buf:
            yield (buf_start, buf, len(buf), False)


def iter_lines_reverse(path: Path, *, end: int | None = None) -> Iterator[Line]:
    """Lines of ``path`` from the last to the first (the newest-N read path: O(N) bytes)."""
    with open(path, "rb", buffering=0) as f:
        if end is None:
            end = os.fstat(f.fileno()).st_size
        buf_start = end
        buf = b""
        while True:
            j = len(buf)
            while j > 0:
                has_nl = buf[j - 1] == 10
                k = buf.rfind(b"\n", 0, j - 1 if has_nl else j)
                if k < 0 and buf_start > 0:
                    break  # the line may start further up: read more first
                ls = k + 1
                yield (buf_start + ls, buf[ls : j - 1] if has_nl else buf[ls:j], j - ls, has_nl)
                j = ls
            buf = buf[:j]
            if buf_start == 0:
                return
            step = min(CHUNK, buf_start)
            buf_start -= step
            f.seek(buf_start)
            buf = f.read(step) + buf


def copy_range(src: Path, dst_fd: int, start: int, end: int) -> int:
    """Copy bytes ``start..end`` of ``src`` to ``dst_fd``; returns the number copied."""
    copied = 0
    with open(src, "rb", buffering=0) as f:
        f.seek(start)
        while start + copied < end:
            chunk = f.read(min(CHUNK, end - start - copied))
            if not chunk:
                break
            write_all(dst_fd, chunk)
            copied += len(chunk)
    return copied


def atomic_write(
    target: Path, chunks: Iterable[bytes], *, mode: int = FILE_MODE, crash_prefix: str = "rewrite"
) -> int:
    """Write ``chunks`` to ``target`` crash-atomically: temp file in the same directory →
    fsync → ``os.replace`` → fsync the directory. Returns the bytes written."""
    directory = target.parent
    tmp = directory / temp_name(target.name, crash_prefix)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, mode)
    written = 0
    try:
        try:
            for chunk in chunks:
                write_all(fd, chunk)
                written += len(chunk)
            os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        crashpoint(f"{crash_prefix}.before_replace")
        os.replace(tmp, target)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    crashpoint(f"{crash_prefix}.after_replace")
    fsync_dir(directory)
    return written


class DirLock:
    """The directory's writer lock: ``flock(LOCK_EX)`` on ``papyra.lock``, with a timeout."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._fd: int | None = None
        self.depth = 0

    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                               FILE_MODE)
        return self._fd

    def acquire(self) -> None:
        if self.depth:
            self.depth += 1
            return
        fd = self._open()
        deadline = time.monotonic() + self.timeout
        delay = 0.0005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeoutError(
                        f"could not lock {self.path} within {self.timeout:g}s "
                        "(another process holds it)"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.02)
            except OSError as exc:
                raise StoreUnavailableError(f"cannot lock {self.path}: {exc.strerror}") from None
        self.depth = 1

    def release(self) -> None:
        if not self.depth:
            return
        self.depth -= 1
        if self.depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def __enter__(self) -> DirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self.depth = 0
