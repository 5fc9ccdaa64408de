"""Named crash points for fault-injection tests (cheap when unused).

``PAPYRA_TEST_CRASHPOINT=name`` makes the process SIGKILL itself when it reaches the point
``name``; ``name:N`` waits for the N-th time. The variable is read once, at import time, so an
unset variable costs one comparison per point.
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("PAPYRA_TEST_CRASHPOINT", "")
_NAME, _, _COUNT = _SPEC.partition(":")
_remaining = int(_COUNT) if _COUNT.isdigit() else 1


def crashpoint(name: str) -> None:
    """Kill this process with SIGKILL if ``name`` is the configured crash point."""
    global _remaining
    if _NAME and name == _NAME:
        _remaining -= 1
        if _remaining <= 0:
            os.kill(os.getpid(), signal.SIGKILL)


def armed(name: str) -> bool:
    """Whether ``name`` is the configured crash point (for points that need set-up)."""
    return bool(_NAME) and name == _NAME
