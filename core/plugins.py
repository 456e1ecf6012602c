"""The plugin manager: the engine's default plugins, installed plugins (entry points in the
group ``observatory``, built-ins included) and extra modules, all loaded the same way and
checked at start-up.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
from dataclasses import dataclass, field
import time
from types import ModuleType
from typing import Any, Callable, Mapping, Sequence

import pluggy
import pydantic

from core import hookspecs
from core.hookspecs import KINDS_ATTRIBUTE
from core.registry import Registry, ServiceMetadata
from core.types import Analysis, BackgroundTask, ObservationType, ProjectContext

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "observatory"
DEFAULT_PLUGINS = ("core.builtin.checks", "core.builtin.grading", "core.builtin.columns", "core.export_jobs")


class PluginError(RuntimeError):
    """A plugin could not be loaded or is inconsistent; the message names the plugin."""


METADATA_ATTRIBUTE = "SERVICE_METADATA"


@dataclass
class PluginInfo:
    name: str
    version: str
    module: str
    builtin: bool
    metadata: ServiceMetadata = field(default_factory=ServiceMetadata)
    """What the plugin says about its service (``SERVICE_METADATA``, else its distribution's
    Summary, Author and documentation URL, else the module's docstring); registry.yaml wins."""


@dataclass(frozen=True)
class Called:
    """What one plugin's call gave in an isolated call (``PluginHost.call_each``): ``result`` as
    pluggy returns it (the list of answers; the answer itself for a ``firstresult`` hook)."""

    plugin: str
    result: Any = None
    error: BaseException | None = None


@dataclass
class PluginHost:
    """The loaded plugins and what they registered at start-up.

    Every hook is called through pluggy (``pm.hook``): start-up hooks for every installed plugin,
    the others through a subset caller that holds only what a project enables (``hooks``). Two
    ways to call, one order (pluggy's: the plugin registered last is called first, wrappers
    around the rest):

    - ``hooks(project, kind).<hook>(**kwargs)``: one pluggy call of the enabled plugins, with
      ``firstresult`` and wrappers as pluggy does them; the first exception stops the call.
    - ``call_each(hook, project, kind, **kwargs)``: the isolation mechanism, where one plugin's
      failure must not stop the others (quality checks, status changes, start-up hooks that name
      the plugin that failed): one pluggy call per plugin, each through a subset caller holding
      that plugin and the enabled plugins' wrappers; exceptions are returned, not raised.
    """

    pm: pluggy.PluginManager
    registry: Registry
    info: dict[str, PluginInfo]
    observation_types: dict[str, ObservationType] = field(default_factory=dict)
    analyses: dict[str, Analysis] = field(default_factory=dict)
    tasks: dict[str, BackgroundTask] = field(default_factory=dict)
    defaults: frozenset[str] = frozenset(DEFAULT_PLUGINS)
    _callers: dict[tuple[Any, ...], pluggy.HookCaller] = field(default_factory=dict, repr=False)

    def is_default(self, plugin_name: str) -> bool:
        """Whether ``plugin_name`` is one of the engine's own plugins, on for every project."""
        return plugin_name in self.defaults

    def hooks_of(self, plugin_name: str) -> list[str]:
        plugin = self.pm.get_plugin(plugin_name)
        return sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])

    def plugins_of(self, hook_name: str, project: ProjectContext | None = None, kind: str | None = None) -> list[str]:
        """The plugins whose implementation of ``hook_name`` a call for ``project`` (and an observation
        of ``kind``) reaches, in call order (wrappers excluded). Every installed plugin without a project."""
        return [impl.plugin_name for impl in reversed(getattr(self.pm.hook, hook_name).get_hookimpls())
                if not _is_wrapper(impl) and self._reaches(impl, project, kind)]

    def hooks(self, project: ProjectContext, kind: str | None = None) -> "ProjectHooks":
        """``pm.hook`` as ``project`` sees it: only the plugins it enables (and the engine's own);
        with ``kind``, only implementations that handle that kind (``core.hookspecs.for_kinds``)."""
        return ProjectHooks(self, project, kind)

    def caller(self, hook_name: str, project: ProjectContext | None, kind: str | None = None,
               only: str | None = None) -> pluggy.HookCaller:
        """The pluggy caller of ``hook_name`` for ``project`` and ``kind`` (cached); with ``only``,
        holding that plugin's implementation and the enabled plugins' wrappers."""
        key = (hook_name, project.slug if project is not None else None, kind, only)
        found = self._callers.get(key)
        if found is None:
            impls = getattr(self.pm.hook, hook_name).get_hookimpls()
            keep = {impl.plugin for impl in impls if self._reaches(impl, project, kind)
                    and (only is None or impl.plugin_name == only or _is_wrapper(impl))}
            found = self._callers[key] = self.pm.subset_hook_caller(
                hook_name, [impl.plugin for impl in impls if impl.plugin not in keep])
        return found

    def call_each(self, hook_name: str, project: ProjectContext | None = None, kind: str | None = None, /,
                  **kwargs: Any) -> list[Called]:
        """Call ``hook_name`` once per plugin that ``project`` enables, in call order; a plugin
        that raises is reported in its ``Called`` and the others still run."""
        out = []
        for plugin in self.plugins_of(hook_name, project, kind):
            caller = self.caller(hook_name, project, kind, only=plugin)
            try:
                results = caller(**kwargs)
            except Exception as exc:  # the isolation: recorded against the plugin, never raised
                out.append(Called(plugin, error=exc))
                continue
            out.append(Called(plugin, results))
        return out

    def enriching_services(self, project: ProjectContext, kind: str | None = None) -> list[str]:
        """Services of ``project`` that enrich observations (of ``kind``, when given)."""
        return self.plugins_of("enrich_observation", project, kind)

    def _reaches(self, impl: pluggy.HookImpl, project: ProjectContext | None, kind: str | None) -> bool:
        if project is not None and not (self.is_default(impl.plugin_name) or project.enables(impl.plugin_name)):
            return False
        if kind is None:
            return True
        spec = self.registry.services.get(impl.plugin_name)
        kinds = spec.kinds if spec is not None and spec.kinds is not None else kinds_of(impl.function)
        return kinds is None or kind in kinds


class ProjectHooks:
    """``host.hooks(project, kind).<hook>``: the pluggy caller of a hook for one project."""

    def __init__(self, host: PluginHost, project: ProjectContext, kind: str | None) -> None:
        self._host, self._project, self._kind = host, project, kind

    def __getattr__(self, hook_name: str) -> pluggy.HookCaller:
        return self._host.caller(hook_name, self._project, self._kind)


def _is_wrapper(impl: pluggy.HookImpl) -> bool:
    return bool(impl.wrapper or impl.hookwrapper)


def kinds_of(function: Callable[..., Any]) -> tuple[str, ...] | None:
    """The kinds an implementation handles (``core.hookspecs.for_kinds``), or None for all."""
    return getattr(function, KINDS_ATTRIBUTE, None)


def trace_calls(pm: pluggy.PluginManager, logger: logging.Logger | None = None) -> Callable[[], None]:
    """Log every hook call: the hook, the plugins it reached, the time taken and what came back
    (``OBSERVATORY_TRACE_PLUGINS=1``). Returns a function that stops the tracing."""
    logger = logger or logging.getLogger("observatory.plugins.trace")
    started: dict[int, float] = {}

    def before(hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
        started[id(kwargs)] = time.perf_counter()

    def after(outcome: pluggy.Result[Any], hook_name: str, impls: Sequence[pluggy.HookImpl],
              kwargs: Mapping[str, Any]) -> None:
        took_ms = (time.perf_counter() - started.pop(id(kwargs), time.perf_counter())) * 1000
        plugins = ", ".join(impl.plugin_name for impl in reversed(impls)) or "no plugin"
        if outcome.exception is not None:
            answer = f"raised {type(outcome.exception).__name__}: {outcome.exception}"
        else:
            answer = "returned " + _short(outcome.get_result())
        logger.info("hook %s [%s] %.2f ms %s", hook_name, plugins, took_ms, answer)

    return pm.add_hookcall_monitoring(before, after)


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _version_of(module: ModuleType, dist: str | None) -> str:
    if dist:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return str(getattr(module, "__version__", "0.0.0"))


def _metadata_of(name: str, module: ModuleType, dist: str | None) -> ServiceMetadata:
    """The plugin's ``SERVICE_METADATA`` (validated), filled in from its distribution and docstring."""
    declared = getattr(module, METADATA_ATTRIBUTE, None) or {}
    try:
        found = ServiceMetadata.model_validate(declared)
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(part) for part in err["loc"]) or "value"
        raise PluginError(f"plugin {name!r}: {METADATA_ATTRIBUTE} is invalid: {where}: {err['msg']}") from exc
    fill: dict[str, Any] = {}
    if dist:
        try:
            meta = importlib.metadata.metadata(dist)
        except importlib.metadata.PackageNotFoundError:
            meta = None
        if meta is not None:
            urls = dict(u.split(",", 1) for u in meta.get_all("Project-URL") or [] if "," in u)
            fill = {"summary": meta.get("Summary"), "maintainer": meta.get("Maintainer") or meta.get("Author"),
                    "docs": (urls.get("Documentation") or urls.get("documentation") or "").strip()
                    or meta.get("Home-page")}
    doc = (module.__doc__ or "").strip().splitlines()
    fill["summary"] = fill.get("summary") or (doc[0] if doc else None)
    return found.model_copy(update={k: v for k, v in fill.items() if v and getattr(found, k) is None})


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


def build_host(registry: Registry, extra_modules: str = "", *, trace: bool = False,
               load: str | None = None) -> PluginHost:
    """Load every plugin, check it against the hook specs and ``registry``; raise PluginError.

    ``extra_modules`` (the ``plugin_modules`` setting): ``name=module`` or ``module`` items,
    comma-separated; a module that an installed entry point already loads under that name is
    loaded once. ``trace``: log every hook call (``trace_calls``). ``load`` (the ``load_plugins``
    setting): the installed plugins to load, comma-separated names; None: all of them."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    info: dict[str, PluginInfo] = {}
    from core import __version__

    for path in DEFAULT_PLUGINS:
        _register(pm, path, _import(path, path))
        info[path] = PluginInfo(path, __version__, path, builtin=True,
                                metadata=_metadata_of(path, pm.get_plugin(path), None))
    candidates = discover()
    if load is not None:
        wanted = {name.strip() for name in load.split(",") if name.strip()}
        candidates = [c for c in candidates if c[0] in wanted]
    for item in filter(None, (m.strip() for m in extra_modules.split(","))):
        name, _, module_path = item.rpartition("=") if "=" in item else ("", "", item)
        candidates.append((name or module_path.rsplit(".", 1)[-1], module_path, None))
    for name, module_path, dist in candidates:
        if pm.has_plugin(name):
            if info[name].module == module_path and not info[name].module.startswith("core."):
                continue  # the same module, installed and listed in plugin_modules too
            raise PluginError(f"plugin {name!r}: two plugins have this name ({module_path!r} and {info[name].module!r})")
        module = _import(name, module_path)
        _register(pm, name, module)
        info[name] = PluginInfo(name, _version_of(module, dist), module_path, builtin=module_path.startswith("plugins."),
                                metadata=_metadata_of(name, module, dist))
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
    if trace:
        trace_calls(pm)
    host = PluginHost(pm=pm, registry=registry, info=info)
    _collect("register_observation_types", "observation type", host, host.observation_types)
    _collect("register_analyses", "analysis", host, host.analyses)
    _collect("register_tasks", "background task", host, host.tasks)
    return host


def _registrar(kind: str, store: dict[str, Any], plugin: str) -> Callable[[Any], None]:
    def register(item: Any) -> None:
        if item.name in store:
            raise PluginError(
                f"plugin {plugin!r}: {kind} {item.name!r} is already registered by {store[item.name].plugin!r}"
            )
        store[item.name] = type(item)(**{**item.__dict__, "plugin": plugin})

    return register


def _collect(hook_name: str, what: str, host: PluginHost, store: dict[str, Any]) -> None:
    """Call a ``register_*`` hook plugin by plugin, so that each item is stored with its plugin."""
    for plugin in host.plugins_of(hook_name):
        try:
            host.caller(hook_name, None, only=plugin)(register=_registrar(what, store, plugin))
        except PluginError:
            raise
        except Exception as exc:  # a broken plugin must name itself, whatever it raised
            raise PluginError(f"plugin {plugin!r}: {hook_name} failed: {type(exc).__name__}: {exc}") from exc


def call_startup(host: PluginHost, engine: Any) -> None:
    """The ``startup`` hook of every plugin; the first failure stops start-up, naming its plugin."""
    for called in host.call_each("startup", None, None, engine=engine):
        if called.error is not None:
            exc = called.error
            raise PluginError(f"plugin {called.plugin!r}: startup failed: {type(exc).__name__}: {exc}") from exc
