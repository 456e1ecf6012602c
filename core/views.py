"""Stored observations as plugins see them (ObservationView) and as clients see them (dicts)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, selectinload

from core.db.models import Observation
from core.errors import NotFound
from core.media import MediaStore
from core.privacy import public_location_dict
from core.read_model import observation_data, view_from
from core.types import ObservationView, ProjectContext


def observation_not_found(obs_id: int) -> NotFound:
    """The answer for an id that does not exist, and for one the caller may not see: the same
    words (those of ``read_model.read_observation``), so that no answer tells them apart."""
    return NotFound(f"no observation {obs_id}", code="observation_not_found")


def load_observation(session: Session, obs_id: int) -> Observation:
    obs = session.get(
        Observation,
        obs_id,
        options=[selectinload(Observation.media), selectinload(Observation.enrichments), selectinload(Observation.flags)],
    )
    if obs is None:
        raise observation_not_found(obs_id)
    return obs


def observation_view(obs: Observation, store: MediaStore) -> ObservationView:
    """The view of an ORM observation (code that changes one holds it): ``read_model.view_from``."""
    return view_from(obs, obs.media, obs.enrichments, store)


def observation_dict(obs: Observation, *, media_url: str | None = None) -> dict[str, Any]:
    """Everything about an observation: fields, media, enrichments, flags, grade, status."""
    return observation_data(obs, obs.media, obs.enrichments, obs.flags, media_url)


def with_licence(data: dict[str, Any], project: ProjectContext) -> dict[str, Any]:
    """``data`` with its licence resolved: the project's default where the observation has none
    (observations stored before licences were chosen per observation)."""
    return {**data, "licence": data.get("licence") or project.licence}


def public_view(data: dict[str, Any], project: ProjectContext) -> dict[str, Any]:
    """An observation as the public sees it: no contributor identity, the place as its location
    privacy allows (``core.privacy``: on the project's grid when open, on the obscured cell with
    ``obscured: true`` when obscured, ``null`` when private), the licence resolved, media without
    the names they were sent with, no error texts."""
    out = with_licence(data, project)
    out["contributor_id"] = None
    out["client_id"] = None
    out["location_privacy"] = data.get("location_privacy") or "open"
    out["location"] = public_location_dict(data["location"], project, out["location_privacy"])
    # a file name as sent can name a person, a device or a place ("IMG_home_garden.jpg")
    out["media"] = [{**m, "filename": None} for m in data.get("media", [])]
    # error texts can carry paths and internals; the public sees only that it failed
    out["enrichments"] = {
        name: {**e, "error": "failed" if e.get("error") else None} for name, e in data.get("enrichments", {}).items()
    }
    return out
