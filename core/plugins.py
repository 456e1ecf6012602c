"""The plugin manager: the engine's default plugins, installed plugins (entry points in the
group ``observatory``, built-ins included) and extra modules, all loaded the same way and
checked at start-up.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable, Iterator

import pluggy

from core import hookspecs
from core.registry import Registry
from core.types import Analysis, ObservationType, ProjectContext

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "observatory"
DEFAULT_PLUGINS = ("core.builtin.checks", "core.builtin.grading", "core.builtin.columns")


class PluginError(RuntimeError):
    """A plugin could not be loaded or is inconsistent; the message names the plugin."""


@dataclass
class PluginInfo:
    name: str
    version: str
    module: str
    builtin: bool


@dataclass
class PluginHost:
    """The loaded plugins and what they registered at start-up."""

    pm: pluggy.PluginManager
    registry: Registry
    info: dict[str, PluginInfo]
    observation_types: dict[str, ObservationType] = field(default_factory=dict)
    analyses: dict[str, Analysis] = field(default_factory=dict)

    def is_default(self, plugin_name: str) -> bool:
        return plugin_name.startswith("core.")

    def hooks_of(self, plugin_name: str) -> list[str]:
        plugin = self.pm.get_plugin(plugin_name)
        return sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])

    def enabled_impls(self, hook_name: str, project: ProjectContext) -> Iterator[tuple[str, Callable[..., Any]]]:
        """The implementations of ``hook_name`` that ``project`` enables, in pluggy's call order.

        Each is returned as (plugin name, a function taking the hook's keyword arguments).
        """
        hook = getattr(self.pm.hook, hook_name)
        for impl in reversed(hook.get_hookimpls()):
            if self.is_default(impl.plugin_name) or project.enables(impl.plugin_name):
                yield impl.plugin_name, _bind(impl)

    def impl_of(self, hook_name: str, plugin_name: str) -> Callable[..., Any] | None:
        hook = getattr(self.pm.hook, hook_name)
        for impl in hook.get_hookimpls():
            if impl.plugin_name == plugin_name:
                return _bind(impl)
        return None

    def enriching_services(self, project: ProjectContext) -> list[str]:
        """Services of ``project`` that implement ``enrich_observation``."""
        return [name for name, _ in self.enabled_impls("enrich_observation", project)]


def _bind(impl: pluggy.HookImpl) -> Callable[..., Any]:
    argnames = impl.argnames

    def call(**kwargs: Any) -> Any:
        return impl.function(**{name: kwargs[name] for name in argnames})

    return call


def _version_of(module: ModuleType, dist: str | None) -> str:
    if dist:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return str(getattr(module, "__version__", "0.0.0"))


def _import(name: str, module_path: str) -> ModuleType:
    try:
        return importlib.import_module(module_path)
    except Exception as exc:  # a broken plugin must name itself, whatever it raised
        raise PluginError(f"plugin {name!r}: cannot import {module_path!r}: {type(exc).__name__}: {exc}") from exc


def _register(pm: pluggy.PluginManager, name: str, module: ModuleType) -> None:
    try:
        pm.register(module, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {name!r}: {exc}") from exc
    except ValueError as exc:
        raise PluginError(f"plugin {name!r}: {exc}") from exc


def discover() -> list[tuple[str, str, str | None]]:
    """(name, module path, distribution) of every installed plugin's entry point."""
    found = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist else None
        found.append((ep.name, ep.value.split(":")[0], dist))
    return found


def build_host(registry: Registry, extra_modules: str = "") -> PluginHost:
    """Load every plugin, check it against the hook specs and ``registry``; raise PluginError."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    info: dict[str, PluginInfo] = {}
    from core import __version__

    for path in DEFAULT_PLUGINS:
        _register(pm, path, _import(path, path))
        info[path] = PluginInfo(path, __version__, path, builtin=True)
    candidates = discover()
    for item in filter(None, (m.strip() for m in extra_modules.split(","))):
        name, _, module_path = item.rpartition("=") if "=" in item else ("", "", item)
        candidates.append((name or module_path.rsplit(".", 1)[-1], module_path, None))
    for name, module_path, dist in candidates:
        if pm.has_plugin(name):
            raise PluginError(f"plugin {name!r}: two plugins have this name ({module_path!r} and {info[name].module!r})")
        module = _import(name, module_path)
        _register(pm, name, module)
        info[name] = PluginInfo(name, _version_of(module, dist), module_path, builtin=module_path.startswith("plugins."))
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {pm.get_name(exc.plugin)!r}: {exc}") from exc
    missing = sorted(set(registry.services) - set(info))
    if missing:
        name = missing[0]
        users = ", ".join(registry.projects_enabling(name)) or "no project"
        raise PluginError(
            f"plugin {name!r}: registry.yaml offers it (enabled by {users}) but it is not installed; "
            f"install the package that provides the entry point '{ENTRY_POINT_GROUP}: {name}'"
        )
    host = PluginHost(pm=pm, registry=registry, info=info)
    _collect_types(host)
    _collect_analyses(host)
    return host


def _registrar(kind: str, store: dict[str, Any], plugin: str) -> Callable[[Any], None]:
    def register(item: Any) -> None:
        if item.name in store:
            raise PluginError(
                f"plugin {plugin!r}: {kind} {item.name!r} is already registered by {store[item.name].plugin!r}"
            )
        store[item.name] = type(item)(**{**item.__dict__, "plugin": plugin})

    return register


def _collect_types(host: PluginHost) -> None:
    for impl in host.pm.hook.register_observation_types.get_hookimpls():  # first come keeps the name
        impl.function(register=_registrar("observation type", host.observation_types, impl.plugin_name))


def _collect_analyses(host: PluginHost) -> None:
    for impl in host.pm.hook.register_analyses.get_hookimpls():
        impl.function(register=_registrar("analysis", host.analyses, impl.plugin_name))
