"""Low-level file operations every papyra file backend needs, with one error translation.

- :func:`ensure_dir` creates missing parent directories 0700 and turns "a path component is a
  regular file" into a clear :class:`~papyra.errors.StoreUnavailableError`.
- :func:`open_log` opens (or creates, 0600) a log for appending, refusing a directory.
- :func:`write_all` loops on short writes; :func:`fsync_dir` makes a rename or a create durable.
- :func:`unavailable` turns any ``OSError`` into a typed error whose message names the path.

A segmented store uses the same helpers for each segment and for its directory.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from papyra.errors import StoreNotFoundError, StoreUnavailableError

FILE_MODE = 0o600
DIR_MODE = 0o700

_REASONS = {
    errno.ENOSPC: "no space left on device",
    errno.EFBIG: "file too large (file size limit reached)",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a component of the path is not a directory",
    errno.EISDIR: "is a directory, expected a log file",
    errno.EDQUOT: "disk quota exceeded",
    errno.EIO: "I/O error",
    errno.ELOOP: "too many symbolic links (or a symlink where none is allowed)",
}


def unavailable(path: str | os.PathLike[str], exc: OSError, action: str) -> StoreUnavailableError:
    """A typed error for ``exc`` raised while doing ``action`` on ``path`` (one clear line)."""
    reason = _REASONS.get(exc.errno or 0) or exc.strerror or str(exc)
    message = f"cannot {action} {os.fspath(path)}: {reason}"
    if exc.errno == errno.ENOENT:
        return StoreNotFoundError(message)
    return StoreUnavailableError(message)


def ensure_dir(directory: Path) -> None:
    """Create ``directory`` and its missing parents with mode 0700 (existing ones untouched)."""
    try:
        st = os.stat(directory)
    except FileNotFoundError:
        pass
    except NotADirectoryError as exc:
        raise _under_file(directory, exc) from None
    except OSError as exc:
        raise unavailable(directory, exc, "use directory") from None
    else:
        if not stat.S_ISDIR(st.st_mode):
            raise StoreUnavailableError(
                f"cannot use {directory} as a directory: it exists and is not a directory"
            )
        return
    try:
        missing = [directory]
        for parent in directory.parents:
            if os.path.isdir(parent):
                break
            missing.append(parent)
        for d in reversed(missing):  # every new directory 0700, not only the last one
            try:
                os.mkdir(d, DIR_MODE)
            except FileExistsError:
                if not os.path.isdir(d):
                    raise
    except (NotADirectoryError, FileExistsError) as exc:
        raise _under_file(directory, exc) from None
    except OSError as exc:
        raise unavailable(directory, exc, "create directory") from None


def _under_file(directory: Path, exc: OSError) -> StoreUnavailableError:
    for parent in [directory, *directory.parents]:
        try:
            if parent.exists() and not parent.is_dir():
                return StoreUnavailableError(
                    f"cannot create directory {directory}: {parent} is a regular file, "
                    "not a directory"
                )
        except OSError:
            break
    return unavailable(directory, exc, "create directory")


def _open_file(
    path: Path | str, flags: int, verb: str, *, regular_only: bool
) -> tuple[int, os.stat_result]:
    """``os.open`` with papyra's errors: a directory (or, with ``regular_only``, anything but a
    regular file) where the log should be is refused, OS errors become typed errors. Returns the
    descriptor and its ``fstat``."""
    try:
        fd = os.open(path, flags | os.O_CLOEXEC, FILE_MODE)
    except IsADirectoryError:
        raise StoreUnavailableError(
            f"cannot {verb} log {path}: it is a directory, expected a file"
        ) from None
    except OSError as exc:
        raise unavailable(path, exc, f"{verb} log") from None
    try:
        st = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise unavailable(path, exc, "stat log") from None
    if stat.S_ISDIR(st.st_mode):
        os.close(fd)
        raise StoreUnavailableError(f"cannot {verb} log {path}: it is a directory, expected a file")
    if regular_only and not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise StoreUnavailableError(f"cannot {verb} log {path}: not a regular file")
    return fd, st


def open_log(path: Path, *, create: bool = True) -> int:
    """Open ``path`` for appending (``O_APPEND``), creating it 0600 (and parents 0700)."""
    flags = os.O_WRONLY | os.O_APPEND
    if create:
        ensure_dir(path.parent)
        flags |= os.O_CREAT
    return _open_file(path, flags, "open", regular_only=True)[0]


def open_read(path: Path | str) -> int:
    """Open ``path`` read-only; a missing file raises StoreNotFoundError."""
    return _open_file(path, os.O_RDONLY, "read", regular_only=False)[0]


def open_read_sized(path: Path | str) -> tuple[int, int]:
    """:func:`open_read` and the file's size at opening (one ``fstat``, not two)."""
    fd, st = _open_file(path, os.O_RDONLY, "read", regular_only=False)
    return fd, st.st_size


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """Write every byte of ``data`` (loops on short writes; raises the OSError of a failure)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:  # pragma: no cover - os.write raises rather than returning 0 for files
            raise OSError(errno.EIO, "write returned 0")
        view = view[n:]


def fsync_dir(directory: Path) -> None:
    """fsync a directory so a create, rename or unlink in it survives a crash."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_identity(st: os.stat_result) -> tuple[int, int]:
    """(device, inode): what tells a writer that maintenance replaced the file."""
    return (st.st_dev, st.st_ino)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (used to tell live temp files from leftovers)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
