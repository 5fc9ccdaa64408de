"""``papyra completion SHELL``: print the shell-completion script (click's own mechanism).

The same script comes from ``_PAPYRA_COMPLETE=bash_source papyra``; this command only saves
remembering the variable. Completion covers commands, options, backend names, URL schemes
and modes.
"""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

SHELLS = ("bash", "zsh", "fish")


@click.command()
@click.argument("shell", type=click.Choice(SHELLS, case_sensitive=False))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish).

    \b
    bash:  eval "$(papyra completion bash)"          (in ~/.bashrc)
    zsh:   eval "$(papyra completion zsh)"           (in ~/.zshrc)
    fish:  papyra completion fish > ~/.config/fish/completions/papyra.fish
    """
    cls = get_completion_class(shell.lower())
    assert cls is not None
    root = ctx.find_root()
    comp = cls(root.command, {}, root.info_name or "papyra", "_PAPYRA_COMPLETE")
    click.echo(comp.source())
