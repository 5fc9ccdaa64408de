"""The ``papyra`` command: the root group, ``--version``, and plugin-contributed commands."""

from __future__ import annotations

import logging
import platform
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import click
from papyra.logging_setup import configure_logging
from papyra.plugin_manager import PluginManager

from papyra_cli import errors
from papyra_cli.context import CliState, debug_option

LOG_LEVELS = ("debug", "info", "warning", "error")

CONTEXT_SETTINGS: dict[str, Any] = {
    "help_option_names": ["-h", "--help"],
    "max_content_width": 100,
}


def _version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not installed"


class CurrentStderr(logging.Handler):
    """Writes to whatever ``sys.stderr`` is when a line is logged (click's test runner swaps
    it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


class PapyraGroup(click.Group):
    """The root group: translates every failure into the exit-code contract (DESIGN §9), in
    the console script and under ``CliRunner`` alike."""

    plugin_manager: PluginManager

    def list_commands(self, ctx: click.Context) -> list[str]:
        from papyra_cli.commands import BUILTIN

        return sorted(set(BUILTIN) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Built-in commands are imported on first use; plugin commands are mounted eagerly."""
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        from papyra_cli.commands import BUILTIN, load_builtin

        if cmd_name not in BUILTIN:
            return None
        command = load_builtin(cmd_name)
        self.add_command(command, cmd_name)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # click would turn EPIPE into exit 1, which here means "anomalies found"
            raise errors.StdoutClosed() from None

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        errors.reset()
        logger = logging.getLogger("papyra")
        saved = (list(logger.handlers), logger.level, logger.propagate)
        try:
            rv = super().main(args, prog_name or "papyra", complete_var,
                              standalone_mode=False, **extra)
        except SystemExit:
            raise
        except BaseException as exc:
            code = errors.translate(exc)
        else:
            code = rv if isinstance(rv, int) and not isinstance(rv, bool) else errors.OK
        finally:  # logging is configured for this invocation only (matters in-process)
            logger.handlers[:] = saved[0]
            logger.setLevel(saved[1])
            logger.propagate = saved[2]
        if standalone_mode:
            sys.exit(code)
        return code


def version_text(pm: PluginManager) -> str:
    """What ``papyra --version`` prints: papyra's distributions and every plugin's."""
    lines = [
        f"papyra {_version('papyra-cli')} "
        f"(papyra-core {_version('papyra-core')}, papyra-cli {_version('papyra-cli')}, "
        f"Python {platform.python_version()})",
    ]
    plugins = [i for i in pm.infos.values() if not i.builtin]
    if plugins:
        lines.append("plugins:")
        width = max(len(i.name) for i in plugins)
        for info in sorted(plugins, key=lambda i: i.name):
            dist = f"{info.distribution or '?'} {info.version or '?'}"
            status = "" if info.status == "loaded" else f"  [{info.status}]"
            lines.append(f"  {info.name.ljust(width)}  {dist}{status}")
    else:
        lines.append("plugins: none installed")
    return "\n".join(lines)


def _show_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from papyra_cli.context import plugin_manager

    click.echo(version_text(plugin_manager(ctx)))
    ctx.exit(0)


def build_cli(plugins: PluginManager | None = None) -> PapyraGroup:
    """Build the ``papyra`` group with the built-in commands and those plugins contribute.

    ``plugins`` defaults to a fresh :class:`~papyra.PluginManager` loading the ``papyra``
    entry points (a broken plugin is reported, never fatal unless ``PAPYRA_STRICT_PLUGINS=1``).
    """
    pm = plugins if plugins is not None else PluginManager()

    @click.group(cls=PapyraGroup, context_settings=CONTEXT_SETTINGS)
    @click.option("--version", is_flag=True, expose_value=False, is_eager=True,
                  callback=_show_version, help="Show papyra's and every plugin's version.")
    @click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False),
                  default="error", show_default=True, envvar="PAPYRA_LOG_LEVEL",
                  show_envvar=True,
                  help="Also show papyra's own log lines at this level and above on stderr "
                       "(commands report their results themselves).")
    @debug_option
    @click.pass_context
    def cli(ctx: click.Context, log_level: str) -> None:
        """Check, repair, compact and inspect papyra stores.

        A store is named by --store URL, --path FILE_OR_DIR, PAPYRA_STORE or papyra.toml
        (flags win over the environment, which wins over the file).

        Exit codes: 0 ok, 1 anomalies found, 2 usage or configuration error, 3 recovery left
        anomalies, 4 store unavailable, 5 internal error.
        """
        ctx.obj = CliState(plugins=pm)
        configure_logging("DEBUG" if errors.debug_enabled() else log_level.upper(),
                          handler=CurrentStderr())

    assert isinstance(cli, PapyraGroup)
    cli.plugin_manager = pm
    pm.register_commands(cli)
    return cli


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    errors.reset()
    try:
        cli = build_cli()
    except BaseException as exc:  # e.g. a broken plugin under PAPYRA_STRICT_PLUGINS=1
        sys.exit(errors.translate(exc))
    cli.main(argv, prog_name="papyra")


if __name__ == "__main__":  # pragma: no cover
    main()
