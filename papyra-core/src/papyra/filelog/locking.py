"""The writers' lock: ``flock`` on ``<log>.lock`` beside the log (DESIGN §4).

Writers hold it only while one batch is written (and fsynced under ``always``); maintenance
(compaction, repair, migration) copies without it and holds it only for the final switch-over.
``flock`` locks belong to an open file description, so two :class:`LogLock` objects conflict
even inside one process (a writer thread and a compaction in the same program serialise).

A segmented store locks its directory the same way: one ``LogLock`` on a lock file inside or
beside the directory, taken around each batch and around each rotation or switch-over.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from papyra.errors import LockTimeoutError
from papyra.filelog.fsio import FILE_MODE, ensure_dir, unavailable


def lock_path_for(log: Path) -> Path:
    """``events.ndjson`` → ``events.ndjson.lock`` in the same directory."""
    return log.with_name(log.name + ".lock")


class LogLock:
    """An exclusive ``flock`` with a timeout. Reentrant per object within one thread."""

    def __init__(self, path: Path, *, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout
        self._fd: int | None = None
        self._depth = 0
        self._owner: int | None = None
        self._mutex = threading.Lock()

    def _open(self) -> int:
        if self._fd is None:
            ensure_dir(self.path.parent)
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
            except OSError as exc:
                raise unavailable(self.path, exc, "open lock file") from None
        return self._fd

    def acquire(self, timeout: float | None = None) -> None:
        """Take the lock, waiting at most ``timeout`` seconds (LockTimeoutError after)."""
        me = threading.get_ident()
        if self._owner == me:
            self._depth += 1
            return
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        if not self._mutex.acquire(timeout=max(limit, 0.0)):
            raise LockTimeoutError(f"lock {self.path} not acquired within {limit:g}s")
        try:
            fd = self._open()
            delay = 0.0005
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockTimeoutError(
                            f"lock {self.path} is held by another writer or maintenance run; "
                            f"not acquired within {limit:g}s"
                        ) from None
                    time.sleep(delay)
                    delay = min(delay * 2, 0.02)
                except OSError as exc:
                    raise unavailable(self.path, exc, "lock") from None
        except BaseException:
            self._mutex.release()
            raise
        self._owner = me
        self._depth = 1

    def release(self) -> None:
        if self._owner != threading.get_ident():
            raise RuntimeError("lock released by a thread that does not hold it")
        self._depth -= 1
        if self._depth:
            return
        self._owner = None
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._mutex.release()

    @contextmanager
    def held(self, timeout: float | None = None) -> Iterator[None]:
        self.acquire(timeout)
        try:
            yield
        finally:
            self.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
