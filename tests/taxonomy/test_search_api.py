"""Searching the taxonomy in several languages, one taxon's page, and the public API."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from core.db.models import Taxon
from core.engine import Engine
from core.taxonomy import descendant_filter, get, ids_by_name, import_checklist, search
from tests.taxonomy.conftest import write_dwca


@pytest.fixture
def loaded(engine: Engine, tmp_path: Path) -> dict[str, int]:
    """The test checklist imported from its DwC-A; taxon ids by scientific name."""
    import_checklist(engine, write_dwca(tmp_path / "extract.zip"), source="gbif-extract")
    with engine.sessions() as session:
        return {t.scientific_name: t.id for t in session.scalars(sa.select(Taxon))}


def names(found) -> list[str]:
    return [t.name for t in found]


def test_search_by_prefix_in_any_language_and_without_accents(engine: Engine, loaded: dict[str, int]) -> None:
    mirlo = search(engine, "mirlo")
    assert names(mirlo) == ["Turdus merula"] and mirlo.total == 1
    assert mirlo.results[0].matched_term == "Mirlo común"
    assert mirlo.results[0].preferred_common_name == "Eurasian blackbird"  # English unless asked
    assert search(engine, "mirlo", lexicon="es").results[0].preferred_common_name == "Mirlo común"
    assert names(search(engine, "mirlo", lexicon="en")) == []  # Spanish names are not searched then
    assert names(search(engine, "Eurasian", lexicon="es")) == []
    assert names(search(engine, "tur", lexicon="es")) == ["Turdus merula", "Turdus", "Turdidae"]  # lower ranks first
    mesange = search(engine, "mesange")  # "Mésange charbonnière", typed without its accent
    assert names(mesange) == ["Parus major"] and mesange.results[0].matched_term == "Mésange charbonnière"
    assert names(search(engine, "GORRIÓN")) == names(search(engine, "gorrion")) == ["Passer domesticus"]
    assert names(search(engine, "pit")) == []
    assert names(search(engine, "__")) == names(search(engine, "%r")) == names(search(engine, "q\\")) == []  # literal
    # exact names first, then lower ranks
    assert names(search(engine, "quercus")) == ["Quercus", "Quercus ilex", "Quercus robur"]
    assert names(search(engine, "quercus", rank="species")) == ["Quercus ilex", "Quercus robur"]
    # a synonym finds its accepted taxon, once
    robur = search(engine, "quercus ped")
    assert names(robur) == ["Quercus robur"] and robur.results[0].matched_term == "Quercus pedunculata"
    assert names(search(engine, "merul")) == ["Turdus merula"]
    # paging
    everything = search(engine, "pa", limit=100)
    assert everything.total == len(everything) >= 4
    pages = [search(engine, "pa", limit=2, offset=o) for o in range(0, everything.total, 2)]
    assert [n for page in pages for n in names(page)] == names(everything)
    with pytest.raises(Exception, match="at least 2"):
        search(engine, " a ")


def test_one_taxon_with_its_ancestors_children_and_names(engine: Engine, loaded: dict[str, int]) -> None:
    oak = get(engine, loaded["Quercus"], lexicon="es")
    assert [a.name for a in oak.ancestors] == ["Plantae", "Tracheophyta", "Magnoliopsida", "Fagales", "Fagaceae"]
    assert [c.name for c in oak.children] == ["Quercus ilex", "Quercus robur"] and oak.children_count == 2
    assert [c.preferred_common_name for c in oak.children] == ["Encina", "Roble común"]
    assert oak.iconic_taxon_name == "Plantae" and oak.gbif_key == 2877951 and oak.rank_level == 20
    assert oak.ancestor_ids == [*[a.id for a in oak.ancestors], oak.id]
    robur = get(engine, loaded["Quercus robur"])
    assert {(n.lexicon, n.name) for n in robur.names} == {("scientific", "Quercus robur"),
                                                         ("scientific", "Quercus pedunculata"),
                                                         ("en", "Pedunculate oak"), ("es", "Roble común")}


def test_descendant_filter_and_ids_by_name(engine: Engine, loaded: dict[str, int]) -> None:
    aves = get(engine, loaded["Aves"])
    with engine.sessions() as session:
        below = set(session.scalars(sa.select(Taxon.scientific_name).where(descendant_filter(Taxon.id, aves))))
    assert {"Aves", "Turdus merula", "Passer domesticus domesticus", "Paridae"} <= below
    assert not below & {"Chordata", "Mammalia", "Vulpes vulpes", "Animalia"}
    assert len(below) == 12
    assert ids_by_name(engine, ["Turdus merula", "Merula vulgaris", "", "Homo sapiens"]) == {
        "Turdus merula": loaded["Turdus merula"], "Merula vulgaris": loaded["Turdus merula"]}


def test_the_taxa_api(client: TestClient, loaded: dict[str, int]) -> None:
    answer = client.get("/api/v1/taxa", params={"q": "mirlo", "lexicon": "es"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["total_results"] == 1 and body["page"] == 1 and body["per_page"] == 30
    (merula,) = body["results"]
    assert merula["name"] == "Turdus merula" and merula["preferred_common_name"] == "Mirlo común"
    assert merula["rank"] == "species" and merula["rank_level"] == 10 and merula["iconic_taxon_id"] == loaded["Aves"]
    assert merula["ancestor_ids"][-1] == merula["id"] and merula["ancestry"] == "/".join(map(str, merula["ancestor_ids"][:-1]))
    first = client.get("/api/v1/taxa", params={"q": "pa", "per_page": 1}).json()
    second = client.get("/api/v1/taxa", params={"q": "pa", "per_page": 1, "page": 2}).json()
    assert first["total_results"] == second["total_results"] >= 4
    assert first["results"][0]["id"] != second["results"][0]["id"]
    assert client.get("/api/v1/taxa", params={"q": "pa", "rank": "family"}).json()["results"][0]["name"] == "Paridae"

    page = client.get(f"/api/v1/taxa/{loaded['Vulpes vulpes']}", params={"lexicon": "es"}).json()
    assert [a["name"] for a in page["ancestors"]] == ["Animalia", "Chordata", "Mammalia", "Carnivora", "Canidae", "Vulpes"]
    assert page["preferred_common_name"] == "Zorro rojo" and page["iconic_taxon_name"] == "Mammalia"
    assert page["gbif_key"] == 9703 and page["children"] == [] and page["children_count"] == 0
    assert {"name": "Canis vulpes", "lexicon": "scientific", "preferred": False} in page["names"]

    for params in ({}, {"q": "a"}, {"q": "  "}, {"q": "pa", "per_page": 0}, {"q": "pa", "per_page": 201},
                   {"q": "pa", "page": 0}, {"q": "pa", "page": 51}, {"q": "pa", "rank": "clade"},
                   {"q": "pa", "lexicon": "EN;"}, {"q": "p\x00a"}):
        refused = client.get("/api/v1/taxa", params=params)
        assert refused.status_code == 422, (params, refused.text)
        assert refused.json()["error"]["message"]
    missing = client.get("/api/v1/taxa/999999")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "taxon_not_found"
    assert client.get("/api/v1/taxa/0").status_code == 422
    assert client.get("/api/v1/taxa", params={"q": "pa"}, headers={"Authorization": "Bearer nope"}).status_code == 401
