"""``papyra persistence migrate``: upgrade papyra 0.3.0 (legacy) logs to format v1.

- Without ``--to``: the store (``--path``/``--store``/config) is rewritten in place by its
  backend's ``migrate()`` (atomic: temp file, fsync, rename).
- With ``--to URL``: the legacy file given by ``--path`` — or the 0.3.0 rotating set ``path``,
  ``path.1`` … ``path.N`` (``path.N`` is the oldest) — is copied, oldest first, into the store
  at URL. Record ids and timestamps are kept; records already in the target (same id) are
  skipped, so running it again copies nothing twice.

Either way the source must be clean apart from its legacy records: with anomalies, migrate
exits 1 and changes nothing (run ``papyra persistence recover`` first).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import click
from papyra import codec
from papyra.errors import StoreNotFoundError, UnsupportedOperationError
from papyra.records import GapRecord, Record
from papyra.reports import Anomaly, ScanReport
from papyra.store import Store
from papyra.urls import StoreURL, redact

from papyra_cli import errors, render
from papyra_cli.context import StoreTarget, common_options, complete_store_url, run_async
from papyra_cli.output import activity, emit_json, say

BATCH = 1000


def rotating_set(path: Path) -> list[Path]:
    """``path`` and its 0.3.0 rotated siblings ``path.1`` … ``path.N``, oldest first."""
    numbered: list[tuple[int, Path]] = []
    pattern = re.compile(re.escape(path.name) + r"\.(\d+)$")
    if path.parent.is_dir():
        for p in path.parent.iterdir():
            m = pattern.match(p.name)
            if m and p.is_file():
                numbered.append((int(m.group(1)), p))
    files = [p for _, p in sorted(numbered, reverse=True)]
    if path.is_file():
        files.append(path)
    return files


def _lines(path: Path) -> Iterator[tuple[int, int, bytes, bool]]:
    """(line number, offset, line without newline, had newline) of a file, streaming."""
    offset = 0
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, start=1):
            has_nl = raw.endswith(b"\n")
            yield n, offset, raw[:-1] if has_nl else raw, has_nl
            offset += len(raw)


def check_source(files: list[Path]) -> tuple[int, int, list[Anomaly]]:
    """Decode every line of the legacy files: (records, legacy records, anomalies)."""
    records = legacy = 0
    found: list[Anomaly] = []
    for i, path in enumerate(files):
        last = i == len(files) - 1
        for n, offset, line, has_nl in _lines(path):
            try:
                rec = codec.decode(line)
            except codec.DecodeError as exc:
                kind = exc.kind
                if last and not has_nl:
                    kind = "truncated_tail"
                found.append(Anomaly(kind=kind, file=str(path), offset=offset,
                                     length=len(line) + has_nl, line=n, detail=exc.detail))
                continue
            if not has_nl:
                found.append(Anomaly(kind="missing_trailing_newline", file=str(path),
                                     offset=offset, length=len(line), line=n,
                                     detail="the last record has no newline"))
            if isinstance(rec, GapRecord):
                continue
            records += 1
            legacy += rec.legacy
    return records, legacy, found


def _records(files: list[Path]) -> Iterator[Record]:
    for path in files:
        for _n, _offset, line, _nl in _lines(path):
            rec = codec.decode(line)
            if isinstance(rec, GapRecord):
                continue
            yield attrs.evolve(rec, seq=None, legacy=False)


async def copy_into(store: Store, files: list[Path], *, dry_run: bool) -> dict[str, int]:
    """Append the records of ``files`` to ``store`` (skipping ids it already holds)."""
    existing: set[str] = set()
    if await store.exists():
        async for rec in store.read(apply_retention=False):
            existing.add(rec.id)
    copied = skipped = 0
    batch: list[Record] = []
    for rec in _records(files):
        if rec.id in existing:
            skipped += 1
            continue
        existing.add(rec.id)
        copied += 1
        if dry_run:
            continue
        batch.append(rec)
        if len(batch) >= BATCH:
            await store.append(batch)
            batch = []
    if batch:
        await store.append(batch)
    return {"copied": copied, "skipped": skipped}


@click.command()
@click.option("--to", "to_url", metavar="URL", shell_complete=complete_store_url,
              help="Copy the legacy file (or rotating set) into the store at URL instead of "
                   "rewriting it in place.")
@click.option("--dry-run", is_flag=True, help="Check and count only; change nothing.")
@common_options
def migrate(target: StoreTarget, json_: bool, to_url: str | None, dry_run: bool) -> None:
    """Upgrade a papyra 0.3.0 log to format v1 (in place, or copied with --to URL).

    Exit 1 (nothing changed) when the source has anomalies: recover first.
    """
    if to_url is None:
        _migrate_in_place(target, json_=json_, dry_run=dry_run)
    else:
        _migrate_copy(target, to_url, json_=json_, dry_run=dry_run)


def _migrate_in_place(target: StoreTarget, *, json_: bool, dry_run: bool) -> None:
    async def body(store: Store) -> dict[str, Any]:
        if not await store.exists():
            raise StoreNotFoundError(f"{store.url}: no log found")
        migrate_fn = getattr(store, "migrate", None)
        if migrate_fn is None:
            raise UnsupportedOperationError(
                f"backend {store.backend_name!r} cannot migrate in place; "
                "use 'papyra persistence migrate --path OLD --to URL'")
        async with activity(f"scanning {store.url}", enabled=not json_):
            before: ScanReport = await store.scan()
        out: dict[str, Any] = {"store": store.url, "to": None, "dry_run": dry_run,
                               "before": before.to_dict(), "migrated": 0, "after": None}
        if not before.clean or dry_run or before.legacy_records == 0:
            out["migrated"] = 0 if not dry_run else before.legacy_records
            return out
        async with activity(f"migrating {store.url}", enabled=not json_):
            result = await migrate_fn()
        out["migrated"] = before.legacy_records
        if hasattr(result, "to_dict"):
            out["result"] = result.to_dict()
        elif attrs.has(type(result)):
            out["result"] = attrs.asdict(result)
        out["after"] = (await store.scan()).to_dict()
        return out

    out = target.run(body)
    before = out["before"]
    _finish(out, clean=before["clean"], legacy=before["legacy_records"], json_=json_,
            dry_run=dry_run)


def _migrate_copy(target: StoreTarget, to_url: str, *, json_: bool, dry_run: bool) -> None:
    if target.source != "--path" or target.url is None:
        raise click.UsageError("--to needs --path OLD: the legacy file (or rotating set) to copy")
    StoreURL.parse(to_url)
    source = StoreURL.parse(target.url).file_path()
    files = rotating_set(source)
    if not files:
        raise StoreNotFoundError(f"{source}: no legacy file found")
    records, legacy, found = check_source(files)
    out: dict[str, Any] = {
        "store": target.display, "to": redact(to_url), "dry_run": dry_run,
        "files": [str(f) for f in files], "records": records, "legacy_records": legacy,
        "anomalies": [a.to_dict() for a in found], "migrated": 0, "skipped": 0,
    }
    clean = not found
    if clean:
        async def body() -> dict[str, int]:
            store: Store = target.plugins.open_store(to_url, **target.store_kwargs_for(to_url))
            async with store, activity(f"copying into {store.url}", enabled=not json_):
                return await copy_into(store, files, dry_run=dry_run)

        counts = run_async(body())
        out["migrated"], out["skipped"] = counts["copied"], counts["skipped"]
    if json_:
        out["clean"] = clean
        emit_json(out)
    else:
        if not clean:
            say(f"✖ {target.display}: {len(found)} anomalies; nothing copied "
                "(run 'papyra persistence recover' on it first)", fg="red")
            for a in found[: render.MAX_LISTED]:
                say(f"  error: {a.describe()}", fg="red")
        else:
            verb = "would copy" if dry_run else "copied"
            say(f"✔ {verb} {out['migrated']} records from {len(files)} file(s) into "
                f"{redact(to_url)} ({out['skipped']} already there)", fg="green")
    if not clean:
        raise errors.ExitWith(errors.ANOMALIES)


def _finish(out: dict[str, Any], *, clean: bool, legacy: int, json_: bool, dry_run: bool) -> None:
    if json_:
        out["clean"] = clean
        emit_json(out)
    elif not clean:
        say(f"✖ {out['store']}: anomalies found; nothing migrated "
            "(run 'papyra persistence recover' first)", fg="red")
        for a in out["before"]["anomalies"][: render.MAX_LISTED]:
            say(f"  {a['severity']}: {Anomaly(**a).describe()}", fg="red")
    elif legacy == 0:
        say(f"✔ {out['store']}: no legacy records; nothing to migrate", fg="green")
    elif dry_run:
        say(f"{out['store']}: would migrate {legacy} legacy records to format v1 "
            "(dry run; nothing changed)")
    else:
        say(f"✔ {out['store']}: migrated {legacy} legacy records to format v1", fg="green")
    if not clean:
        raise errors.ExitWith(errors.ANOMALIES)
