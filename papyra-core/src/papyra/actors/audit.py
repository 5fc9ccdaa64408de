"""Audits: a point-in-time view of the system (also persisted as an ``audit`` record)."""

from __future__ import annotations

from collections.abc import Sequence

import attrs


@attrs.frozen(kw_only=True)
class ActorInfo:
    rid: int
    address: str
    name: str | None
    parent_rid: int | None
    children_rids: tuple[int, ...]
    alive: bool
    stopping: bool
    restarting: bool
    actor_type: str = ""

    @property
    def state(self) -> str:
        if self.restarting:
            return "restarting"
        if self.stopping:
            return "stopping"
        return "alive" if self.alive else "starting"

    def panel_line(self) -> tuple[str, ...]:
        return (
            str(self.rid),
            self.address,
            self.name or "-",
            self.actor_type or "-",
            self.state,
            "-" if self.parent_rid is None else str(self.parent_rid),
            ",".join(str(c) for c in self.children_rids) or "-",
        )


PANEL_HEADER = ("RID", "ADDRESS", "NAME", "ACTOR", "STATE", "PARENT", "CHILDREN")


def format_panel(rows: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    table = [PANEL_HEADER, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(PANEL_HEADER))]
    return tuple(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
        for r in table
    )


@attrs.frozen(kw_only=True)
class AuditReport:
    system_id: str
    timestamp: float
    total_actors: int
    alive_actors: int
    stopping_actors: int
    restarting_actors: int
    registry_size: int
    registry_orphans: tuple[str, ...] = ()
    registry_dead: tuple[str, ...] = ()
    dead_letters_count: int = 0
    actors: tuple[ActorInfo, ...] = ()

    def summary_lines(self) -> tuple[str, ...]:
        return (
            f"system: {self.system_id}",
            f"actors: total={self.total_actors} alive={self.alive_actors} "
            f"stopping={self.stopping_actors} restarting={self.restarting_actors}",
            f"registry: size={self.registry_size} orphans={len(self.registry_orphans)} "
            f"dead={len(self.registry_dead)}",
            f"dead letters: {self.dead_letters_count}",
        )

    def panel_lines(self) -> tuple[str, ...]:
        return format_panel([a.panel_line() for a in self.actors])
