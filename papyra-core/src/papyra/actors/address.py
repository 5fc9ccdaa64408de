"""Actor addresses: ``system:id`` (``system://id`` is accepted when parsing, as in 0.3.0)."""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen(order=True)
class ActorAddress:
    """Where an actor lives: its system's id and a number unique within that system."""

    system: str
    actor_id: int

    def __str__(self) -> str:
        return f"{self.system}:{self.actor_id}"

    @classmethod
    def parse(cls, text: str) -> ActorAddress:
        """Parse ``"orders:3"`` or ``"orders://3"``; ``ValueError`` for anything else."""
        raw = text.strip()
        sep = "://" if "://" in raw else ":"
        system, found, number = raw.rpartition(sep)
        if not found or not system or not number.isdigit():
            raise ValueError(f"not an actor address: {text!r} (expected 'system:id')")
        return cls(system, int(number))

    @classmethod
    def try_parse(cls, text: str) -> ActorAddress | None:
        try:
            return cls.parse(text)
        except ValueError:
            return None

    def to_dict(self) -> dict[str, Any]:
        return {"system": self.system, "actor_id": self.actor_id}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ActorAddress:
        return cls(str(data["system"]), int(data["actor_id"]))
