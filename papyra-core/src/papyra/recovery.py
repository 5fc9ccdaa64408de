"""Recovery strategies (plugins) and the planning every backend shares (DESIGN §6).

A strategy turns a :class:`~papyra.reports.ScanReport` into a list of
:class:`~papyra.reports.RecoveryAction`; the backend carries the actions out (and may add
``gap`` actions, since only it knows the seqs around a removed run).

- ``ignore`` plans nothing.
- ``repair`` truncates a torn tail, adds a missing final newline, drops bad lines (only those),
  deletes papyra's own leftovers and never touches foreign files. Lines of a *newer* format
  version are not deleted by ``repair`` (that would destroy data a newer papyra can read):
  they stay and are reported; use ``quarantine`` to move them aside.
- ``quarantine`` is ``repair`` that first copies every removed byte range into the quarantine
  directory (and moves leftovers there instead of deleting them).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from papyra.reports import Anomaly, RecoveryAction, ScanReport

LINE_KINDS = frozenset({
    "invalid_json", "invalid_utf8", "schema_violation", "checksum_mismatch",
    "unsupported_version", "seq_regression", "malformed_entry",
})


def plan_repair(
    report: ScanReport, *, quarantine_dir: str | None = None, keep_unsupported: bool = True
) -> list[RecoveryAction]:
    """The shared plan for ``repair`` (``quarantine_dir=None``) and ``quarantine``."""
    quarantine = quarantine_dir is not None
    actions: list[RecoveryAction] = []
    for a in report.anomalies:
        if a.severity != "error":
            continue
        if a.kind == "unsupported_version" and keep_unsupported and not quarantine:
            continue
        if a.kind in LINE_KINDS:
            if quarantine:
                actions.append(_quarantine(a, quarantine_dir))
            actions.append(RecoveryAction(action="drop", file=a.file or a.stream,
                                          offset=a.offset, length=a.length, anomaly=a,
                                          detail=a.entry_id or ""))
        elif a.kind == "truncated_tail":
            if quarantine:
                actions.append(_quarantine(a, quarantine_dir))
            actions.append(RecoveryAction(action="truncate", file=a.file, offset=a.offset,
                                          length=a.length, anomaly=a))
        elif a.kind == "missing_trailing_newline":
            end = (a.offset or 0) + (a.length or 0)
            actions.append(RecoveryAction(action="newline", file=a.file, offset=end, length=1,
                                          anomaly=a))
        elif a.kind == "orphaned_file":
            if quarantine:
                actions.append(RecoveryAction(action="move", file=a.file, offset=0,
                                              length=a.length, to=quarantine_dir, anomaly=a))
            else:
                actions.append(RecoveryAction(action="delete", file=a.file, offset=0,
                                              length=a.length, anomaly=a))
        elif a.kind == "seq_gap":
            actions.append(RecoveryAction(action="gap", file=a.file, offset=a.offset, length=0,
                                          anomaly=a, detail=a.detail))
        # unreadable, missing_group, stale_pending: nothing safe to do here; a backend may
        # extend the plan (e.g. Redis recreates a missing consumer group).
    return actions


def _quarantine(a: Anomaly, quarantine_dir: str | None) -> RecoveryAction:
    return RecoveryAction(action="quarantine", file=a.file or a.stream, offset=a.offset,
                          length=a.length, to=quarantine_dir, anomaly=a,
                          detail=a.entry_id or "")


@attrs.frozen
class IgnoreStrategy:
    name: str = "ignore"
    description: str = "report only; write nothing"
    writes: bool = False

    def plan(self, report: ScanReport, *, quarantine_dir: str | None = None
             ) -> Sequence[RecoveryAction]:
        return []


@attrs.frozen
class RepairStrategy:
    name: str = "repair"
    description: str = (
        "truncate torn tails, drop bad lines (gap records explain them), delete leftovers"
    )
    writes: bool = True

    def plan(self, report: ScanReport, *, quarantine_dir: str | None = None
             ) -> Sequence[RecoveryAction]:
        return plan_repair(report)


@attrs.frozen
class QuarantineStrategy:
    name: str = "quarantine"
    description: str = "as repair, but copy every removed byte into the quarantine directory first"
    writes: bool = True

    def plan(self, report: ScanReport, *, quarantine_dir: str | None = None
             ) -> Sequence[RecoveryAction]:
        return plan_repair(report, quarantine_dir=quarantine_dir or "")


BUILTIN_STRATEGIES = (IgnoreStrategy(), RepairStrategy(), QuarantineStrategy())
