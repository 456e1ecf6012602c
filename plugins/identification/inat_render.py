"""Observations, taxa and identifications as iNaturalist's v1 API shows them (the fields
pyinaturalist's models read), from the rows ``inat_query`` reads. Places as the public sees
them (``core.privacy.public_location``), people as handles (``inat_people``), never an e-mail,
a display name or an account id."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from json.encoder import encode_basestring  # type: ignore[attr-defined]
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


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_BOOL = {True: "true", False: "false", None: "null"}
_CATEGORIES = {name: f'"{name}"' for name in ("improving", "supporting", "leading", "maverick")}


def _text(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def _iso(value: datetime) -> str:
    """ISO 8601 in UTC (a naive value is UTC: SQLite keeps no offset)."""
    return value.isoformat() + "+00:00" if value.tzinfo is None else value.isoformat()


class Renderer:
    """Turns one request's rows into iNaturalist's JSON, as text: each taxon and each handle is
    encoded once per request and spliced wherever it appears (a page of 200 observations names the
    same taxa and people many times)."""

    def __init__(self, base_url: str, handles: Handles, projects: Mapping[str, ProjectContext], taxa: TaxaRead):
        self.base = base_url.rstrip("/")
        self.handles, self.projects, self.taxa = handles, projects, taxa
        self._taxa: dict[int | None, str] = {None: "null"}
        self._guesses: dict[int, str | None] = {}
        self._users: dict[tuple[str, int | None], tuple[str, str | None]] = {}
        self._zones: dict[str, ZoneInfo] = {}
        self._numbers: dict[str, int] = {}

    def taxon(self, taxon_id: int | None) -> str:
        """The taxon's JSON ("null" when there is none)."""
        found = self._taxa.get(taxon_id)
        if found is None:
            row = self.taxa.rows.get(taxon_id)  # type: ignore[arg-type]
            found = self._taxa[taxon_id] = _dumps(taxon_json(row, self.taxa.common.get(taxon_id))) \
                if row is not None else "null"
        return found

    def _guess(self, taxon_id: int | None) -> str | None:
        """The name iNaturalist's species_guess shows for a taxon: its common name, else its scientific one."""
        if taxon_id is None or taxon_id not in self.taxa.rows:
            return None
        if taxon_id not in self._guesses:
            self._guesses[taxon_id] = self.taxa.common.get(taxon_id) or self.taxa.rows[taxon_id].scientific_name
        return self._guesses[taxon_id]

    def user(self, role: str, account_id: int | None) -> tuple[str, str | None]:
        """(the handle's JSON, its login) of ``account_id`` as ``role``."""
        key = (role, account_id)
        found = self._users.get(key)
        if found is None:
            user = self.handles.user(role, account_id)
            found = self._users[key] = (_dumps(user), user["login"] if user else None)
        return found

    def _zone(self, project: ProjectContext) -> ZoneInfo:
        if project.slug not in self._zones:
            self._zones[project.slug] = ZoneInfo(project.timezone)
        return self._zones[project.slug]

    def _number(self, slug: str) -> int:
        if slug not in self._numbers:
            self._numbers[slug] = project_number(slug)
        return self._numbers[slug]

    def identifications(self, rows: Sequence[Any]) -> str:
        """The JSON list of an observation's identifications (rows of ``inat_query``'s ``_IDENTS``)."""
        taxa, users, out = self._taxa, self._users, []
        for ident_id, ident_uuid, _obs, account, taxon_id, body, vision, current, disagreement, category, created \
                in rows:
            taxon = taxa.get(taxon_id) or self.taxon(taxon_id)
            user = (users.get(("identifier", account)) or self.user("identifier", account))[0]
            out.append(f'{{"id":{ident_id},"uuid":{_text(ident_uuid)},"taxon_id":{taxon_id},"taxon":{taxon},'
                       f'"user":{user},"current":{_BOOL[current]},"category":{_CATEGORIES.get(category, "null")},'
                       f'"disagreement":{_BOOL[disagreement]},"body":{_text(body)},"vision":{_BOOL[vision]},'
                       f'"hidden":false,"created_at":"{_iso(created)}"}}')
        return f"[{','.join(out)}]"

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

    def observation(self, row: Any, parts: PageParts) -> str:
        """One observation as the public sees it (a row of ``inat_query.PAGE_COLUMNS``), as JSON."""
        project = self.projects[row.project]
        privacy = row.location_privacy or "open"
        place = public_location(Location(row.lat, row.lon, row.accuracy_m), project, privacy)
        observed = _utc(row.observed_at).astimezone(self._zone(project))  # type: ignore[union-attr]
        updated = max(_utc(row.updated_at), _utc(row.taxa_updated_at) or _utc(row.updated_at))  # type: ignore[type-var]
        user, login = self.user("observer", row.contributor_id)
        code = license_code(row.licence or project.licence)
        credit = attribution(login, code)
        media = parts.media.get(row.id, ())
        photos = [self.photo(m, code, credit) for m in media if m.content_type.startswith("image/")]
        accuracy = round(place.accuracy_m) if place and place.accuracy_m is not None else None
        votes = [("wild", True)] * (row.wild_yes or 0) + [("wild", False)] * (row.wild_no or 0)
        captive = str(row.f_captive).lower() in ("true", "1") or not rules.metric_passes(votes)["wild"]
        own = {
            "id": row.id,
            "uuid": self.handles.observation_uuid(row.id),
            "uri": f"{self.base}/api/v1/observations/{row.id}",
            "observed_on": observed.date().isoformat(),
            "time_observed_at": observed.isoformat(),
            "created_at": _iso(row.created_at),
            "updated_at": _iso(updated),  # type: ignore[arg-type]
            "location": f"{place.lat},{place.lon}" if place else None,
            "geojson": {"type": "Point", "coordinates": [place.lon, place.lat]} if place else None,
            "positional_accuracy": accuracy,
            "public_positional_accuracy": accuracy,
            "place_guess": row.f_place_guess if privacy == "open" and isinstance(row.f_place_guess, str) else None,
            "obscured": privacy != "open",
            "geoprivacy": None if privacy == "open" else privacy,
            "mappable": place is not None,
            "quality_grade": row.grade or "casual",
            "license_code": code,
            "captive": captive,
            "description": _first_text(row.f_description, row.f_notes, row.f_note),
            "species_guess": _first_text(row.f_species_guess) or self._guess(row.taxon_id),
            "community_taxon_id": row.community_taxon_id,
            "photos": photos,
            "observation_photos": [{"id": p["id"], "position": i, "photo": p} for i, p in enumerate(photos)],
            "sounds": [self.sound(m, row.id, code, credit) for m in media if m.content_type.startswith("audio/")],
            "identifications_count": row.identifications_count or 0,
            "num_identification_agreements": row.agreements or 0,
            "num_identification_disagreements": row.disagreements or 0,
            "project_ids": [self._number(row.project)],
        }
        return (f'{_dumps(own)[:-1]},"taxon":{self.taxon(row.taxon_id)},"user":{user},'
                f'"identifications":{self.identifications(parts.idents.get(row.id, ()))}}}')


def _first_text(*values: Any) -> str | None:
    return next((v for v in values if isinstance(v, str) and v), None)


def envelope(results: Sequence[str], total: int, page: int, per_page: int) -> str:
    """iNaturalist's list envelope around results already encoded (``Renderer``)."""
    return f'{{"total_results":{total},"page":{page},"per_page":{per_page},"results":[{",".join(results)}]}}'


def envelope_of(results: Sequence[dict[str, Any]], total: int, page: int, per_page: int) -> str:
    """The envelope around results still to encode."""
    return envelope([_dumps(r) for r in results], total, page, per_page)
