"""Shared plumbing of every ``papyra`` command: the plugin manager, store selection and the
common options.

Commands (built-in or from plugins) stack the module-level decorators::

    from papyra_cli.context import StoreTarget, debug_option, json_option, store_options

    @click.command()
    @store_options
    @json_option
    @debug_option
    def show(target: StoreTarget, json_: bool) -> None:
        async def body(store):
            return await store.stats()
        stats = target.run(body)

``store_options`` adds ``--store URL`` (env ``PAPYRA_STORE``), ``--path P`` (shorthand: an
existing directory is a ``rotation`` store, anything else a ``json`` file) and ``--config FILE``
(env ``PAPYRA_CONFIG``), and passes one :class:`StoreTarget` as ``target``. The store URL is
resolved with the precedence of DESIGN §9: flags, then ``PAPYRA_STORE``, then the config file.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import attrs
import click
from click.core import ParameterSource
from click.shell_completion import CompletionItem
from papyra.config import PapyraConfig, load_config
from papyra.plugin_manager import PluginManager, get_plugin_manager
from papyra.retention import RetentionPolicy
from papyra.store import Store
from papyra.urls import StoreURL, redact, url_for_path

from papyra_cli import errors

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


# --------------------------------------------------------------------------- CLI state


@attrs.define
class CliState:
    """What the root group hands every command through ``ctx.obj``."""

    plugins: PluginManager


def plugin_manager(ctx: click.Context | None = None) -> PluginManager:
    """The plugin manager of this invocation (also usable from shell-completion callbacks)."""
    ctx = ctx or click.get_current_context(silent=True)
    if ctx is not None:
        root = ctx.find_root()
        if isinstance(root.obj, CliState):
            return root.obj.plugins
        pm = getattr(root.command, "plugin_manager", None)
        if isinstance(pm, PluginManager):
            return pm
    return get_plugin_manager()


# --------------------------------------------------------------------------- store selection


@attrs.frozen(kw_only=True)
class StoreTarget:
    """The store a command works on, resolved from flags, environment and config file."""

    url: str | None
    """The store URL (may hold a password: print :attr:`display` instead)."""
    source: str
    """Where the URL came from: ``--path``, ``--store``, ``PAPYRA_STORE``, the config file, or
    ``none``."""
    config: PapyraConfig
    plugins: PluginManager

    @property
    def display(self) -> str:
        """The URL with any password removed."""
        return redact(self.url) if self.url else "(no store)"

    def require_url(self) -> str:
        if not self.url:
            raise errors.CommandError(
                "no store given: use --path FILE_OR_DIR, --store URL, set PAPYRA_STORE, or "
                "name one in papyra.toml ([store] url)", errors.USAGE
            )
        return self.url

    def store_kwargs(self) -> dict[str, Any]:
        """Backend options from the config file: ``[store]`` members, retention, system id."""
        return self.store_kwargs_for(self.require_url())

    def store_kwargs_for(self, store_url: str) -> dict[str, Any]:
        """The config file's backend options, for the store at ``store_url``."""
        options: dict[str, Any] = dict(self.config.store_options)
        if not self.config.retention.unbounded:
            options.setdefault("retention", self.config.retention)
        url = StoreURL.parse(store_url)
        system_id = self.config.system.get("system_id")
        if system_id and "system_id" not in url.query:
            options.setdefault("system_id", str(system_id))
        return options

    def open(self, **overrides: Any) -> Store:
        """Build the store with the backend plugin serving the URL's scheme (no I/O yet)."""
        options = {**self.store_kwargs(), **overrides}
        store: Store = self.plugins.open_store(self.require_url(), **options)
        return store

    def run(self, body: Callable[[Store], Awaitable[T]], **overrides: Any) -> T:
        """Open the store, run ``await body(store)`` on a fresh event loop, close the store."""

        async def main() -> T:
            store = self.open(**overrides)
            async with store:
                return await body(store)

        return run_async(main())

    @property
    def retention(self) -> RetentionPolicy:
        return self.config.retention


def run_async(coro: Awaitable[T]) -> T:
    """Run a coroutine to completion (each command owns one event loop)."""

    async def wrap() -> T:
        return await coro

    return asyncio.run(wrap())


def resolve_target(
    ctx: click.Context,
    *,
    store_url: str | None,
    path: str | None,
    config_file: str | None,
    env: Mapping[str, str] | None = None,
) -> StoreTarget:
    """Apply the precedence of DESIGN §9 to the store options of one command."""
    env = os.environ if env is None else env
    store_source = ctx.get_parameter_source("store_url")
    config_source = ctx.get_parameter_source("config_file")
    from_flag = store_source is ParameterSource.COMMANDLINE
    if path is not None and store_url is not None and from_flag:
        raise click.UsageError("--path and --store name a store twice; give only one", ctx)
    explicit_config = config_file if config_source is ParameterSource.COMMANDLINE else None
    config = load_config(explicit_config, env=env)
    pm = plugin_manager(ctx)
    if path is not None:
        if not path.strip():
            raise click.BadParameter("empty path", ctx, param_hint="--path")
        return StoreTarget(url=url_for_path(path), source="--path", config=config, plugins=pm)
    if store_url:
        source = "--store" if from_flag else "PAPYRA_STORE"
        StoreURL.parse(store_url)
        return StoreTarget(url=store_url, source=source, config=config, plugins=pm)
    if config.store_url:
        return StoreTarget(url=config.store_url, source=config.source or "config file",
                           config=config, plugins=pm)
    return StoreTarget(url=None, source="none", config=config, plugins=pm)


# --------------------------------------------------------------------------- completion


def complete_store_url(ctx: click.Context, param: click.Parameter,
                       incomplete: str) -> list[CompletionItem]:
    """Complete ``--store`` with the URL schemes of the installed backends."""
    if "://" in incomplete:
        return []
    try:
        backends = plugin_manager(ctx).backends()
    except Exception:  # completion must never fail loudly
        return []
    items = []
    for spec in backends.values():
        for scheme in spec.schemes:
            candidate = f"{scheme}://"
            if candidate.startswith(incomplete):
                items.append(CompletionItem(candidate, help=spec.description))
    return items


def backend_names(ctx: click.Context | None) -> list[str]:
    try:
        return sorted(plugin_manager(ctx).backends())
    except Exception:
        return []


def recovery_modes(ctx: click.Context | None) -> list[str]:
    """Recovery strategies registered by plugins (built-ins: ignore, repair, quarantine)."""
    try:
        return sorted(plugin_manager(ctx).recovery_strategies())
    except Exception:
        return ["ignore", "quarantine", "repair"]


# --------------------------------------------------------------------------- decorators


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        errors.set_debug(True)
        logging.getLogger("papyra").setLevel(logging.DEBUG)
    return value


debug_option = click.option(
    "--debug", is_flag=True, expose_value=False, is_eager=True, callback=_set_debug,
    envvar="PAPYRA_DEBUG", show_envvar=True,
    help="Show the traceback of a failure (never needed for expected failures).",
)
"""``--debug``: tracebacks on failure. Not passed to the command."""

json_option = click.option(
    "json_", "--json", is_flag=True, default=False,
    help="Machine output on stdout (JSON); messages still go to stderr.",
)
"""``--json`` as parameter ``json_``."""


def store_options(func: F) -> F:
    """Add ``--store``, ``--path`` and ``--config``; pass the resolved :class:`StoreTarget` as
    ``target``."""

    @click.option(
        "--config", "config_file", metavar="FILE", envvar="PAPYRA_CONFIG", show_envvar=True,
        type=click.Path(dir_okay=False, path_type=str),
        help="papyra.toml to read (default: ./papyra.toml when present).",
    )
    @click.option(
        "--path", "path", metavar="PATH", type=click.Path(path_type=str),
        help="Shorthand for a file store: an existing directory is a rotation store, "
             "anything else a JSON file.",
    )
    @click.option(
        "--store", "store_url", metavar="URL", envvar="PAPYRA_STORE", show_envvar=True,
        shell_complete=complete_store_url,
        help="Store URL, e.g. json:///var/lib/app/papyra.ndjson, rotation:///var/lib/app/log/, "
             "redis://localhost:6379/0?system_id=orders.",
    )
    @click.pass_context
    @functools.wraps(func)
    def wrapper(ctx: click.Context, /, *args: Any, store_url: str | None, path: str | None,
                config_file: str | None, **kwargs: Any) -> Any:
        kwargs["target"] = resolve_target(ctx, store_url=store_url, path=path,
                                          config_file=config_file)
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def common_options(func: F) -> F:
    """``store_options`` + ``--json`` + ``--debug``: what nearly every command takes."""
    return store_options(json_option(debug_option(func)))
