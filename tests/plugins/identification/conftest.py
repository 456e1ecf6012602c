"""What the identification tests share: a registry with the service on (``wild``: public,
published at once; ``double``: experts count double and research grade needs one; ``closed``:
not public; ``plain``: without the service), people with roles (``people``), a small taxon tree
(``taxa``), and helpers to submit and identify through the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pytest

from core.testing import bearer, draft, submit

SERVICE = """
  identification:
    summary: identifications
    settings:
      type: object
      additionalProperties: false
      properties:
        expert_weight: {type: integer, minimum: 1, maximum: 2, default: 1}
        require_expert: {type: boolean, default: false}
  listener:
    summary: records on_identification calls
    settings: {type: object}
"""

REGISTRY = f"""
services:{SERVICE}
projects:
  - slug: wild
    name: Wild
    public: true
    auto_publish: true
    timezone: Europe/Madrid
    location_precision: 2
    services: {{identification: {{}}, listener: {{}}}}
  - slug: double
    name: Double
    public: true
    auto_publish: true
    timezone: Europe/Madrid
    services: {{identification: {{expert_weight: 2, require_expert: true}}}}
  - slug: closed
    name: Closed
    public: false
    auto_publish: true
    timezone: Europe/Madrid
    services: {{identification: {{}}}}
  - slug: plain
    name: Plain
    public: true
    auto_publish: true
    timezone: Europe/Madrid
    services: {{}}
"""

# name: (rank, rank level, parent name)
TREE: dict[str, tuple[str, float, str | None]] = {
    "Animalia": ("kingdom", 70, None),
    "Chordata": ("phylum", 60, "Animalia"),
    "Mammalia": ("class", 50, "Chordata"),
    "Carnivora": ("order", 40, "Mammalia"),
    "Canidae": ("family", 30, "Carnivora"),
    "Vulpes": ("genus", 20, "Canidae"),
    "Vulpes vulpes": ("species", 10, "Vulpes"),
    "Vulpes lagopus": ("species", 10, "Vulpes"),
    "Canis": ("genus", 20, "Canidae"),
    "Canis lupus": ("species", 10, "Canis"),
    "Felidae": ("family", 30, "Carnivora"),
    "Felis": ("genus", 20, "Felidae"),
    "Felis catus": ("species", 10, "Felis"),
    "Aves": ("class", 50, "Chordata"),
    "Turdus merula": ("species", 10, "Aves"),
    "Plantae": ("kingdom", 70, None),
}


@pytest.fixture
def registry() -> str:
    return REGISTRY


@pytest.fixture
def plugins() -> str:
    return "listener=tests.plugins.identification.listener"


def make_taxa(engine: Any) -> dict[str, int]:
    """The taxa of ``TREE`` stored (ancestry as iNaturalist's: ids root first, without the taxon);
    name -> id."""
    from core.db.models import Taxon
    from core.db.session import transaction

    ids: dict[str, int] = {}
    ancestry: dict[str, list[int]] = {}
    with transaction(engine.sessions) as session:
        for name, (rank, level, parent) in TREE.items():
            above = ancestry[parent] + [ids[parent]] if parent else []
            row = Taxon(scientific_name=name, rank=rank, rank_level=level, parent_id=ids.get(parent) if parent else None,
                        ancestry="/".join(map(str, above)) or None, source="test", source_id=name)
            session.add(row)
            session.flush()
            ids[name], ancestry[name] = row.id, above
    return ids


@pytest.fixture
def taxa(engine: Any) -> dict[str, int]:
    """``TREE`` stored: scientific name -> taxon id."""
    return make_taxa(engine)


@dataclass(frozen=True)
class Person:
    account_id: int
    token: str
    name: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


def make_person(engine: Any, name: str, memberships: dict[str, str] | None = None, *, operator: bool = False) -> Person:
    """An account named ``name`` with roles (``{"wild": "expert"}``) and a token of its full rights."""
    from core.accounts import create_account
    from core.tokens import create_account_token

    info = create_account(engine, name, memberships=memberships or {}, operator=operator)
    return Person(info.id, create_account_token(engine, info.id, name=f"{name}'s token").token, name)


@pytest.fixture
def people(engine: Any) -> dict[str, Person]:
    """``ana`` and ``ben`` (contributors of every project), ``eva`` (expert of every project),
    ``mod`` (moderator of wild), ``out`` (a member of no project) and ``op`` (an operator)."""
    everywhere = ("wild", "double", "closed", "plain")
    return {
        "ana": make_person(engine, "Ana", {p: "contributor" for p in everywhere}),
        "ben": make_person(engine, "Ben", {p: "contributor" for p in everywhere}),
        "eva": make_person(engine, "Eva", {p: "expert" for p in everywhere}),
        "mod": make_person(engine, "Mo", {"wild": "moderator"}),
        "out": make_person(engine, "Otto"),
        "op": make_person(engine, "Op", operator=True),
    }


API = "/api/v1"


def observe(client: Any, person: Person, project: str = "wild", *, photo: bytes | None = None,
            **overrides: Any) -> int:
    """``person`` submits an observation to ``project`` (with ``photo`` as a JPEG when given); its id."""
    media = {"photo.jpg": photo} if photo is not None else None
    return int(submit(client, project, draft(**overrides), media=media, token=person.token)["id"])


def identify(client: Any, person: Person, obs_id: int, taxon_id: int, *, expect: int = 201,
             **extra: Any) -> dict[str, Any]:
    """``person`` identifies observation ``obs_id`` as ``taxon_id``; the answer (its status checked)."""
    response = client.post(f"{API}/observations/{obs_id}/identifications", json={"taxon_id": taxon_id, **extra},
                           headers=person.headers)
    assert response.status_code == expect, response.text
    return response.json()


def listing(client: Any, obs_id: int, person: Person | None = None) -> dict[str, Any]:
    """``GET /observations/{id}/identifications`` as ``person`` (anonymous when None)."""
    response = client.get(f"{API}/observations/{obs_id}/identifications", headers=person.headers if person else {})
    assert response.status_code == 200, response.text
    return response.json()


Identify = Callable[..., dict[str, Any]]
