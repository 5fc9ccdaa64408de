"""The ``redis`` plugin: the backend for ``redis://``, ``rediss://`` and ``unix://`` URLs, and the
``papyra redis groups|pending|claim`` commands (added only when papyra-cli asks for them)."""

from __future__ import annotations

from typing import Any

from papyra import hookimpl
from papyra.hookspecs import RegisterBackend


@hookimpl
def papyra_register_backends(register: RegisterBackend) -> None:
    from papyra_backend_redis.store import create

    register("redis", schemes=["redis", "rediss", "unix"], factory=create,
             description="Redis Streams (one stream per kind; consumer groups; cluster, TLS)")


@hookimpl
def papyra_register_commands(cli: Any) -> None:
    from papyra_backend_redis.cli import redis_group

    cli.add_command(redis_group())
