"""The one place where failures become exit codes (DESIGN §9).

Every expected failure is one line on stderr and a documented exit code; ``--debug`` (or
``PAPYRA_DEBUG=1``) adds the traceback. Anything unexpected is an internal error: exit 5.

| code | meaning |
|---:|---|
| 0 | success |
| 1 | anomalies found and left in place |
| 2 | usage or configuration error |
| 3 | recovery ran but anomalies remain |
| 4 | store unavailable (missing, permission, I/O, lock timeout, unreachable) |
| 5 | internal error (a bug) |
"""

from __future__ import annotations

import errno
import os
import re
import sys
import traceback

import click
from papyra.codec import DecodeError, EncodeError
from papyra.errors import PapyraError

OK = 0
ANOMALIES = 1
USAGE = 2
RECOVERY_INCOMPLETE = 3
UNAVAILABLE = 4
INTERNAL = 5
INTERRUPTED = 130
BROKEN_PIPE = 141

_debug = False


def set_debug(value: bool) -> None:
    """Turn tracebacks on (the ``--debug`` option's callback calls this)."""
    global _debug
    _debug = _debug or bool(value)


def debug_enabled() -> bool:
    return _debug or os.environ.get("PAPYRA_DEBUG", "").strip().lower() in {"1", "true", "yes"}


def reset() -> None:
    global _debug
    _debug = False


_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)[^\s@/]+@")
_QUERY_SECRET = re.compile(r"(?P<key>[?&](?:password|pass|pwd|token|secret)=)[^&\s'\"]+",
                           re.IGNORECASE)


def scrub(text: str) -> str:
    """Remove anything that looks like a password in a URL from ``text``."""
    text = _URL_PASSWORD.sub(lambda m: m.group("scheme") + "***@", text)
    return _QUERY_SECRET.sub(lambda m: m.group("key") + "***", text)


class CommandError(click.ClickException):
    """An expected failure raised by a command: one line on stderr and ``exit_code``."""

    def __init__(self, message: str, exit_code: int = USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]


class ExitWith(Exception):
    """End the command with ``code`` after its output was written (e.g. 1 for anomalies)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class StdoutClosed(Exception):
    """Whoever read our stdout went away (``papyra … | head``): exit 141, quietly."""


def error_line(message: str) -> None:
    click.echo(f"papyra: error: {scrub(message)}", err=True)


def _os_error_message(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    if exc.filename is not None:
        return f"{reason}: {exc.filename}"
    return reason


def _show_traceback() -> None:
    click.echo(scrub(traceback.format_exc()).rstrip("\n"), err=True)


def _usage_hint(exc: click.UsageError) -> str:
    ctx = exc.ctx
    if ctx is None:
        return ""
    return f" (see '{ctx.command_path} --help')"


def translate(exc: BaseException) -> int:
    """Report ``exc`` on stderr the way the exit-code contract says; return the exit code."""
    if isinstance(exc, ExitWith):
        return exc.code
    if isinstance(exc, click.exceptions.Exit):
        return exc.exit_code
    if isinstance(exc, click.exceptions.NoArgsIsHelpError) and exc.ctx is not None:
        click.echo(exc.ctx.get_help(), err=True)  # `papyra` alone: the help, as a usage error
        return USAGE
    if isinstance(exc, click.UsageError):
        error_line(f"{exc.format_message()}{_usage_hint(exc)}")
        return USAGE
    if isinstance(exc, CommandError):
        error_line(exc.format_message())
        if debug_enabled():
            _show_traceback()
        return exc.exit_code
    if isinstance(exc, click.Abort | KeyboardInterrupt):
        click.echo("papyra: interrupted", err=True)
        return INTERRUPTED
    if isinstance(exc, click.ClickException):
        error_line(exc.format_message())
        return exc.exit_code
    if isinstance(exc, BrokenPipeError | StdoutClosed):
        _silence_stdout()
        return BROKEN_PIPE
    code: int
    if isinstance(exc, PapyraError):
        code = exc.exit_code
        message = str(exc) or type(exc).__name__
        if code == INTERNAL:
            message = f"internal error: {message} (run with --debug for the traceback)"
    elif isinstance(exc, DecodeError | EncodeError):
        code, message = USAGE, str(exc)
    elif isinstance(exc, OSError):
        if exc.errno == errno.EPIPE:
            _silence_stdout()
            return BROKEN_PIPE
        code, message = UNAVAILABLE, _os_error_message(exc)
    else:
        code = INTERNAL
        message = (f"internal error: {type(exc).__name__}: {exc} "
                   "(run with --debug for the traceback)")
    error_line(message)
    if debug_enabled():
        _show_traceback()
    return code


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
