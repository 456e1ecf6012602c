"""What the analysis tests share: a registry with the analysis and identification services on
(``survey``: public, published at once, a public grid of 2 decimals; ``closed``: not public), a
``count`` kind with typed fields (this module is also the test plugin ``survey`` that registers
it), and ``filled``: a project filled through the API with observations whose every column has a
known value (a photo, comments, identifications, private and obscured places, an unpublished and a
trashed one, flags)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from core import hookimpl
from core.testing import draft, submit
from core.types import ObservationType
from tests.plugins.identification.conftest import Person, identify, make_person, make_taxa

COUNT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "species": {"type": "string"},
        "count": {"type": "integer", "minimum": 0},
        "weight": {"type": "number"},
        "seen": {"type": "boolean"},
        "category": {"type": "string", "enum": ["bird", "mammal", "plant"]},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}

SERVICES = """
  analysis:
    summary: analysis
    settings:
      type: object
      additionalProperties: false
      properties:
        profile_min_active_days: {type: integer, minimum: 2, default: 5}
  identification:
    summary: identifications
    settings:
      type: object
      additionalProperties: false
      properties:
        expert_weight: {type: integer, minimum: 1, maximum: 2, default: 1}
        require_expert: {type: boolean, default: false}
  survey:
    summary: the count kind
    settings: {type: object}
"""

REGISTRY = f"""
services:{SERVICES}
projects:
  - slug: survey
    name: Survey
    public: true
    auto_publish: true
    timezone: Europe/Madrid
    location_precision: 2
    obscured_precision: 1
    services: {{analysis: {{}}, identification: {{}}, survey: {{}}}}
  - slug: closed
    name: Closed
    public: false
    auto_publish: true
    timezone: Europe/Madrid
    services: {{analysis: {{}}, survey: {{}}}}
"""


@hookimpl
def register_observation_types(register: Any) -> None:
    register(ObservationType(name="count", title="A count", schema=COUNT_SCHEMA))


@pytest.fixture
def registry() -> str:
    return REGISTRY


@pytest.fixture
def plugins() -> str:
    # analysis listed too: an environment installed before its entry point was added still loads it
    return "survey=tests.plugins.analysis.conftest,analysis=plugins.analysis.plugin"


@dataclass
class Filled:
    """The ``survey`` project as ``filled`` made it: people, taxa and observation ids by role."""

    people: dict[str, Person]
    taxa: dict[str, int]
    ids: dict[str, int] = field(default_factory=dict)


def count_draft(day: int, hour: int = 9, lat: float = 41.3851, lon: float = 2.1734, **fields: Any) -> dict[str, Any]:
    """A ``count`` draft observed on 2026-05-``day`` at ``hour`` (UTC) at (``lat``, ``lon``)."""
    return draft(kind="count", observed_at=f"2026-05-{day:02d}T{hour:02d}:00:00+00:00",
                 location={"lat": lat, "lon": lon, "accuracy_m": 5}, fields=fields)


@pytest.fixture
def filled(engine: Any, client: Any, photos: dict[str, bytes]) -> Filled:
    """``survey`` with: ``fox`` (Ana, a photo, two comments of which one hidden, identified as
    Vulpes vulpes by Eva and Ben), ``cat`` (Ben, obscured place, Felis catus), ``hidden`` (Ana,
    private place, no taxon), ``gone`` (Ben, unpublished), ``bin`` (Ana, trashed), ``bird`` (Ana,
    generic kind without fields); ``mod`` is the project's moderator, ``op`` an operator."""
    from core.moderation import moderate

    taxa = make_taxa(engine)
    people = {"ana": make_person(engine, "Ana", {"survey": "contributor"}),
              "ben": make_person(engine, "Ben", {"survey": "contributor"}),
              "eva": make_person(engine, "Eva", {"survey": "expert"}),
              "mod": make_person(engine, "Mo", {"survey": "moderator"}),
              "op": make_person(engine, "Op", operator=True)}
    filled = Filled(people, taxa)

    def add(name: str, person: str, body: dict[str, Any], media: Any = None) -> int:
        obs_id = int(submit(client, "survey", body, media=media, token=people[person].token)["id"])
        filled.ids[name] = obs_id
        return obs_id

    fox = add("fox", "ana", count_draft(1, species="Vulpes vulpes", count=2, weight=6.5, seen=True, category="mammal",
                                        tags=["night", "road"]), media={"fox.jpg": photos["chelsea.jpg"]})
    cat = add("cat", "ben", {**count_draft(2, 22, 41.4011, 2.1543, species="Felis catus", count=1, category="mammal"),
                             "location_privacy": "obscured"})
    add("hidden", "ana", {**count_draft(3, species="Turdus merula", count=5, category="bird"),
                          "location_privacy": "private"})
    gone = add("gone", "ben", count_draft(4, count=1))
    trash = add("bin", "ana", count_draft(5, count=0))
    add("bird", "ana", draft(observed_at="2026-05-06T07:15:00+00:00", fields={"note": "a blackbird"}))
    identify(client, people["eva"], fox, taxa["Vulpes vulpes"])
    identify(client, people["ben"], fox, taxa["Vulpes vulpes"])
    identify(client, people["ben"], cat, taxa["Felis catus"])
    for text in ("lovely fox", "spam"):
        response = client.post(f"/api/v1/observations/{fox}/comments", json={"body": text},
                               headers=people["ben"].headers)
        assert response.status_code == 201, response.text
    spam = response.json()["id"]
    assert client.post(f"/api/v1/comments/{spam}/hide", headers=people["mod"].headers).status_code == 200
    moderate(engine, gone, "unpublish", actor="test")
    moderate(engine, trash, "trash", actor="test")
    return filled
