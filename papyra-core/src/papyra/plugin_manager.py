"""Loading plugins from the ``papyra`` entry-point group and keeping what they registered.

One broken plugin never takes papyra down: each entry point is loaded on its own, a failure is
recorded (plugin, distribution, version, error) and warned once on stderr. With
``PAPYRA_STRICT_PLUGINS=1`` a failure raises :class:`~papyra.errors.PluginError`;
``PAPYRA_DISABLE_PLUGINS=a,b`` skips plugins by entry-point name. Nothing is created at import
time: build a :class:`PluginManager` (tests do) or call :func:`get_plugin_manager`.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from types import ModuleType
from typing import Any

import attrs
import pluggy

from papyra import hookspecs
from papyra.errors import DuplicateRegistrationError, PluginError, UnknownBackendError

log = logging.getLogger("papyra.plugins")

ENTRY_POINT_GROUP = "papyra"
BUILTIN_DISTRIBUTION = "papyra-core"


@attrs.define(kw_only=True)
class PluginInfo:
    """What ``papyra plugins`` shows for one plugin."""

    name: str
    distribution: str | None
    version: str | None
    status: str = "loaded"  # loaded | failed | disabled
    error: str | None = None
    hooks: list[str] = attrs.field(factory=list)
    components: list[str] = attrs.field(factory=list)
    builtin: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "hooks": sorted(self.hooks),
            "components": sorted(self.components),
            "status": self.status,
            "error": self.error,
        }


@attrs.frozen(kw_only=True)
class BackendSpec:
    name: str
    schemes: tuple[str, ...]
    factory: Callable[..., Any]
    description: str
    plugin: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "schemes": list(self.schemes),
            "plugin": self.plugin,
            "description": self.description,
        }


@attrs.frozen(kw_only=True)
class ExporterSpec:
    name: str
    factory: Callable[..., Any]
    description: str
    plugin: str


@attrs.frozen(kw_only=True)
class Registered:
    """A component registered by a plugin (retention rule, recovery strategy)."""

    name: str
    component: Any
    plugin: str


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


class PluginManager:
    """Plugins and the components they registered."""

    def __init__(
        self,
        *,
        entry_points: bool = True,
        builtins: bool = True,
        strict: bool | None = None,
        disabled: Iterable[str] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.strict = _truthy(os.environ.get("PAPYRA_STRICT_PLUGINS")) if strict is None else strict
        env_disabled = os.environ.get("PAPYRA_DISABLE_PLUGINS", "")
        self.disabled = frozenset(
            d.strip() for d in (env_disabled.split(",") if disabled is None else disabled)
            if d.strip()
        )
        self._warn = warn or (lambda msg: print(f"papyra: warning: {msg}", file=sys.stderr))
        self.infos: dict[str, PluginInfo] = {}
        self._backends: dict[str, BackendSpec] | None = None
        self._rules: dict[str, Registered] | None = None
        self._strategies: dict[str, Registered] | None = None
        self._exporters: dict[str, ExporterSpec] | None = None
        self._lock = threading.RLock()
        if builtins:
            from papyra import builtin_plugins

            self.register(builtin_plugins, "builtin", distribution=BUILTIN_DISTRIBUTION,
                          builtin=True)
        if entry_points:
            self.load_entry_points()
        self.pm.check_pending()

    # ------------------------------------------------------------------ loading

    def register(
        self,
        plugin: ModuleType | object,
        name: str,
        *,
        distribution: str | None = None,
        version: str | None = None,
        builtin: bool = False,
    ) -> None:
        """Register a plugin object directly (tests, embedded applications)."""
        if name in self.disabled:
            self.infos[name] = PluginInfo(name=name, distribution=distribution, version=version,
                                          status="disabled", builtin=builtin)
            return
        if version is None and distribution:
            version = _dist_version(distribution)
        self.pm.register(plugin, name=name)
        self._check_hooks(plugin, name)
        hooks = [h.name for h in self.pm.get_hookcallers(plugin) or []]
        self.infos[name] = PluginInfo(name=name, distribution=distribution, version=version,
                                      hooks=hooks, builtin=builtin)
        self._invalidate()

    def _check_hooks(self, plugin: object, name: str) -> None:
        """``check_pending`` for one plugin: a misspelled hook fails that plugin alone."""
        for caller in self.pm.get_hookcallers(plugin) or []:
            if caller.has_spec():
                continue
            if any(i.plugin is plugin and not i.optionalhook for i in caller.get_hookimpls()):
                self.pm.unregister(plugin)
                raise pluggy.PluginValidationError(
                    plugin,
                    f"unknown hook {caller.name!r} in plugin {name!r} "
                    f"(misspelled? papyra's hooks are: {', '.join(_hook_names())})",
                )

    def load_entry_points(self) -> None:
        for ep in _entry_points():
            dist = ep.dist.name if ep.dist is not None else None
            version = ep.dist.version if ep.dist is not None else None
            if ep.name in self.infos:
                continue
            if ep.name in self.disabled:
                self.infos[ep.name] = PluginInfo(name=ep.name, distribution=dist,
                                                 version=version, status="disabled")
                continue
            try:
                plugin = ep.load()
                self.register(plugin, ep.name, distribution=dist, version=version)
            except Exception as exc:  # a broken plugin must not take papyra down
                error = f"{type(exc).__name__}: {exc}"
                self.infos[ep.name] = PluginInfo(name=ep.name, distribution=dist,
                                                 version=version, status="failed", error=error)
                origin = dist or "unknown distribution"
                message = f"plugin {ep.name!r} ({origin}) failed to load: {error}"
                if self.strict:
                    raise PluginError(message) from exc
                self._warn(message + " (set PAPYRA_STRICT_PLUGINS=1 to make this fatal)")
                log.debug(message, exc_info=True)

    def _invalidate(self) -> None:
        self._backends = self._rules = self._strategies = self._exporters = None

    @property
    def failed(self) -> list[PluginInfo]:
        return [i for i in self.infos.values() if i.status == "failed"]

    # ------------------------------------------------------------------ registration

    def _collect(self, hook_name: str, make_register: Callable[[str], Callable[..., None]]) -> None:
        caller = getattr(self.pm.hook, hook_name)
        for impl in caller.get_hookimpls():  # registration order: builtins first
            register = make_register(impl.plugin_name)
            try:
                impl.function(register)
            except DuplicateRegistrationError:
                raise
            except Exception as exc:
                info = self.infos.get(impl.plugin_name)
                message = f"plugin {impl.plugin_name!r} failed in {hook_name}: {exc}"
                if info is not None:
                    info.status, info.error = "failed", f"{type(exc).__name__}: {exc}"
                if self.strict:
                    raise PluginError(message) from exc
                self._warn(message)

    def _note(self, plugin: str, component: str) -> None:
        info = self.infos.get(plugin)
        if info is not None and component not in info.components:
            info.components.append(component)

    def backends(self) -> dict[str, BackendSpec]:
        with self._lock:
            if self._backends is None:
                found: dict[str, BackendSpec] = {}

                def make(plugin: str) -> Callable[..., None]:
                    def register(name: str, *, schemes: Sequence[str], factory: Callable[..., Any],
                                 description: str = "") -> None:
                        if name in found:
                            raise DuplicateRegistrationError(
                                f"backend {name!r} is registered by both plugin "
                                f"{found[name].plugin!r} and plugin {plugin!r}"
                            )
                        for spec in found.values():
                            clash = set(spec.schemes) & {s.lower() for s in schemes}
                            if clash:
                                raise DuplicateRegistrationError(
                                    f"URL scheme {sorted(clash)[0]!r} is registered by both plugin "
                                    f"{spec.plugin!r} and plugin {plugin!r}"
                                )
                        found[name] = BackendSpec(
                            name=name, schemes=tuple(s.lower() for s in schemes), factory=factory,
                            description=description, plugin=plugin,
                        )
                        self._note(plugin, f"backend:{name}")

                    return register

                self._collect("papyra_register_backends", make)
                self._backends = found
            return self._backends

    def _named(self, hook: str, label: str) -> dict[str, Registered]:
        found: dict[str, Registered] = {}

        def make(plugin: str) -> Callable[..., None]:
            def register(component: Any) -> None:
                name = component.name
                if name in found:
                    raise DuplicateRegistrationError(
                        f"{label} {name!r} is registered by both plugin {found[name].plugin!r} "
                        f"and plugin {plugin!r}"
                    )
                found[name] = Registered(name=name, component=component, plugin=plugin)
                self._note(plugin, f"{label.replace(' ', '_')}:{name}")

            return register

        self._collect(hook, make)
        return found

    def retention_rules(self) -> dict[str, Any]:
        with self._lock:
            if self._rules is None:
                self._rules = self._named("papyra_register_retention_rules", "retention rule")
            return {n: r.component for n, r in self._rules.items()}

    def recovery_strategies(self) -> dict[str, Any]:
        with self._lock:
            if self._strategies is None:
                self._strategies = self._named(
                    "papyra_register_recovery_strategies", "recovery strategy"
                )
            return {n: r.component for n, r in self._strategies.items()}

    def metric_exporters(self) -> dict[str, ExporterSpec]:
        with self._lock:
            if self._exporters is None:
                found: dict[str, ExporterSpec] = {}

                def make(plugin: str) -> Callable[..., None]:
                    def register(name: str, *, factory: Callable[..., Any],
                                 description: str = "") -> None:
                        if name in found:
                            raise DuplicateRegistrationError(
                                f"metric exporter {name!r} is registered by both plugin "
                                f"{found[name].plugin!r} and plugin {plugin!r}"
                            )
                        found[name] = ExporterSpec(name=name, factory=factory,
                                                   description=description, plugin=plugin)
                        self._note(plugin, f"exporter:{name}")

                    return register

                self._collect("papyra_register_metric_exporters", make)
                self._exporters = found
            return self._exporters

    def register_commands(self, cli: Any) -> None:
        """Let plugins add click commands; a failing plugin is recorded, not fatal."""
        for impl in self.pm.hook.papyra_register_commands.get_hookimpls():
            try:
                impl.function(cli)
                self._note(impl.plugin_name, "commands")
            except Exception as exc:
                info = self.infos.get(impl.plugin_name)
                if info is not None:
                    info.status, info.error = "failed", f"{type(exc).__name__}: {exc}"
                message = f"plugin {impl.plugin_name!r} failed to add commands: {exc}"
                if self.strict:
                    raise PluginError(message) from exc
                self._warn(message)

    def load_all(self) -> None:
        """Run every registration hook now (so ``papyra plugins`` can show components)."""
        self.backends()
        self.retention_rules()
        self.recovery_strategies()
        self.metric_exporters()

    # ------------------------------------------------------------------ lookups

    def backend_for_scheme(self, scheme: str) -> BackendSpec:
        scheme = scheme.lower()
        backends = self.backends()
        for spec in backends.values():
            if scheme in spec.schemes:
                return spec
        if scheme in backends:
            return backends[scheme]
        known = sorted({s for spec in backends.values() for s in spec.schemes})
        hint = ""
        failed = [i.name for i in self.failed]
        if failed:
            hint = f"; plugins that failed to load: {', '.join(failed)}"
        raise UnknownBackendError(
            f"no backend for URL scheme {scheme!r} (installed: {', '.join(known) or 'none'}){hint}"
        )

    def recovery_strategy(self, name: str) -> Any:
        strategies = self.recovery_strategies()
        key = name.strip().lower()
        if key not in strategies:
            from papyra.errors import ConfigError

            raise ConfigError(
                f"unknown recovery mode {name!r} (expected one of {', '.join(sorted(strategies))})"
            )
        return strategies[key]

    # ------------------------------------------------------------------ observers

    def notify(self, hook_name: str, report: Any) -> None:
        """Call one observer hook, each implementation isolated from the others' failures."""
        caller = getattr(self.pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            try:
                impl.function(report)
            except Exception:
                log.exception("observer %s of plugin %r failed (ignored)", hook_name,
                              impl.plugin_name)

    def open_store(self, url: str, **options: Any) -> Any:
        """Build a store for ``url`` with the backend plugin serving its scheme."""
        from papyra.urls import StoreURL

        parsed = StoreURL.parse(url)
        spec = self.backend_for_scheme(parsed.scheme)
        store = spec.factory(parsed, **options)
        if getattr(store, "plugins", None) is None:
            store.plugins = self
        return store


def _hook_names() -> list[str]:
    return sorted(n for n in dir(hookspecs) if n.startswith("papyra_"))


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    seen: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in eps:
        seen.setdefault(ep.name, ep)
    return sorted(seen.values(), key=lambda e: e.name)


def _dist_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


_default: PluginManager | None = None
_default_lock = threading.Lock()


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager, built on first use (never at import)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = PluginManager()
        return _default


def set_plugin_manager(manager: PluginManager | None) -> None:
    """Replace (or with None, forget) the process-wide plugin manager."""
    global _default
    with _default_lock:
        _default = manager
