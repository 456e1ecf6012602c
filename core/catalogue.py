"""The service catalogue: every installed service (registry.yaml's and every loaded plugin, built-in
or third-party alike) with what it says about itself, its maturity, the hooks it implements, the
kinds it handles, the projects that enable it, its settings schema, its acceptance by the people
who use it and, for staff, its health.

Who sees what: an anonymous caller sees only the services that public projects use, and only
public projects; a member also sees their projects' services; project staff see every service,
with the health of their projects; operators see everything, with the health of every project
and the totals.
"""

from __future__ import annotations

import importlib.util
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from core.api.access import can_see_project
from core.plugins import kinds_of
from core.registry import ServiceSpec
from core.tokens import Principal

if TYPE_CHECKING:
    from core.engine import Engine

DEFAULT_STATUS = "experimental"
"""The status of a service that declares none."""


def catalogue(engine: Engine, principal: Principal, name: str | None = None) -> list[dict[str, Any]]:
    """The catalogue entries ``principal`` may see (only ``name``'s when given), by name."""
    host = engine.host
    contexts = engine.registry.contexts()
    visible = sorted(slug for slug, project in contexts.items() if can_see_project(principal, project))
    staff_of = [slug for slug in visible if principal.is_staff_of(slug)]
    sees_all = principal.operator or bool(staff_of)
    names = sorted(set(host.info) | set(engine.registry.services))
    if name is not None:
        names = [n for n in names if n == name]
    entries = []
    for service in names:
        enabled = sorted(contexts) if host.is_default(service) else engine.registry.projects_enabling(service)
        projects = [slug for slug in enabled if slug in visible]
        if not (sees_all or projects):
            continue
        entries.append(_entry(engine, service, projects))
    if entries and (principal.operator or staff_of):
        _add_health(engine, entries, None if principal.operator else set(staff_of))
    for entry in entries:
        entry["acceptance"] = _acceptance(engine, entry["name"], None if principal.operator else entry["projects"])
    return entries


def _entry(engine: Engine, service: str, projects: list[str]) -> dict[str, Any]:
    host = engine.host
    info = host.info.get(service)
    spec: ServiceSpec | None = engine.registry.services.get(service)
    declared = info.metadata if info is not None else None

    def pick(key: str, default: Any = None) -> Any:
        for source in (spec, declared):
            value = getattr(source, key, None) if source is not None else None
            if value not in (None, ""):
                return value
        return default

    return {
        "name": service,
        "summary": pick("summary", ""),
        "version": spec.version if spec is not None and spec.version != "0.0.0" else (info.version if info else
                                                                                      "0.0.0"),
        "maintainer": pick("maintainer", ""),
        "docs": pick("docs"),
        "maturity": {"trl": pick("trl"), "status": pick("status", DEFAULT_STATUS)},
        "installed": info is not None,
        "builtin": bool(info and info.builtin) or host.is_default(service),
        "default": host.is_default(service),
        "hooks": host.hooks_of(service) if info is not None else [],
        "kinds": _kinds(engine, service),
        "observation_types": sorted(t.name for t in host.observation_types.values() if t.plugin == service),
        "projects": projects,
        "settings_schema": spec.settings if spec is not None else None,
        "health": None,
    }


def _kinds(engine: Engine, service: str) -> list[str] | None:
    """The kinds the service handles: registry.yaml's ``kinds``, else those its hooks declare
    (``for_kinds``); None when it handles every kind."""
    spec = engine.registry.services.get(service)
    if spec is not None and spec.kinds is not None:
        return sorted(spec.kinds)
    plugin = engine.host.pm.get_plugin(service)
    if plugin is None:
        return None
    found: set[str] = set()
    for caller in engine.host.pm.get_hookcallers(plugin) or []:
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin:
                kinds = kinds_of(impl.function)
                if kinds is None and caller.name in ("enrich_observation", "quality_check", "validate_observation"):
                    return None
                found.update(kinds or ())
    return sorted(found) or None


def _add_health(engine: Engine, entries: list[dict[str, Any]], only: set[str] | None) -> None:
    """Each entry's health: every project's and the totals (``only`` None, operators), or only
    the projects in ``only`` (project staff)."""
    from core.service_health import service_health

    found = service_health(engine, [e["name"] for e in entries])
    for entry in entries:
        health = found[entry["name"]]
        projects = {slug: h.as_dict() for slug, h in sorted(health.projects.items())
                    if only is None or slug in only}
        entry["health"] = {"total": health.total.as_dict() if only is None else None, "projects": projects}


def _acceptance(engine: Engine, service: str, projects: list[str] | None) -> list[dict[str, Any]] | None:
    """Agreements with the service's results by month (``core.feedback.acceptance_by_month``):
    over every project (``projects`` None), else summed over ``projects``. None while the engine
    has no feedback module."""
    if importlib.util.find_spec("core.feedback") is None:
        return None
    from core.feedback import acceptance_by_month

    if projects is None:
        return acceptance_by_month(engine, service, None)
    months: dict[str, dict[str, int]] = defaultdict(lambda: {"agree": 0, "disagree": 0})
    for slug in projects:
        for row in acceptance_by_month(engine, service, slug):
            months[row["month"]]["agree"] += int(row["agree"])
            months[row["month"]]["disagree"] += int(row["disagree"])
    return [{"month": month, **counts, "rate": _rate(counts["agree"], counts["disagree"])}
            for month, counts in sorted(months.items())]


def _rate(agree: int, disagree: int) -> float | None:
    return round(agree / (agree + disagree), 4) if agree + disagree else None
