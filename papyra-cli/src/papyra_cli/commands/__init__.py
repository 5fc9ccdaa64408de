"""The built-in command groups of ``papyra``, one module per noun."""

from __future__ import annotations

import click


def add_builtin_commands(cli: click.Group) -> None:
    """Mount every built-in command on the root group."""
    from papyra_cli.commands import completion, doctor, inspect, persistence, plugins

    cli.add_command(persistence.persistence)
    cli.add_command(doctor.doctor)
    cli.add_command(inspect.inspect)
    cli.add_command(plugins.plugins)
    cli.add_command(plugins.backends)
    cli.add_command(completion.completion)
