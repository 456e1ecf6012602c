"""The one read path for observations: plain SQL selects, no ORM objects.

Everything that reads observations to answer or to hand them on reads them here: the API (on
every GET and after every submit), the CLI's ``show``, the workers (what an enrichment, a
quality check or the grading is given), and the plugins' queries (``core.queries``). One select
fetches the observations and three more fetch their media, enrichments and flags, for one
observation or a page of them. Two shapes are made from these rows, each by one function that
reads by attribute (so ORM objects, which code that changes an observation holds, give the
same): ``observation_data``, the dictionary clients see, and ``view_from``, the
``ObservationView`` plugins see. Exports stream their own set-based pages (places shown as the
caller may see them, computed in SQL) and build plugins' views with ``view_from`` too.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from sqlalchemy import ColumnElement, Select, bindparam, select
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from core.db.models import Enrichment, MediaBlob, Observation, ObservationMedia, QualityFlag
from core.errors import NotFound
from core.media import MediaStore
from core.readable import readable
from core.types import Location, MediaFile, ObservationView

_obs = Observation.__table__
_media = ObservationMedia.__table__
_blobs = MediaBlob.__table__
_enrichments = Enrichment.__table__
_flags = QualityFlag.__table__

OBSERVATION_COLUMNS = (_obs.c.id, _obs.c.project, _obs.c.client_id, _obs.c.contributor_id, _obs.c.kind,
                       _obs.c.observed_at, _obs.c.lat, _obs.c.lon, _obs.c.accuracy_m, _obs.c.fields,
                       _obs.c.status, _obs.c.grade, _obs.c.created_at, _obs.c.updated_at,
                       _obs.c.licence, _obs.c.location_privacy)


@dataclass(frozen=True)
class StoredObservation:
    """An observation as read: who owns it and its status (for access checks), and its data."""

    project: str
    contributor_id: int | None
    status: str
    data: dict[str, Any]


def observation_rows() -> Select[Any]:
    """A select of the observation columns, to narrow with ``where``, ``order_by``, ``limit``."""
    return select(*OBSERVATION_COLUMNS)


def _children_of(which: Callable[[ColumnElement[int]], ColumnElement[bool]]) -> tuple[Select[Any], ...]:
    """The selects of media, enrichments and flags whose observation id matches ``which``."""
    return (
        select(_media.c.id, _media.c.observation_id, _media.c.sha256, _media.c.filename,
               _blobs.c.content_type, _blobs.c.size, _blobs.c.width, _blobs.c.height)
        .join(_blobs, _blobs.c.sha256 == _media.c.sha256)
        .where(which(_media.c.observation_id)).order_by(_media.c.position, _media.c.id),
        select(_enrichments.c.observation_id, _enrichments.c.plugin, _enrichments.c.status,
               _enrichments.c.attempts, _enrichments.c.result, _enrichments.c.error, _enrichments.c.finished_at)
        .where(which(_enrichments.c.observation_id)).order_by(_enrichments.c.plugin),
        select(_flags.c.observation_id, _flags.c.plugin, _flags.c.code, _flags.c.severity, _flags.c.message,
               _flags.c.value)
        .where(which(_flags.c.observation_id)).order_by(_flags.c.id),
    )


# Built once: a statement made per call costs more Python time than SQLite takes to run it.
_ONE = observation_rows().where(_obs.c.id == bindparam("obs_id"))
_CHILDREN_OF_ONE = _children_of(lambda column: column == bindparam("obs_id"))
_CHILDREN_OF_MANY = _children_of(lambda column: column.in_(bindparam("ids", expanding=True)))


def read_observation(session: Session, obs_id: int, *, media_url: str | None = None) -> StoredObservation:
    """One observation with its media, enrichments and flags; NotFound if there is none."""
    row = session.execute(_ONE, {"obs_id": obs_id}).first()
    if row is None:
        raise NotFound(f"no observation {obs_id}", code="observation_not_found")
    media, enrichments, flags = (session.execute(child, {"obs_id": obs_id}).all() for child in _CHILDREN_OF_ONE)
    return _stored(row, media, enrichments, flags, media_url)


def read_observations(session: Session, query: Select[Any], *, media_url: str | None = None) -> list[StoredObservation]:
    """The observations ``query`` (built on ``observation_rows``) selects, in its order."""
    return [_stored(row, media, enrichments, flags, media_url) for row, media, enrichments, flags in _rows(session, query)]


def read_view(session: Session, obs_id: int, store: MediaStore) -> ObservationView:
    """One observation as plugins see it; NotFound if there is none."""
    row = session.execute(_ONE, {"obs_id": obs_id}).first()
    if row is None:
        raise NotFound(f"no observation {obs_id}", code="observation_not_found")
    media, enrichments, _flags = (session.execute(child, {"obs_id": obs_id}).all() for child in _CHILDREN_OF_ONE)
    return view_from(row, media, enrichments, store)


def read_views(session: Session, query: Select[Any], store: MediaStore) -> list[ObservationView]:
    """The observations ``query`` (built on ``observation_rows``) selects, as plugins see them."""
    return [view_from(row, media, enrichments, store) for row, media, enrichments, _flags in _rows(session, query)]


def _rows(session: Session, query: Select[Any]) -> list[tuple[Row[Any], list[Any], list[Any], list[Any]]]:
    rows = session.execute(query).all()
    if not rows:
        return []
    ids = [row.id for row in rows]
    media, enrichments, flags = (_grouped(session.execute(child, {"ids": ids})) for child in _CHILDREN_OF_MANY)
    return [(row, media[row.id], enrichments[row.id], flags[row.id]) for row in rows]


def _stored(row: Row[Any], media: Iterable[Any], enrichments: Iterable[Any], flags: Iterable[Any],
            media_url: str | None) -> StoredObservation:
    return StoredObservation(row.project, row.contributor_id, row.status,
                             observation_data(row, media, enrichments, flags, media_url))


def _grouped(rows: Iterable[Row[Any]]) -> defaultdict[int, list[Row[Any]]]:
    grouped: defaultdict[int, list[Row[Any]]] = defaultdict(list)
    for row in rows:
        grouped[row.observation_id].append(row)
    return grouped


def observation_data(obs: Any, media: Iterable[Any], enrichments: Iterable[Any], flags: Iterable[Any],
                     media_url: str | None = None) -> dict[str, Any]:
    """The dictionary of an observation, from rows or ORM objects (read by attribute).

    ``licence`` is as stored (None: the project's default, which ``views`` fills in) and
    ``location`` is exact: ``views.public_view`` makes what the public may see of both."""
    return {
        "id": obs.id,
        "project": obs.project,
        "client_id": obs.client_id,
        "contributor_id": obs.contributor_id,
        "kind": obs.kind,
        "observed_at": obs.observed_at.isoformat(),
        "location": {"lat": obs.lat, "lon": obs.lon, "accuracy_m": obs.accuracy_m},
        "location_privacy": obs.location_privacy,
        "licence": obs.licence,
        "fields": readable(obs.fields),  # an older row may hold what no answer can carry
        "status": obs.status,
        "grade": obs.grade,
        "media": [
            {"id": m.id, "sha256": m.sha256, "content_type": m.content_type, "size": m.size,
             "width": m.width, "height": m.height, "filename": m.filename,
             **({"url": media_url.format(obs_id=obs.id, media_id=m.id)} if media_url else {})}
            for m in media
        ],
        "enrichments": {
            e.plugin: {"status": e.status, "attempts": e.attempts, "result": e.result, "error": e.error,
                       "finished_at": e.finished_at.isoformat() if e.finished_at else None}
            for e in enrichments
        },
        "flags": [
            {"plugin": f.plugin, "code": f.code, "severity": f.severity, "message": f.message, "value": f.value}
            for f in flags
        ],
        "created_at": obs.created_at.isoformat(),
        "updated_at": obs.updated_at.isoformat(),
    }


def view_from(obs: Any, media: Iterable[Any], enrichments: Iterable[Any], store: MediaStore) -> ObservationView:
    """The ``ObservationView`` of an observation, from rows or ORM objects (read by attribute):
    finished enrichments only, media files where ``store`` keeps them, the place exact."""
    return ObservationView(
        id=obs.id,
        project=obs.project,
        kind=obs.kind,
        observed_at=obs.observed_at,
        location=Location(obs.lat, obs.lon, obs.accuracy_m),
        fields=dict(obs.fields or {}),
        media=tuple(MediaFile(id=m.id, sha256=m.sha256, content_type=m.content_type, size=m.size,
                              path=store.path_for(m.sha256), filename=getattr(m, "filename", None), width=m.width,
                              height=m.height) for m in media),
        contributor_id=obs.contributor_id,
        status=obs.status,
        created_at=obs.created_at,
        enrichments={e.plugin: e.result or {} for e in enrichments if getattr(e, "status", "done") == "done"},
        licence=obs.licence,
        location_privacy=obs.location_privacy,
    )
