"""Observations, taxa and identifications as iNaturalist's v1 API shows them (the fields
pyinaturalist's models read), from the rows ``inat_query`` reads. Places as the public sees
them (``core.privacy.public_location``), people as handles (``inat_people``), never an e-mail,
a display name or an account id."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence
from zoneinfo import ZoneInfo

from core.privacy import public_location
from core.types import Location, ProjectContext
from plugins.identification import rules
from plugins.identification.inat_people import Handles
from plugins.identification.inat_projects import project_number
from plugins.identification.inat_query import PageParts, TaxaRead

# this engine's licences -> iNaturalist's license codes (all rights reserved: null, as iNaturalist)
LICENSE_CODES = {"CC0-1.0": "cc0", "CC-BY-4.0": "cc-by", "CC-BY-NC-4.0": "cc-by-nc", "CC-BY-SA-4.0": "cc-by-sa",
                 "CC-BY-NC-SA-4.0": "cc-by-nc-sa", "CC-BY-ND-4.0": "cc-by-nd", "CC-BY-NC-ND-4.0": "cc-by-nc-nd"}
_SHORT = {"cc-by": "CC BY", "cc-by-nc": "CC BY-NC", "cc-by-sa": "CC BY-SA", "cc-by-nc-sa": "CC BY-NC-SA",
          "cc-by-nd": "CC BY-ND", "cc-by-nc-nd": "CC BY-NC-ND"}
PHOTO_SIZES = {"square": 75, "thumb": 100, "small": 240, "medium": 500, "large": 1024, "original": 2048}
"""iNaturalist's photo sizes: the longest side in pixels (square: a centred square crop)."""


def license_code(licence: str | None) -> str | None:
    return LICENSE_CODES.get(licence or "")


def attribution(login: str | None, code: str | None) -> str:
    """iNaturalist's attribution text, naming the observer's handle."""
    who = login or "anonymous"
    if code == "cc0":
        return "no rights reserved"
    if code in _SHORT:
        return f"(c) {who}, some rights reserved ({_SHORT[code]})"
    return f"(c) {who}, all rights reserved"


def _number(value: float | None) -> float | int | None:
    return int(value) if value is not None and float(value).is_integer() else value


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _ancestors(ancestry: str | None) -> list[int]:
    return [int(part) for part in ancestry.split("/") if part] if ancestry else []


def taxon_json(row: Any, common: str | None) -> dict[str, Any]:
    """A taxon (a row of ``inat_query.TAXON_COLUMNS``) with iNaturalist's field names."""
    return {
        "id": row.id,
        "name": row.scientific_name,
        "rank": row.rank,
        "rank_level": _number(row.rank_level),
        "ancestry": row.ancestry,
        "ancestor_ids": _ancestors(row.ancestry),
        "parent_id": row.parent_id,
        "iconic_taxon_id": row.iconic_taxon_id,
        "iconic_taxon_name": row.iconic_name,
        "preferred_common_name": common,
        "is_active": row.is_active,
        "gbif_id": row.gbif_key,
    }


class Renderer:
    """Turns one request's rows into iNaturalist's JSON; taxa and handles made once per request."""

    def __init__(self, base_url: str, handles: Handles, projects: Mapping[str, ProjectContext], taxa: TaxaRead):
        self.base = base_url.rstrip("/")
        self.handles, self.projects, self.taxa = handles, projects, taxa
        self._taxa: dict[int, dict[str, Any] | None] = {}
        self._zones: dict[str, ZoneInfo] = {}
        self._numbers: dict[str, int] = {}

    def taxon(self, taxon_id: int | None) -> dict[str, Any] | None:
        if taxon_id is None:
            return None
        if taxon_id not in self._taxa:
            row = self.taxa.rows.get(taxon_id)
            self._taxa[taxon_id] = taxon_json(row, self.taxa.common.get(taxon_id)) if row is not None else None
        return self._taxa[taxon_id]

    def _zone(self, project: ProjectContext) -> ZoneInfo:
        if project.slug not in self._zones:
            self._zones[project.slug] = ZoneInfo(project.timezone)
        return self._zones[project.slug]

    def _number(self, slug: str) -> int:
        if slug not in self._numbers:
            self._numbers[slug] = project_number(slug)
        return self._numbers[slug]

    def identification(self, row: Any) -> dict[str, Any]:
        return {
            "id": row.id,
            "uuid": row.uuid,
            "taxon_id": row.taxon_id,
            "taxon": self.taxon(row.taxon_id),
            "user": self.handles.user("identifier", row.account_id),
            "current": row.current,
            "category": row.category,
            "disagreement": row.disagreement,
            "body": row.body,
            "vision": row.vision,
            "hidden": False,
            "created_at": _utc(row.created_at).isoformat(),  # type: ignore[union-attr]
            "updated_at": _utc(row.updated_at).isoformat(),  # type: ignore[union-attr]
        }

    def photo(self, media: Any, code: str | None, credit: str) -> dict[str, Any]:
        width, height = media.width or 0, media.height or 0
        scale = min(1.0, PHOTO_SIZES["original"] / max(width, height, 1))
        return {
            "id": media.id,
            "url": f"{self.base}/inat/v1/photos/{media.id}/square.jpg",
            "license_code": code,
            "attribution": credit,
            "original_dimensions": {"width": round(width * scale), "height": round(height * scale)},
        }

    def sound(self, media: Any, obs_id: int, code: str | None, credit: str) -> dict[str, Any]:
        return {"id": media.id, "file_url": f"{self.base}/api/v1/observations/{obs_id}/media/{media.id}",
                "file_content_type": media.content_type, "license_code": code, "attribution": credit}

    def observation(self, row: Any, parts: PageParts) -> dict[str, Any]:
        """One observation as the public sees it (a row of ``inat_query.PAGE_COLUMNS``)."""
        project = self.projects[row.project]
        zone = self._zone(project)
        privacy = row.location_privacy or "open"
        place = public_location(Location(row.lat, row.lon, row.accuracy_m), project, privacy)
        observed = _utc(row.observed_at).astimezone(zone)  # type: ignore[union-attr]
        updated = max(_utc(row.updated_at), _utc(row.taxa_updated_at) or _utc(row.updated_at))  # type: ignore[type-var]
        user = self.handles.user("observer", row.contributor_id)
        code = license_code(row.licence or project.licence)
        credit = attribution(user["login"] if user else None, code)
        media = parts.media.get(row.id, [])
        photos = [self.photo(m, code, credit) for m in media if m.content_type.startswith("image/")]
        taxon = self.taxon(row.taxon_id)
        captive = row.f_captive is True or not rules.metric_passes(parts.wild_votes.get(row.id, []))["wild"]
        guess = row.f_species_guess if isinstance(row.f_species_guess, str) else (
            (taxon.get("preferred_common_name") or taxon["name"]) if taxon else None)
        return {
            "id": row.id,
            "uuid": str(uuid.uuid5(self.handles.namespace, f"observation:{row.id}")),
            "uri": f"{self.base}/api/v1/observations/{row.id}",
            "observed_on": observed.date().isoformat(),
            "time_observed_at": observed.isoformat(),
            "created_at": _utc(row.created_at).isoformat(),  # type: ignore[union-attr]
            "updated_at": updated.isoformat(),  # type: ignore[union-attr]
            "location": f"{place.lat},{place.lon}" if place else None,
            "geojson": {"type": "Point", "coordinates": [place.lon, place.lat]} if place else None,
            "positional_accuracy": round(place.accuracy_m) if place and place.accuracy_m is not None else None,
            "public_positional_accuracy": round(place.accuracy_m) if place and place.accuracy_m is not None else None,
            "place_guess": row.f_place_guess if privacy == "open" and isinstance(row.f_place_guess, str) else None,
            "obscured": privacy != "open",
            "geoprivacy": None if privacy == "open" else privacy,
            "mappable": place is not None,
            "quality_grade": row.grade or "casual",
            "license_code": code,
            "captive": captive,
            "description": _first_text(row.f_description, row.f_notes, row.f_note),
            "species_guess": guess,
            "taxon": taxon,
            "community_taxon_id": row.community_taxon_id,
            "user": user,
            "photos": photos,
            "observation_photos": [{"id": p["id"], "position": i, "photo": p} for i, p in enumerate(photos)],
            "sounds": [self.sound(m, row.id, code, credit) for m in media if m.content_type.startswith("audio/")],
            "identifications": [self.identification(i) for i in parts.idents.get(row.id, [])],
            "identifications_count": row.identifications_count or 0,
            "num_identification_agreements": row.agreements or 0,
            "num_identification_disagreements": row.disagreements or 0,
            "project_ids": [self._number(row.project)],
        }


def _first_text(*values: Any) -> str | None:
    return next((v for v in values if isinstance(v, str) and v), None)


def envelope(results: Sequence[dict[str, Any]], total: int, page: int, per_page: int) -> dict[str, Any]:
    """iNaturalist's list envelope."""
    return {"total_results": total, "page": page, "per_page": per_page, "results": list(results)}
