"""Where a datathon's rows come from: a project's published observations as the analysis
service's observations frame (``Observatory.local``, as staff see it: the contributor's account
id is needed to split on, and is replaced by a pseudonym before anything is written), with the
place as the public sees it, and each observation's media (to copy their public copies)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import pandas as pd
from sqlalchemy import select

from core.db.models import MediaBlob, ObservationMedia
from core.db.session import transaction
from core.filters import parse_filters
from core.lifecycle import get_project
from core.privacy import public_location
from core.types import Location, ProjectContext

if TYPE_CHECKING:
    from core.engine import Engine


def load_observations(engine: Engine, project: str, filters: Mapping[str, str]) -> pd.DataFrame:
    """Published observations of ``project`` matching ``filters`` (the list's, e.g.
    ``{"kind": "photo"}``): the observations frame (docs/analysis.md) with ``lat``/``lon`` as the
    public sees them. FilterError names a bad filter, NotFound an unknown project."""
    from plugins.analysis.frames import Observatory

    context = get_project(engine, project)
    parse_filters(engine, context, dict(filters))  # refuse a bad filter with the engine's own message
    frame = Observatory.local(engine=engine, cache=False).observations(project, {**filters, "status": "published"})
    frame = frame[frame["status"] == "published"].reset_index(drop=True)
    return public_places(frame, context)


def public_places(frame: pd.DataFrame, context: ProjectContext) -> pd.DataFrame:
    """``frame`` with ``lat``/``lon`` as the public sees them (``core.privacy.public_location``):
    on the project's grid, obscured on its cell, private ones empty."""
    frame = frame.copy()
    lats: list[float | None] = []
    lons: list[float | None] = []
    for lat, lon, privacy in zip(frame["lat"], frame["lon"], frame["location_privacy"]):
        shown = None if pd.isna(lat) or pd.isna(lon) else public_location(
            Location(float(lat), float(lon)), context, str(privacy) if not pd.isna(privacy) else "open")
        lats.append(shown.lat if shown else None)
        lons.append(shown.lon if shown else None)
    frame["lat"] = pd.array(lats, dtype="Float64")
    frame["lon"] = pd.array(lons, dtype="Float64")
    return frame


def load_media(engine: Engine, observation_ids: list[int]) -> pd.DataFrame:
    """The media of these observations: ``observation_id``, ``media_id``, ``position``,
    ``sha256``, ``content_type`` (the stored file's checksum, to read its public copy)."""
    rows: list[tuple[Any, ...]] = []
    with transaction(engine.readers) as session:
        for start in range(0, len(observation_ids), 500):
            chunk = observation_ids[start:start + 500]
            rows.extend(session.execute(
                select(ObservationMedia.observation_id, ObservationMedia.id, ObservationMedia.position,
                       ObservationMedia.sha256, MediaBlob.content_type)
                .join(MediaBlob, MediaBlob.sha256 == ObservationMedia.sha256)
                .where(ObservationMedia.observation_id.in_(chunk))
                .order_by(ObservationMedia.observation_id, ObservationMedia.position, ObservationMedia.id)).all())
    return pd.DataFrame(rows, columns=["observation_id", "media_id", "position", "sha256", "content_type"])
