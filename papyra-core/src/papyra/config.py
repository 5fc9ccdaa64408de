"""``papyra.toml``: the one configuration file read by the CLI and ``ActorSystem.from_config``.

Precedence (DESIGN §9): command-line flags, then the environment (``PAPYRA_STORE``,
``PAPYRA_CONFIG``), then the file (``--config FILE``, ``PAPYRA_CONFIG``, else ``./papyra.toml``
when present). Relative file paths in the file's store URL are taken from the file's directory.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from papyra.errors import ConfigError
from papyra.retention import RetentionPolicy
from papyra.startup import StartupConfig, StartupMode
from papyra.store import FSYNC_POLICIES
from papyra.urls import FILE_SCHEMES, StoreURL

SECTIONS = frozenset({"store", "retention", "startup", "recovery", "metrics", "system"})


@attrs.frozen(kw_only=True)
class PapyraConfig:
    """Settings resolved from file and environment."""

    store_url: str | None = None
    store_options: Mapping[str, Any] = attrs.field(factory=dict)
    retention: RetentionPolicy = attrs.field(factory=RetentionPolicy)
    startup: StartupConfig = attrs.field(factory=StartupConfig)
    metrics_exporters: tuple[str, ...] = ()
    system: Mapping[str, Any] = attrs.field(factory=dict)
    source: str | None = None

    def with_store(self, url: str | None) -> PapyraConfig:
        return attrs.evolve(self, store_url=url) if url else self


def find_config_file(explicit: str | os.PathLike[str] | None = None,
                     env: Mapping[str, str] | None = None) -> Path | None:
    env = os.environ if env is None else env
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        return p
    if env.get("PAPYRA_CONFIG"):
        p = Path(env["PAPYRA_CONFIG"]).expanduser()
        if not p.is_file():
            raise ConfigError(f"config file not found: {p} (from PAPYRA_CONFIG)")
        return p
    p = Path("papyra.toml")
    return p if p.is_file() else None


def _resolve_url(url: str, base: Path) -> str:
    parsed = StoreURL.parse(url)
    if parsed.scheme in FILE_SCHEMES:
        p = Path(os.path.expanduser(parsed.path))
        if not p.is_absolute():
            return f"{parsed.scheme}://{(base / p).resolve()}"
    return url


def parse_config(data: Mapping[str, Any], *, base: Path, source: str | None) -> PapyraConfig:
    unknown = set(data) - SECTIONS
    if unknown:
        raise ConfigError(f"{source or 'config'}: unknown section [{sorted(unknown)[0]}]")
    store = dict(data.get("store", {}))
    url = store.pop("url", None)
    if url is not None:
        if not isinstance(url, str):
            raise ConfigError(f"{source}: [store] url must be a string")
        url = _resolve_url(url, base)
    fsync = store.get("fsync")
    if fsync is not None and fsync not in FSYNC_POLICIES:
        raise ConfigError(f"{source}: [store] fsync must be one of {', '.join(FSYNC_POLICIES)}")
    retention = RetentionPolicy.from_mapping(dict(data.get("retention", {})))
    startup_section = dict(data.get("startup", {}))
    recovery_section = dict(data.get("recovery", {}))
    try:
        startup = StartupConfig(
            mode=StartupMode.parse(startup_section.get("mode", "fail_on_anomaly")),
            recovery_mode=recovery_section.get("mode"),
            quarantine_dir=recovery_section.get("quarantine_dir"),
        )
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    exporters = data.get("metrics", {}).get("exporters", [])
    if not isinstance(exporters, list) or not all(isinstance(e, str) for e in exporters):
        raise ConfigError(f"{source}: [metrics] exporters must be a list of names")
    return PapyraConfig(store_url=url, store_options=store, retention=retention, startup=startup,
                        metrics_exporters=tuple(exporters), system=dict(data.get("system", {})),
                        source=source)


def load_config(path: str | os.PathLike[str] | None = None, *,
                env: Mapping[str, str] | None = None) -> PapyraConfig:
    """Read the config file (if any) and apply ``PAPYRA_STORE`` on top."""
    env = os.environ if env is None else env
    file = find_config_file(path, env)
    if file is None:
        config = PapyraConfig()
    else:
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: invalid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"{file}: cannot read config: {exc.strerror}") from None
        config = parse_config(data, base=file.parent.resolve(), source=str(file))
    if env.get("PAPYRA_STORE"):
        config = config.with_store(env["PAPYRA_STORE"])
    return config
