"""``papyra doctor run``: the pre-deployment gate.

The same check as ``papyra persistence startup-check`` (one implementation, in papyra-core),
plus what an operator wants to know before a deployment: plugins that failed to load and
whether the store can be used right now. Unlike ``startup-check``, the default mode is always
``fail_on_anomaly`` (the doctor never writes unless told to), whatever papyra.toml says.
"""

from __future__ import annotations

from typing import Any

import click
from papyra.errors import StoreNotFoundError
from papyra.store import Store

from papyra_cli import errors
from papyra_cli.commands.persistence import run_startup_check, startup_config, startup_options
from papyra_cli.context import StoreTarget, common_options
from papyra_cli.output import say, warn
from papyra_cli.params import STARTUP_MODES, Mode


@click.group()
def doctor() -> None:
    """Diagnose a store before deploying (exit code gates the deployment)."""


@doctor.command("run")
@click.option("--mode", type=Mode(STARTUP_MODES, "startup mode"), default="fail_on_anomaly",
              show_default=True,
              help="ignore | scan_only | fail_on_anomaly | recover (case-insensitive).")
@startup_options
@common_options
def run(target: StoreTarget, json_: bool, mode: str, recovery_mode: str | None,
        quarantine_dir: str | None) -> None:
    """Check plugins, the store's health and its records; with --mode recover, repair it.

    Exit 0 when the store is fine (a store that does not exist yet is a clean first boot),
    1 when anomalies are left in place, 3 when recovery left anomalies, 4 when the store is
    unavailable.
    """
    config = startup_config(target, mode, recovery_mode, quarantine_dir, default_mode=mode)
    failed = [i for i in target.plugins.infos.values() if i.status == "failed"]
    checks: list[dict[str, Any]] = [{
        "name": "plugins",
        "ok": not failed,
        "detail": ("all plugins loaded" if not failed else
                   "; ".join(f"{i.name} ({i.distribution}): {i.error}" for i in failed)),
    }]

    async def health(store: Store) -> dict[str, Any]:
        try:
            exists = await store.exists()
        except StoreNotFoundError:
            exists = False
        h = await store.health()
        return {"name": "health", "ok": h.ok,
                "detail": ("usable" if h.ok else str(h.reason))
                + ("" if exists else " (no log yet: first boot)")}

    checks.append(target.run(health))
    if not json_:
        say(f"store: {target.display} (from {target.source})")
        for check in checks:
            if check["ok"]:
                say(f"✔ {check['name']}: {check['detail']}", fg="green")
            else:
                warn(f"{check['name']}: {check['detail']}")
    result = run_startup_check(target, config, json_=json_, extra={"checks": checks})
    if result.exit_code:
        raise errors.ExitWith(result.exit_code)
