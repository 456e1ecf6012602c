"""The taxonomy, public: search taxa by name prefix in any language, and one taxon's page."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from core.api.deps import DbInt, EngineDep, PrincipalDep
from core.api.schemas import error_responses
from core.errors import ValidationFailed
from core.taxonomy import RANK_LEVELS, get, search
from core.types import Problem

router = APIRouter(prefix="/api/v1", tags=["taxa"])

Rank = Literal[tuple(RANK_LEVELS)]  # type: ignore[valid-type]
MAX_PAGE = 50
"""How deep pages go: 50 pages of at most 200, 10,000 results, as iNaturalist's API."""
LEXICON_PATTERN = r"^([a-z]{2,3}|und|scientific)$"


class TaxonOut(BaseModel):
    id: int
    name: str = Field(description="the scientific name")
    rank: str
    rank_level: float = Field(description="iNaturalist's rank level: species 10, genus 20, family 30 ... kingdom 70")
    parent_id: int | None
    ancestry: str | None = Field(description="the ancestors' ids, root first, joined by '/' (null for a root)")
    ancestor_ids: list[int] = Field(description="the ancestors' ids root first, then the taxon's own")
    iconic_taxon_id: int | None
    gbif_key: int | None
    is_active: bool
    preferred_common_name: str | None = Field(description="in the lexicon asked for, else English")
    matched_term: str | None = Field(None, description="the name a search matched")


class NameOut(BaseModel):
    name: str
    lexicon: str = Field(description="'scientific', or a language code (en, es, ca...)")
    preferred: bool


class TaxonPageOut(TaxonOut):
    iconic_taxon_name: str | None
    ancestors: list[TaxonOut]
    children: list[TaxonOut] = Field(description="by name, at most 500")
    children_count: int
    names: list[NameOut]


class TaxaOut(BaseModel):
    total_results: int
    page: int
    per_page: int
    results: list[TaxonOut]


def _clean_query(q: str) -> str:
    if "\x00" in q:
        raise ValidationFailed([Problem(("q",), "q holds a NUL character (\\u0000), which no name has", "nul_character")])
    return q


@router.get("/taxa", response_model=TaxaOut, summary="Search taxa by name prefix, in any language",
            description="Public. Taxa with a scientific or common name starting with `q` (case and accents "
            "ignored): exact names first, then lower ranks. `lexicon` (a language code) searches that language's "
            "common names only (scientific names always) and shows its preferred names; `rank` keeps one rank. "
            "`total_results` counts every match; pages go 50 deep.",
            responses=error_responses(401, 422, 429))
def search_taxa(
    engine: EngineDep,
    principal: PrincipalDep,
    q: Annotated[str, Query(min_length=2, max_length=200, pattern=r"\S.*\S",
                            description="the start of a name, at least two letters")],
    lexicon: Annotated[str | None, Query(pattern=LEXICON_PATTERN, description="a language code, e.g. en, es, ca")] = None,
    rank: Annotated[Rank | None, Query(description="only taxa of this rank")] = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = 30,
) -> dict[str, Any]:
    found = search(engine, _clean_query(q), limit=per_page, offset=(page - 1) * per_page, lexicon=lexicon, rank=rank)
    return {"total_results": found.total, "page": page, "per_page": per_page,
            "results": [t.to_dict() for t in found.results]}


@router.get("/taxa/{taxon_id}", response_model=TaxonPageOut, summary="One taxon: ancestors, children and names",
            description="Public. Its ancestors root first, its children by name, every name with its lexicon, its "
            "GBIF key and iconic group; common names in `lexicon` (else English). 404 `taxon_not_found`.",
            responses=error_responses(401, 404, 422, 429))
def one_taxon(
    taxon_id: DbInt,
    engine: EngineDep,
    principal: PrincipalDep,
    lexicon: Annotated[str | None, Query(pattern=LEXICON_PATTERN, description="a language code, e.g. en, es, ca")] = None,
) -> dict[str, Any]:
    return get(engine, taxon_id, lexicon=lexicon).to_dict()
