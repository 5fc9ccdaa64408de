"""Crash-atomic rewrites that run while writers stay live (DESIGN §4).

:class:`Rewrite` builds the replacement of a log in a temp file in the same directory
(created ``O_EXCL|O_NOFOLLOW``, with the original's mode), *without* holding the lock, from a
snapshot of the source up to ``source_end``. :meth:`Rewrite.commit` then takes the lock, copies
whatever writers appended meanwhile (verbatim, or through a ``catch_up`` transform), fsyncs the
temp file, ``os.replace``-s it over the log and fsyncs the directory. A crash at any point leaves
either the old file or the new one; a leftover temp file is named
``.<log>.<purpose>.<pid>.<token>.tmp`` so a scan can tell a live one (its process exists) from an
orphan. Writers notice the replacement (inode changed) and reopen.

A segmented store uses one :class:`Rewrite` per segment it rewrites (compaction of a sealed
segment, repair of a damaged one) and :func:`leftovers` on its directory.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from papyra.errors import StoreUnavailableError
from papyra.filelog.fsio import (
    FILE_MODE,
    file_identity,
    fsync_dir,
    open_read,
    pid_alive,
    unavailable,
    write_all,
)
from papyra.filelog.locking import LogLock

_BUF = 1 << 20
_TMP = re.compile(r"^\.(?P<log>.+)\.(?P<purpose>[a-z]+)\.(?P<pid>\d+)\.(?P<token>[0-9a-f]+)\.tmp$")


def temp_name(log: Path, purpose: str) -> Path:
    return log.with_name(f".{log.name}.{purpose}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def leftovers(log: Path) -> list[Path]:
    """Temp files of dead rewrites of ``log`` (their process no longer exists)."""
    out: list[Path] = []
    try:
        names = os.listdir(log.parent)
    except OSError:
        return out
    for name in sorted(names):
        m = _TMP.match(name)
        if m is None or m.group("log") != log.name:
            continue
        if pid_alive(int(m.group("pid"))) and int(m.group("pid")) != os.getpid():
            continue
        if int(m.group("pid")) == os.getpid() and name in _LIVE:
            continue
        out.append(log.parent / name)
    return out


_LIVE: set[str] = set()


class Rewrite:
    """Build a new version of ``path`` and switch it in atomically (see module doc)."""

    def __init__(self, path: Path, lock: LogLock, *, purpose: str) -> None:
        self.path = path
        self.lock = lock
        self.tmp_path = temp_name(path, purpose)
        self.source_fd = open_read(path)
        st = os.fstat(self.source_fd)
        self.source_identity = file_identity(st)
        self.source_end = st.st_size
        """The snapshot of the source this rewrite covers; commit catches up from here."""
        self.mode = stat.S_IMODE(st.st_mode) or FILE_MODE
        self._buf = bytearray()
        self.written = 0
        self.committed = False
        try:
            self.fd = os.open(
                self.tmp_path,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                FILE_MODE,
            )
            os.fchmod(self.fd, self.mode)
        except OSError as exc:
            os.close(self.source_fd)
            raise unavailable(self.tmp_path, exc, "create temp file") from None
        _LIVE.add(self.tmp_path.name)

    # ------------------------------------------------------------------ building

    def write(self, data: bytes) -> None:
        self._buf += data
        self.written += len(data)
        if len(self._buf) >= _BUF:
            self._flush()

    def _flush(self) -> None:
        if self._buf:
            try:
                write_all(self.fd, self._buf)
            except OSError as exc:
                raise unavailable(self.tmp_path, exc, "write") from None
            self._buf.clear()

    def copy_range(self, start: int, end: int) -> None:
        """Copy source bytes ``[start, end)`` verbatim (in the kernel where possible)."""
        if end <= start:
            return
        self._flush()
        pos = start
        try:
            while pos < end:
                n = _copy(self.source_fd, self.fd, pos, end - pos)
                if n <= 0:
                    raise StoreUnavailableError(
                        f"{self.path} shrank while being rewritten (at offset {pos})")
                pos += n
        except OSError as exc:
            raise unavailable(self.tmp_path, exc, "write") from None
        self.written += end - start

    # ------------------------------------------------------------------ switching over

    def commit(self, catch_up: Callable[[Rewrite, int, int], None] | None = None) -> int:
        """Under the lock: copy what was appended since ``source_end``, then replace the log.

        Returns the number of bytes appended by writers during the rewrite.
        """
        with self.lock.held():
            try:
                st = os.stat(self.path)
            except OSError as exc:
                raise unavailable(self.path, exc, "stat log") from None
            if file_identity(st) != self.source_identity:
                raise StoreUnavailableError(
                    f"{self.path} was replaced by another maintenance run meanwhile; "
                    "nothing was changed, run the command again"
                )
            if st.st_size < self.source_end:
                raise StoreUnavailableError(
                    f"{self.path} shrank during the rewrite; nothing was changed"
                )
            appended = st.st_size - self.source_end
            if appended:
                if catch_up is None:
                    self.copy_range(self.source_end, st.st_size)
                else:
                    catch_up(self, self.source_end, st.st_size)
            self._flush()
            try:
                os.fsync(self.fd)
                os.replace(self.tmp_path, self.path)
            except OSError as exc:
                raise unavailable(self.path, exc, "replace") from None
            self.committed = True
            _LIVE.discard(self.tmp_path.name)
            try:
                fsync_dir(self.path.parent)
            except OSError as exc:
                raise unavailable(self.path.parent, exc, "fsync directory") from None
        self.close()
        return appended

    def close(self) -> None:
        """Release file descriptors; remove the temp file unless committed."""
        for name in ("fd", "source_fd"):
            fd = getattr(self, name, None)
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, name, None)
        if not self.committed:
            with contextlib.suppress(OSError):
                os.unlink(self.tmp_path)
            _LIVE.discard(self.tmp_path.name)

    def __enter__(self) -> Rewrite:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _copy(src: int, dst: int, pos: int, count: int) -> int:
    try:
        return os.copy_file_range(src, dst, min(count, 1 << 30), pos)
    except (AttributeError, OSError):
        data = os.pread(src, min(count, _BUF), pos)
        if data:
            write_all(dst, data)
        return len(data)
