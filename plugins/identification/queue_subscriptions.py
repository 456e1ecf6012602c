"""Experts' subscriptions: what each wants in their queue (``queue``), a taxon with everything
below it, a place (a box), or both; stored in ``expert_subscriptions``.

Who is an expert here: an account with the expert, moderator or admin role in at least one
project that enables the identification service, or an operator (``Principal.is_expert_of``).
The queue then shows what that account may read, whatever role gave it the right to subscribe.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select
from sqlalchemy.orm import Session

from core.api.deps import deny
from core.api.errors import ApiError
from core.db.models import Taxon, utcnow
from core.db.session import transaction
from core.engine import Engine
from core.place_filter import BBox, check_bbox
from core.tokens import Principal
from plugins.identification.db import expert_subscriptions as subs

SERVICE = "identification"
MAX_SUBSCRIPTIONS = 50
SPECIES_LEVEL = 10.0
"""iNaturalist's rank level of a species: a taxon above it is a group."""


@dataclass(frozen=True)
class TaxonRef:
    """A taxon as the queue matches it: itself and every taxon whose ancestry runs through it."""

    id: int
    name: str
    rank: str
    ancestry: str | None

    @property
    def below_prefix(self) -> str:
        """The ancestry of its children (their descendants' starts with it and ``/``)."""
        return f"{self.ancestry}/{self.id}" if self.ancestry else str(self.id)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "rank": self.rank}


@dataclass(frozen=True)
class Subscription:
    id: int
    taxon: TaxonRef | None
    place: BBox | None
    created_at: datetime

    def public(self) -> dict[str, Any]:
        place = None
        if self.place is not None:
            place = dict(zip(("west", "south", "east", "north"), self.place))
        created = self.created_at if self.created_at.tzinfo else self.created_at.replace(tzinfo=timezone.utc)
        return {"id": self.id, "taxon": self.taxon.public() if self.taxon else None, "place": place,
                "created_at": created.isoformat()}


def taxon_and_below(taxon: TaxonRef, id_column: Any = Taxon.id,
                    ancestry_column: Any = Taxon.ancestry) -> ColumnElement[bool]:
    """The condition that a taxon row is ``taxon`` or one of its descendants."""
    prefix = taxon.below_prefix
    return or_(id_column == taxon.id, ancestry_column == prefix, ancestry_column.like(prefix + "/%"))


def is_expert(engine: Engine, principal: Principal) -> bool:
    """Expert, moderator or admin of a project that enables the service, or an operator."""
    if principal.anonymous:
        return False
    return principal.operator or any(principal.is_expert_of(p) for p in engine.registry.projects_enabling(SERVICE))


def require_expert(engine: Engine, principal: Principal, what: str) -> int:
    """The caller's account id; 401 anonymous, 403 for an account that is no expert."""
    if not is_expert(engine, principal) or principal.account_id is None:
        raise deny(principal, f"{what} is for experts (expert, moderator or admin of a project with identifications)")
    return principal.account_id


def find_taxon(session: Session, taxon_id: int) -> TaxonRef:
    """The taxon ``taxon_id``; 422 ``unknown_taxon``, or 422 ``empty_taxon_group`` for a group
    (above species) with no taxon below it: nothing could ever match it."""
    row = session.execute(select(Taxon.id, Taxon.scientific_name, Taxon.rank, Taxon.rank_level, Taxon.ancestry)
                          .where(Taxon.id == taxon_id)).first()
    if row is None:
        raise ApiError(422, "unknown_taxon", f"no taxon {taxon_id}: find taxa with GET /api/v1/taxa?q=")
    taxon = TaxonRef(row.id, row.scientific_name, row.rank, row.ancestry)
    if row.rank_level > SPECIES_LEVEL:
        prefix = taxon.below_prefix
        below = session.scalar(select(exists().where(or_(Taxon.ancestry == prefix,
                                                         Taxon.ancestry.like(prefix + "/%")))))
        if not below:
            raise ApiError(422, "empty_taxon_group", f"taxon {taxon_id} ({row.scientific_name}, {row.rank}) has no "
                           "taxa below it in this engine's taxonomy: import a checklist that has them, or choose "
                           "another group")
    return taxon


def _taxa(session: Session, ids: set[int]) -> dict[int, TaxonRef]:
    if not ids:
        return {}
    rows = session.execute(select(Taxon.id, Taxon.scientific_name, Taxon.rank, Taxon.ancestry).where(Taxon.id.in_(ids)))
    return {r.id: TaxonRef(r.id, r.scientific_name, r.rank, r.ancestry) for r in rows}


def _subscription(row: Any, taxa: dict[int, TaxonRef]) -> Subscription:
    place = (row.west, row.south, row.east, row.north) if row.west is not None else None
    return Subscription(row.id, taxa.get(row.taxon_id) if row.taxon_id is not None else None, place, row.created_at)


def subscriptions_of(session: Session, account_id: int) -> list[Subscription]:
    """The account's subscriptions, oldest first, with their taxa (two reads)."""
    rows = session.execute(select(subs).where(subs.c.account_id == account_id).order_by(subs.c.id)).all()
    taxa = _taxa(session, {r.taxon_id for r in rows if r.taxon_id is not None})
    return [_subscription(r, taxa) for r in rows]


def check_place(place: BBox | None) -> BBox | None:
    """The box as stored; 422 ``invalid_bbox`` off the globe or with south above north."""
    return check_bbox(place) if place is not None else None


def subscribe(engine: Engine, account_id: int, taxon_id: int | None, place: BBox | None) -> tuple[Subscription, bool]:
    """A subscription of the account (created: True), or the same one it has already (False).
    422 when it names neither a taxon nor a place, or a bad one; 409 past ``MAX_SUBSCRIPTIONS``."""
    if taxon_id is None and place is None:
        raise ApiError(422, "empty_subscription", "a subscription needs a taxon_id, a place, or both")
    place = check_place(place)
    with transaction(engine.sessions) as session:
        taxon = find_taxon(session, taxon_id) if taxon_id is not None else None
        same = [subs.c.account_id == account_id,
                subs.c.taxon_id.is_(None) if taxon_id is None else subs.c.taxon_id == taxon_id]
        if place is None:
            same.append(subs.c.west.is_(None))
        else:
            same += [column == value for column, value in zip((subs.c.west, subs.c.south, subs.c.east, subs.c.north),
                                                               place)]
        found = session.execute(select(subs).where(and_(*same)).limit(1)).first()
        if found is not None:
            return _subscription(found, {taxon.id: taxon} if taxon else {}), False
        held = session.scalar(select(func.count()).select_from(subs).where(subs.c.account_id == account_id)) or 0
        if held >= MAX_SUBSCRIPTIONS:
            raise ApiError(409, "too_many_subscriptions", f"you have {held} subscriptions, the most there may be; "
                           "delete one first")
        west, south, east, north = place if place is not None else (None, None, None, None)
        now = utcnow()
        new_id = session.execute(subs.insert().values(account_id=account_id, taxon_id=taxon_id, west=west, south=south,
                                                      east=east, north=north, created_at=now)).inserted_primary_key[0]
    return Subscription(new_id, taxon, place, now), True


def unsubscribe(engine: Engine, account_id: int, subscription_id: int) -> None:
    """Delete one of the account's subscriptions; 404 for another's or a missing one (the same)."""
    with transaction(engine.sessions) as session:
        gone = session.execute(delete(subs).where(subs.c.id == subscription_id, subs.c.account_id == account_id))
        if gone.rowcount == 0:
            raise ApiError(404, "subscription_not_found", f"you have no subscription {subscription_id}")
