"""The media and identifications frames from this engine's database, for the observations the
caller may see (``local.visible_query``: the same visibility and filters as the observations frame).

A medium's ``attribution`` is what open data credits it to (``core.web.map.details.rights_holder``,
as ``core.dwca`` writes it: the recorder's name only where they agreed to be named), for published
observations of public projects; other media are no open data and have none. An identifier's
account id is for staff only, as the identification API shows it."""

from __future__ import annotations

from typing import Any, Mapping

import pandas as pd
from sqlalchemy import inspect, select

from core.consent import ATTRIBUTION, agreed
from core.db.models import Account, MediaBlob, ObservationMedia, Taxon
from core.db.session import transaction
from core.engine import Engine
from core.web.map.details import MEDIA_URL, rights_holder
from plugins.analysis.frames.columns import IDENTIFICATION_COLUMNS, MEDIA_COLUMNS, typed_frame
from plugins.analysis.frames.local import IDENTIFICATION, _obs, visible_query

_media = ObservationMedia.__table__
_blobs = MediaBlob.__table__
_taxa = Taxon.__table__


def read_media(engine: Engine, slug: str, params: Mapping[str, str], *, public: bool = False) -> pd.DataFrame:
    """One row per medium of the observations of ``slug`` the caller may see under ``params``:
    observation_id, media_id, url (the API's path), content_type, licence, attribution."""
    project, visible = visible_query(engine, slug, params, _obs.c.id, _obs.c.status, _obs.c.contributor_id,
                                     _obs.c.licence, public=public)
    seen = visible.subquery()
    query = (select(_media.c.observation_id, _media.c.id, _blobs.c.content_type, seen.c.status,
                    seen.c.contributor_id, seen.c.licence)
             .join(seen, seen.c.id == _media.c.observation_id).join(_blobs, _blobs.c.sha256 == _media.c.sha256)
             .order_by(_media.c.observation_id, _media.c.position, _media.c.id))
    with transaction(engine.readers) as session:
        rows = session.execute(query).all()
    named = _recorders(engine, slug, {r.contributor_id for r in rows if r.status == "published"})
    open_data = project.public
    columns: dict[str, list[Any]] = {
        "observation_id": [r.observation_id for r in rows],
        "media_id": [r.id for r in rows],
        "url": [MEDIA_URL.format(obs_id=r.observation_id, media_id=r.id) for r in rows],
        "content_type": [r.content_type for r in rows],
        "licence": [r.licence or project.licence for r in rows],
        "attribution": [rights_holder(project, named.get(r.contributor_id))
                        if open_data and r.status == "published" else None for r in rows],
    }
    return typed_frame(columns, MEDIA_COLUMNS, ["observation_id"])


def _recorders(engine: Engine, slug: str, contributors: set[int]) -> dict[int, str]:
    """Display names of ``contributors`` who agreed to be named as recorders in ``slug``."""
    ids = sorted(agreed(engine, slug, ATTRIBUTION) & contributors)
    accounts = Account.__table__
    out: dict[int, str] = {}
    with transaction(engine.readers) as session:
        for start in range(0, len(ids), 500):
            for account_id, name in session.execute(select(accounts.c.id, accounts.c.display_name)
                                                    .where(accounts.c.id.in_(ids[start:start + 500]))):
                if name and name.strip():
                    out[account_id] = name.strip()
    return out


def read_identifications(engine: Engine, slug: str, params: Mapping[str, str], *,
                         public: bool = False) -> pd.DataFrame:
    """Every identification (current or not) of the observations of ``slug`` the caller may see:
    observation_id, identification_id, taxon_id, taxon_name, category, current, created_at,
    identifier_id (staff only)."""
    project, visible = visible_query(engine, slug, params, public=public)
    empty = typed_frame({}, IDENTIFICATION_COLUMNS, ["observation_id"])
    if not project.enables(IDENTIFICATION) or not inspect(engine.db).has_table("identifications"):
        return empty
    from plugins.identification.db import identifications as ident

    query = (select(ident.c.observation_id, ident.c.id, ident.c.taxon_id, _taxa.c.scientific_name, ident.c.category,
                    ident.c.current, ident.c.created_at, ident.c.account_id)
             .outerjoin(_taxa, _taxa.c.id == ident.c.taxon_id)
             .where(ident.c.observation_id.in_(visible.scalar_subquery()))
             .order_by(ident.c.observation_id, ident.c.created_at, ident.c.id))
    with transaction(engine.readers) as session:
        rows = session.execute(query).all()
    columns: dict[str, list[Any]] = {
        "observation_id": [r.observation_id for r in rows],
        "identification_id": [r.id for r in rows],
        "taxon_id": [r.taxon_id for r in rows],
        "taxon_name": [r.scientific_name for r in rows],
        "category": [r.category for r in rows],
        "current": [r.current for r in rows],
        "created_at": [r.created_at for r in rows],
        "identifier_id": [None if public else r.account_id for r in rows],
    }
    return typed_frame(columns, IDENTIFICATION_COLUMNS, ["observation_id"])
