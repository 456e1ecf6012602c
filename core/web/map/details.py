"""One marker's details on the public map: what the public may know of a published observation.

The observation as the public API shows it (``core.views.public_view``: no contributor identity,
the place as its privacy allows, media without file names), with its day, its photos' public URLs
(the API serves them cleaned of location metadata), the licence and the attribution that
``core.dwca`` writes into open data: the recorder's name only where they agreed to be named
(``core.consent`` choice ``attribution``), the rights holder as the archive states it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from core.consent import ATTRIBUTION
from core.db.models import Account, Consent
from core.db.session import transaction
from core.engine import Engine
from core.errors import NotFound
from core.licences import licence_uri
from core.read_model import read_observation
from core.types import ProjectContext
from core.views import public_view

MEDIA_URL = "/api/v1/observations/{obs_id}/media/{media_id}"


def recorder_name(engine: Engine, project: ProjectContext, contributor_id: int | None) -> str | None:
    """The contributor's display name when their newest answer to ``attribution`` in ``project``
    is yes (as ``core.consent.agreed`` reads it); None otherwise."""
    if contributor_id is None:
        return None
    newest = (select(Consent.agreed).where(Consent.account_id == contributor_id, Consent.project == project.slug,
                                           Consent.choice == ATTRIBUTION)
              .order_by(Consent.id.desc()).limit(1))
    with transaction(engine.readers) as session:
        if not session.scalar(newest):
            return None
        name = session.scalar(select(Account.display_name).where(Account.id == contributor_id))
    return name.strip() if name and name.strip() else None


def rights_holder(project: ProjectContext, recorder: str | None) -> str:
    """The rights holder as ``core.dwca`` states it: the dataset's, else the named recorder, else
    the publisher (or the project)."""
    publisher = project.dataset.publisher or {}
    return str(project.dataset.rights_holder or recorder or publisher.get("organisation") or publisher.get("name")
               or project.name)


def observation_details(engine: Engine, project: ProjectContext, obs_id: int) -> dict[str, Any]:
    """A published observation of ``project`` as the map's pop-up shows it; NotFound (the same
    for a missing, unpublished or other project's one) otherwise."""
    with transaction(engine.readers) as session:
        try:
            stored = read_observation(session, obs_id, media_url=MEDIA_URL)
        except NotFound:
            stored = None
    if stored is None or stored.project != project.slug or stored.status != "published" or not project.public:
        raise NotFound(f"no observation {obs_id} on this map", code="observation_not_found")
    data = public_view(stored.data, project)
    recorder = recorder_name(engine, project, stored.contributor_id)
    observed = datetime.fromisoformat(data["observed_at"]).astimezone(ZoneInfo(project.timezone))
    place = data["location"]
    return {
        "id": data["id"],
        "kind": data["kind"],
        "day": observed.date().isoformat(),
        "place": None if place is None else {"lat": place["lat"], "lon": place["lon"],
                                             "obscured": place["obscured"], "accuracy_m": place["accuracy_m"]},
        "fields": data["fields"],
        "photos": [{"url": m["url"]} for m in data["media"] if str(m["content_type"]).startswith("image/")],
        "licence": data["licence"],
        "licence_url": licence_uri(data["licence"]) or None,
        "recorded_by": recorder,
        "rights_holder": rights_holder(project, recorder),
    }
