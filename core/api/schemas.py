"""Request and response shapes, for validation and the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.lifecycle import FIELDS_DESCRIPTION


class ErrorDetail(BaseModel):
    path: list[str | int]
    message: str
    code: str


class ErrorBody(BaseModel):
    code: str = Field(examples=["validation_failed"])
    message: str = Field(examples=["the observation was refused: location.lat: Input should be less than or equal to 90"])
    details: list[ErrorDetail] | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {401: "no token, or a wrong or revoked one", 403: "the token's role does not allow this",
            404: "not found", 409: "conflict", 413: "too large", 422: "invalid input", 429: "rate limited"}
    return {code: {"model": ErrorOut, "description": text[code]} for code in codes}


class LocationOut(BaseModel):
    lat: float
    lon: float
    accuracy_m: float | None = None
    obscured: bool = Field(False, description="true when this is the observation's obscured cell (its contributor "
                           "asked for the place to be generalised), not the place itself")


LOCATION_DESCRIPTION = (
    "Staff and the observation's contributor see the exact place. Others see it as its location_privacy "
    "allows: open, on the project's public grid; obscured, the cell of the project's obscured precision "
    "(obscured: true, accuracy_m at least the cell); private, null.")


class MediaOut(BaseModel):
    id: int
    sha256: str
    content_type: str
    size: int
    width: int | None = None
    height: int | None = None
    filename: str | None = None
    url: str | None = None


class EnrichmentOut(BaseModel):
    status: Literal["pending", "running", "done", "failed"]
    attempts: int
    result: dict[str, Any] | None = None
    error: str | None = None
    finished_at: datetime | None = None


class FlagOut(BaseModel):
    plugin: str
    code: str
    severity: Literal["info", "warning", "error"]
    message: str
    value: Any = None


class ObservationOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 42, "project": "demo", "client_id": "app-7f3a-0001", "contributor_id": 3, "kind": "generic",
        "observed_at": "2026-05-01T07:30:00+00:00",
        "location": {"lat": 41.39, "lon": 2.17, "accuracy_m": 8, "obscured": False}, "location_privacy": "open",
        "licence": "CC-BY-4.0",
        "fields": {"note": "a fox crossing the path"}, "status": "pending", "grade": "needs_id",
        "media": [{"id": 7, "sha256": "e860...", "content_type": "image/jpeg", "size": 50163, "width": 451,
                   "height": 300, "filename": "fox.jpg", "url": "/api/v1/observations/42/media/7"}],
        "enrichments": {"species_id": {"status": "done", "attempts": 1, "result": {"best": "Vulpes vulpes"},
                                       "error": None, "finished_at": "2026-05-01T07:30:02+00:00"}},
        "flags": [], "created_at": "2026-05-01T07:30:01+00:00", "updated_at": "2026-05-01T07:30:02+00:00"}]})

    id: int
    project: str
    client_id: str | None = None
    contributor_id: int | None = None
    kind: str | None = None
    observed_at: datetime
    location: LocationOut | None = Field(description=LOCATION_DESCRIPTION)
    location_privacy: Literal["open", "obscured", "private"] = "open"
    licence: str | None = Field(None, description="the observation's licence (one of the project's licences; "
                                "null only on an observation stored before licences, when the project's applies)")
    fields: dict[str, Any]
    status: Literal["pending", "published", "unpublished", "trashed"]
    grade: Literal["casual", "needs_id", "research"] | None = None
    media: list[MediaOut]
    enrichments: dict[str, EnrichmentOut]
    flags: list[FlagOut]
    created_at: datetime
    updated_at: datetime


class ObservationPage(BaseModel):
    items: list[ObservationOut]
    next_cursor: str | None = Field(None, description="pass as ?cursor= for the next page; null on the last")


class ObservationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"fields": {"note": "an otter"}}]})

    # the values are checked where every way in checks them: core.lifecycle.field_problems (NaN,
    # infinities, surrogates, NUL, depth and sizes), after the merge with the stored fields
    fields: dict[str, Any] = Field(description="fields to set; a null value removes the field. The merged "
                                   "fields are checked as a draft's are: " + FIELDS_DESCRIPTION)


class ModerationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"action": "publish"}]})

    action: Literal["publish", "unpublish", "trash", "restore"]
    reason: str | None = Field(None, max_length=2000)


class ModerationOut(BaseModel):
    id: int
    old: str
    new: str


class KindOut(BaseModel):
    title: str
    description: str
    schema_: dict[str, Any] = Field(alias="schema", serialization_alias="schema")
    plugin: str | None = None


class ServiceOut(BaseModel):
    summary: str
    version: str
    settings: dict[str, Any]


class LicenceOut(BaseModel):
    id: str = Field(examples=["CC-BY-4.0"])
    uri: str | None = Field(description="the licence text (null for all rights reserved)")
    gbif_eligible: bool = Field(description="GBIF publishes records under it (CC0, CC BY, CC BY-NC)")


class ConsentChoiceOut(BaseModel):
    name: str
    text: str
    version: str


class ProjectOut(BaseModel):
    slug: str
    name: str
    description: str
    licence: str = Field(description="the default licence of an observation")
    public: bool
    timezone: str
    services: dict[str, ServiceOut]
    kinds: dict[str, KindOut]
    licences: list[LicenceOut] = Field(description="licences a contributor may choose for an observation "
                                       "(the draft's `licence`), the default first")
    licence_version: str = Field(description="version of the licence text contributors agree to")
    default_location_privacy: Literal["open", "obscured", "private"] = Field(
        description="a draft's location_privacy when it names none")
    location_precision_m: float | None = Field(description="the public grid of open places, in metres "
                                               "(null: open places are shown exactly)")
    obscured_cell_m: float = Field(description="the cell an obscured place is shown as, in metres")
    comments: bool = Field(description="whether observations take comments")
    consent_choices: list[ConsentChoiceOut] = Field(description="what the project asks its contributors to agree "
                                                    "to (POST a consent with the choice's name and version)")


class AuditOut(BaseModel):
    id: int
    observation_id: int | None
    actor: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    at: datetime


class AuditPage(BaseModel):
    items: list[AuditOut]
    next_cursor: str | None = None


class PluginOut(BaseModel):
    name: str
    version: str
    default: bool
    hooks: list[str]
    projects: list[str]
