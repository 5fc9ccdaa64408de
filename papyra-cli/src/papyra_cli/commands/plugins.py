"""``papyra plugins`` and ``papyra backends``: what is installed, and whether it loaded.

Both work with a broken plugin installed: its failure is shown, never fatal (unless
``PAPYRA_STRICT_PLUGINS=1``).
"""

from __future__ import annotations

from typing import Any

import click
from papyra.errors import PluginError

from papyra_cli.context import backend_names, debug_option, json_option, plugin_manager
from papyra_cli.output import emit_json, say, table, warn
from papyra_cli.params import Mode


@click.command()
@json_option
@debug_option
@click.pass_context
def plugins(ctx: click.Context, json_: bool) -> None:
    """List installed plugins: distribution, version, hooks, components, load status."""
    pm = plugin_manager(ctx)
    try:
        pm.load_all()
    except PluginError as exc:
        if pm.strict:
            raise
        warn(str(exc))
    infos = sorted(pm.infos.values(), key=lambda i: (not i.builtin, i.name))
    if json_:
        emit_json([i.to_dict() for i in infos])
        return
    rows = []
    for info in infos:
        rows.append((info.name, info.distribution, info.version, info.status,
                     ", ".join(sorted(info.components)) or "-"))
    table(("NAME", "DISTRIBUTION", "VERSION", "STATUS", "COMPONENTS"), rows)
    for info in infos:
        if info.error:
            say(f"  {info.name}: {info.error}", fg="red")


def _backends(ctx: click.Context) -> list[dict[str, Any]]:
    return [spec.to_dict() for spec in sorted(plugin_manager(ctx).backends().values(),
                                               key=lambda s: s.name)]


@click.command()
@click.argument("name", required=False,
                type=Mode(lambda ctx: backend_names(ctx), "backend"))
@json_option
@debug_option
@click.pass_context
def backends(ctx: click.Context, json_: bool, name: str | None) -> None:
    """List storage backends (name, URL schemes, plugin); NAME shows one."""
    found = _backends(ctx)
    if name is not None:
        found = [b for b in found if b["name"] == name]
    if json_:
        emit_json(found)
        return
    table(("NAME", "SCHEMES", "PLUGIN", "DESCRIPTION"),
          [(b["name"], ", ".join(f"{s}://" for s in b["schemes"]), b["plugin"],
            b["description"]) for b in found])
