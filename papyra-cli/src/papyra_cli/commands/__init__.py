"""The built-in command groups of ``papyra``, one module per noun.

They are imported on first use (``papyra persistence scan`` never imports the metrics server),
which keeps the start-up of every command short.
"""

from __future__ import annotations

import importlib

import click

BUILTIN: dict[str, tuple[str, str]] = {
    "persistence": ("papyra_cli.commands.persistence", "persistence"),
    "doctor": ("papyra_cli.commands.doctor", "doctor"),
    "inspect": ("papyra_cli.commands.inspect", "inspect"),
    "metrics": ("papyra_cli.commands.metrics", "metrics"),
    "plugins": ("papyra_cli.commands.plugins", "plugins"),
    "backends": ("papyra_cli.commands.plugins", "backends"),
    "completion": ("papyra_cli.commands.completion", "completion"),
}
"""Command name → (module, attribute) of every built-in command."""


def load_builtin(name: str) -> click.Command:
    module_name, attribute = BUILTIN[name]
    command = getattr(importlib.import_module(module_name), attribute)
    assert isinstance(command, click.Command)
    return command


def add_builtin_commands(cli: click.Group) -> None:
    """Mount every built-in command on ``cli`` now (eagerly)."""
    for name in BUILTIN:
        cli.add_command(load_builtin(name), name)
