"""The projects the iNaturalist-compatible API serves, and their numbers.

Served: the projects that are public and enable the identification service. pyinaturalist's
models hold project ids as integers (``Observation.project_ids: List[int]``, ``Project.id``), so
each project gets a stable number, the first 31 bits of the sha256 of its slug (the same on every
installation and after any change to registry.yaml); ``project_id`` and ``/projects/{id}`` take
that number or the slug.
"""

from __future__ import annotations

import hashlib
from typing import Any

from core.engine import Engine
from core.errors import EngineError
from core.types import ProjectContext

SERVICE = "identification"


def project_number(slug: str) -> int:
    """The project's stable number (1 .. 2**31 - 1)."""
    number = int.from_bytes(hashlib.sha256(f"observatory-project:{slug}".encode()).digest()[:4], "big") & 0x7FFFFFFF
    return number or 1


def served(engine: Engine) -> dict[str, ProjectContext]:
    """Slug -> project, for the projects the API serves (public, identification service on)."""
    projects = {slug: p for slug, p in engine.registry.contexts().items() if p.public and p.enables(SERVICE)}
    numbers: dict[int, str] = {}
    for slug in projects:
        other = numbers.setdefault(project_number(slug), slug)
        if other != slug:  # 1 in 2**31 per pair: rename one of them
            raise EngineError(f"projects {other!r} and {slug!r} have the same number in /inat/v1; rename one",
                              code="inat_project_numbers_clash")
    return projects


def find(projects: dict[str, ProjectContext], value: str) -> ProjectContext | None:
    """The served project a ``project_id`` value names: its number or its slug."""
    text = value.strip()
    if text.isdigit():
        number = int(text)
        return next((p for slug, p in projects.items() if project_number(slug) == number), None)
    return projects.get(text)


def project_json(project: ProjectContext) -> dict[str, Any]:
    """A project as iNaturalist's ``/projects/{id}`` shows one (the fields this engine has)."""
    return {
        "id": project_number(project.slug),
        "slug": project.slug,
        "title": project.name,
        "description": project.description,
        "project_type": "collection",
        "is_umbrella": False,
        "hide_title": False,
        "place_id": None,
        "icon": None,
        "header_image_url": None,
        "banner_color": None,
        "terms": "",
        "prefers_user_trust": False,
        "user_ids": [],
        "admins": [],
        "search_parameters": [],
        "project_observation_rules": [],
    }
