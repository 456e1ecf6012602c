"""What ``/inat/v1`` answers, for its OpenAPI document (the routes build the JSON themselves,
``inat_render``; tests/api/test_schemathesis.py holds the answers to these schemas)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.api.schemas import ErrorBody


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class InatErrorOut(BaseModel):
    """iNaturalist's error shape, ``{"error": ..., "status": N}``, with the engine's error inside."""

    error: ErrorBody
    status: int = Field(examples=[422])


class InatUserOut(_Open):
    id: int = Field(description="the person's pseudonymous number (not an account id)")
    login: str = Field(description="the person's pseudonymous handle: observer-... or identifier-...")


class InatTaxonOut(_Open):
    id: int
    name: str
    rank: str
    rank_level: float
    ancestry: str | None = Field(description="ancestors' ids, root first, joined by '/'")
    ancestor_ids: list[int] = Field(description="ancestors' ids, root first, without the taxon itself")
    parent_id: int | None
    iconic_taxon_id: int | None
    iconic_taxon_name: str | None
    preferred_common_name: str | None = Field(description="in the language of `locale` (en by default)")
    is_active: bool
    gbif_id: int | None


class InatTaxonNameOut(_Open):
    name: str
    locale: str
    is_valid: bool


class InatTaxonDetailOut(InatTaxonOut):
    ancestors: list[InatTaxonOut]
    children: list[InatTaxonOut]
    names: list[InatTaxonNameOut] | None = Field(None, description="every name, with all_names=true")


class InatDimensions(BaseModel):
    width: int
    height: int


class InatPhotoOut(_Open):
    id: int
    url: str = Field(description="the square size; replace 'square' by thumb, small, medium, large or original")
    license_code: str | None
    attribution: str
    original_dimensions: InatDimensions


class InatObservationPhotoOut(_Open):
    id: int
    position: int
    photo: InatPhotoOut


class InatSoundOut(_Open):
    id: int
    file_url: str
    file_content_type: str
    license_code: str | None
    attribution: str


class InatIdentificationOut(_Open):
    id: int
    uuid: str
    taxon_id: int
    taxon: InatTaxonOut | None
    user: InatUserOut | None = Field(description="the identifier's handle (identifier-...); null once erased")
    current: bool
    category: Literal["improving", "supporting", "leading", "maverick"] | None
    disagreement: bool | None
    body: str | None
    vision: bool
    hidden: bool
    created_at: str


class InatGeoJsonPoint(BaseModel):
    type: Literal["Point"]
    coordinates: list[float] = Field(min_length=2, max_length=2, description="[longitude, latitude]")


class InatObservationOut(_Open):
    id: int
    uuid: str
    uri: str
    observed_on: str
    time_observed_at: str
    created_at: str
    updated_at: str
    location: str | None = Field(description="'lat,lon' as the public may see it; null for a private place")
    geojson: InatGeoJsonPoint | None
    positional_accuracy: int | None
    public_positional_accuracy: int | None
    place_guess: str | None
    obscured: bool
    geoprivacy: Literal["obscured", "private"] | None
    mappable: bool
    quality_grade: Literal["casual", "needs_id", "research"]
    license_code: str | None
    captive: bool
    description: str | None
    species_guess: str | None
    taxon: InatTaxonOut | None
    community_taxon_id: int | None
    user: InatUserOut | None = Field(description="the observer's handle (observer-...); null when anonymous")
    photos: list[InatPhotoOut]
    observation_photos: list[InatObservationPhotoOut]
    sounds: list[InatSoundOut]
    identifications: list[InatIdentificationOut]
    identifications_count: int
    num_identification_agreements: int
    num_identification_disagreements: int
    project_ids: list[int]


class _Page(BaseModel):
    total_results: int
    page: int
    per_page: int


class InatObservationPage(_Page):
    results: list[InatObservationOut]


class InatTaxonPage(_Page):
    results: list[InatTaxonOut]


class InatTaxonDetailPage(_Page):
    results: list[InatTaxonDetailOut]


class InatProjectOut(_Open):
    id: int = Field(description="the project's stable number (from its slug)")
    slug: str
    title: str
    description: str
    project_type: str


class InatProjectPage(_Page):
    results: list[InatProjectOut]


_ERRORS = {401: "a wrong or revoked token", 403: "past the result window (page * per_page > 10000)",
           404: "no such photo, or not one the public may see", 422: "a parameter is invalid",
           429: "rate limited"}


def inat_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses of these error statuses, in iNaturalist's shape."""
    return {code: {"model": InatErrorOut, "description": _ERRORS[code]} for code in codes}
