"""Reading a project's observations from this engine's database into the frames' columns.

Batched by id (``BATCH`` rows a query, keyset paging), with SQLAlchemy Core selects: one for the
observations and one each for their media counts, comment counts, flags, species_id summaries and
identification taxa. Places and who may see what are the engine's own rules
(``core.api.access.visible_filter``, ``core.place_filter.visible_place``), so ``public=True``
gives exactly what an anonymous caller of the API gets."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
import pandas as pd
from sqlalchemy import String, Text, cast, func, inspect, select, type_coerce

from core.api.access import visible_filter
from core.db.models import Comment, Enrichment, Observation, ObservationMedia, QualityFlag, Taxon
from core.db.session import transaction
from core.engine import Engine
from core.filters import filter_conditions, parse_filters
from core.lifecycle import get_project
from core.place_filter import visible_place
from core.projects import project_kinds
from core.tokens import ANONYMOUS, Principal
from core.types import ProjectContext
from plugins.analysis.frames.columns import (CATEGORY_FIELDS, ENRICHMENT_COLUMNS, SPECIES_ID, field_dtype,
                                             field_types, field_value, observations_frame)
from plugins.analysis.frames.taxa import Lineage, lineage_of, taxon_columns

BATCH = 20_000
"""Observations read per query: bounded memory, few round trips."""
IDENTIFICATION = "identification"
STAFF = Principal(operator=True)

_obs = Observation.__table__


def kinds_of(engine: Engine, project: ProjectContext) -> dict[str, Any]:
    """The project's kinds: name -> JSON Schema (as ``GET /api/v1/projects/{slug}`` gives them)."""
    return {t.name: t.schema for t in project_kinds(engine, project)}


def read_observations(engine: Engine, slug: str, params: Mapping[str, str], *, public: bool = False,
                      batch: int = BATCH) -> pd.DataFrame:
    """The observations frame of project ``slug`` as staff (``public``: as the public) sees it,
    filtered by ``params`` (the API's filter names and texts; FilterError for a bad one)."""
    project = get_project(engine, slug)
    principal = ANONYMOUS if public else STAFF
    chosen = parse_filters(engine, project, params)
    staff = not public
    types = field_types(kinds_of(engine, project))
    frames = [observations_frame(columns, {name: field_dtype(t) for name, t in types.items()})
              for columns in _batches(engine, project, principal, chosen, staff, types, batch)]
    if not frames:
        return observations_frame(_empty(project, types), {name: field_dtype(t) for name, t in types.items()})
    from plugins.analysis.frames.columns import normalise

    return normalise(pd.concat(frames, ignore_index=True)) if len(frames) > 1 else frames[0]


def _empty(project: ProjectContext, types: Mapping[str, str]) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {"id": [], **{name: [] for name in types}}
    if project.enables(SPECIES_ID):
        columns.update({name: [] for name in ENRICHMENT_COLUMNS[SPECIES_ID]})
    return columns


def _raw(column: Any) -> Any:
    """``column`` as the driver gives it, without SQLAlchemy's per-value processing (datetimes
    and JSON are parsed a batch at a time instead: ``columns.as_dtype``, :func:`_decoded`)."""
    return type_coerce(column, String).label(column.name)


def _batches(engine: Engine, project: ProjectContext, principal: Principal, chosen: Any, staff: bool,
             types: Mapping[str, str], batch: int) -> Iterator[dict[str, Any]]:
    lat, lon = (_obs.c.lat, _obs.c.lon) if staff else visible_place(project, staff=False)
    query = select(_obs.c.id, _obs.c.kind, _obs.c.status, _obs.c.contributor_id, _raw(_obs.c.observed_at),
                   _raw(_obs.c.created_at), _raw(_obs.c.updated_at), lat.label("lat"), lon.label("lon"),
                   _obs.c.location_privacy, _obs.c.grade, _obs.c.licence,
                   cast(_obs.c.fields, Text).label("fields"))
    query = visible_filter(query.where(_obs.c.project == project.slug), principal, project)
    query = query.where(*filter_conditions(chosen, project, staff=staff, contributor_id=None))
    identified = project.enables(IDENTIFICATION) and inspect(engine.db).has_table("observation_taxa")
    known: dict[int, Lineage] = {}
    after = 0
    while True:
        with transaction(engine.readers) as session:
            rows = session.execute(query.where(_obs.c.id > after).order_by(_obs.c.id).limit(batch)).all()
            if not rows:
                return
            low, high = rows[0].id, rows[-1].id
            counts = _children(session, low, high, staff, project, identified)
            columns = _columns(rows, project, staff, types, counts)
            columns.update(taxon_columns(columns["taxon_id"], lambda ids: _lineages(session, ids), known))
        after = high
        yield columns
        if len(rows) < batch:
            return


def _children(session: Any, low: int, high: int, staff: bool, project: ProjectContext,
              identified: bool) -> dict[str, dict[int, Any]]:
    """Per observation id in [low, high]: media count, visible comment count (staff only), flag
    codes, species_id's best suggestion, the identification service's taxon."""
    media = ObservationMedia.__table__
    out: dict[str, dict[int, Any]] = {}
    out["n_media"] = dict(session.execute(
        select(media.c.observation_id, func.count()).where(media.c.observation_id.between(low, high))
        .group_by(media.c.observation_id)).all())
    comments = Comment.__table__
    out["n_comments"] = dict(session.execute(
        select(comments.c.observation_id, func.count()).where(comments.c.observation_id.between(low, high),
                                                             comments.c.hidden_at.is_(None))
        .group_by(comments.c.observation_id)).all()) if staff else {}
    flags = QualityFlag.__table__
    codes: defaultdict[int, list[str]] = defaultdict(list)
    for obs_id, code in session.execute(select(flags.c.observation_id, flags.c.code)
                                        .where(flags.c.observation_id.between(low, high)).order_by(flags.c.id)):
        codes[obs_id].append(code)
    out["flags"] = {k: ",".join(v) for k, v in codes.items()}
    out["best"] = {}
    if project.enables(SPECIES_ID):
        enrichments = Enrichment.__table__
        for obs_id, result in session.execute(
                select(enrichments.c.observation_id, enrichments.c.result)
                .where(enrichments.c.observation_id.between(low, high), enrichments.c.plugin == SPECIES_ID,
                       enrichments.c.status == "done")):
            best = (result or {}).get("best")
            if isinstance(best, dict):
                out["best"][obs_id] = best
    out["taxon"] = {}
    if identified:
        from plugins.identification.db import observation_taxa

        out["taxon"] = dict(session.execute(
            select(observation_taxa.c.observation_id, observation_taxa.c.taxon_id)
            .where(observation_taxa.c.observation_id.between(low, high), observation_taxa.c.taxon_id.is_not(None))).all())
    return out


def _decoded(texts: tuple[Any, ...], wanted: Iterable[str]) -> list[dict[str, Any] | None]:
    """The fields of each row from their JSON text, parsed only where one of the ``wanted`` keys
    may be (most rows of kinds without those fields are never parsed)."""
    keys = sorted({form for key in wanted for form in (json.dumps(key), json.dumps(key, ensure_ascii=False))})
    out: list[dict[str, Any] | None] = []
    for text in texts:
        if text is None or not any(key in text for key in keys):
            out.append(None)
            continue
        value = json.loads(text)
        out.append(value if isinstance(value, dict) else None)
    return out


def _columns(rows: list[Any], project: ProjectContext, staff: bool, types: Mapping[str, str],
             children: dict[str, dict[int, Any]]) -> dict[str, Any]:
    (ids, kinds, statuses, contributors, observed, created, updated, lats, lons, privacies, grades, licences,
     texts) = zip(*rows)
    n = len(ids)
    best = children["best"]
    taxon = children["taxon"]
    keys = [name[len("field."):] for name in types]
    fields = _decoded(texts, {*keys, *CATEGORY_FIELDS})
    columns: dict[str, Any] = {
        "id": np.fromiter(ids, dtype=np.int64, count=n),
        "project": [project.slug] * n,
        "kind": kinds,
        "status": statuses,
        "contributor_id": contributors if staff else [None] * n,
        "observed_at": observed,
        "created_at": created,
        "updated_at": updated,
        "lat": lats,
        "lon": lons,
        "location_privacy": [p or "open" for p in privacies],
        "grade": grades,
        "licence": [licence or project.licence for licence in licences],
        "flags": [children["flags"].get(i, "") for i in ids],
        "n_media": [children["n_media"].get(i, 0) for i in ids],
        "n_comments": [children["n_comments"].get(i, 0) for i in ids] if staff else [None] * n,
        "category": [_category(f) for f in fields],
    }
    columns["taxon_id"] = [taxon.get(i) or _best_taxon(best.get(i)) for i in ids] if taxon or best else [None] * n
    if project.enables(SPECIES_ID):
        columns["species_id.top_label"] = [(best.get(i) or {}).get("scientific_name") for i in ids]
        columns["species_id.top_score"] = [(best.get(i) or {}).get("score") for i in ids]
        columns["species_id.top_taxon_id"] = [_best_taxon(best.get(i)) for i in ids]
    for name, key in zip(types, keys):
        json_type = types[name]
        columns[name] = [field_value(f.get(key), json_type) if f else None for f in fields]
    return columns


def _best_taxon(best: dict[str, Any] | None) -> int | None:
    value = (best or {}).get("taxon_id")
    return value if isinstance(value, int) else None


def _category(fields: Any) -> str | None:
    value = (fields or {}).get("category") if isinstance(fields, dict) else None
    return str(value) if value is not None and not isinstance(value, (dict, list)) else None


def _lineages(session: Any, ids: list[int]) -> dict[int, Lineage]:
    taxa = Taxon.__table__
    rows = {r.id: r for r in session.execute(select(taxa.c.id, taxa.c.scientific_name, taxa.c.rank, taxa.c.ancestry)
                                             .where(taxa.c.id.in_(ids)))}
    above = {int(a) for r in rows.values() for a in (r.ancestry or "").split("/") if a}
    names = {r.id: (r.scientific_name, r.rank) for r in session.execute(
        select(taxa.c.id, taxa.c.scientific_name, taxa.c.rank).where(taxa.c.id.in_(sorted(above))))} if above else {}
    return {i: lineage_of(r.scientific_name, r.rank,
                          [names[int(a)] for a in (r.ancestry or "").split("/") if a and int(a) in names])
            for i, r in rows.items()}


def visible_query(engine: Engine, slug: str, params: Mapping[str, str], *columns: Any,
                  public: bool = False) -> tuple[ProjectContext, Any]:
    """Project ``slug`` and a select of ``columns`` (default: the id) of its observations the
    caller may see under ``params`` now (FilterError for a bad filter)."""
    project = get_project(engine, slug)
    chosen = parse_filters(engine, project, params)
    query = select(*(columns or (_obs.c.id,))).where(_obs.c.project == slug)
    query = visible_filter(query, ANONYMOUS if public else STAFF, project)
    return project, query.where(*filter_conditions(chosen, project, staff=not public, contributor_id=None))


def visible_ids(engine: Engine, slug: str, params: Mapping[str, str], *, public: bool = False) -> list[int]:
    """The ids of the observations of ``slug`` the caller may see under ``params`` now."""
    _project, query = visible_query(engine, slug, params, public=public)
    with transaction(engine.readers) as session:
        return list(session.scalars(query))
