"""species_id and the taxonomy: its label file is the engine's default taxonomy, and each of its
suggestions points at the taxon of its scientific name (``taxon_id``)."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from core import lifecycle
from core.db.session import transaction
from core.engine import Engine
from core.taxonomy import get, ids_by_name, load_defaults
from core.views import load_observation, observation_dict
from plugins.species_id.taxa import records
from tests.conftest import draft


def submit_photo(engine: Engine, photo: bytes) -> dict[str, Any]:
    result = lifecycle.submit(engine, "wildlife", draft(), [lifecycle.Upload(photo, "cat.jpg", None)])
    with transaction(engine.sessions) as session:
        return observation_dict(load_observation(session, result.observation_id))["enrichments"]["species_id"]["result"]


@pytest.fixture
def engine(species_engine: Callable[..., Engine]) -> Engine:
    return species_engine()


def test_the_label_file_offers_its_organisms_once_each() -> None:
    offered = {(r.scientific_name, r.rank): r for r in records()}
    assert len(offered) == 307
    tench = offered[("Tinca tinca", "species")]
    assert dict(tench.classification) == {"kingdom": "Animalia", "genus": "Tinca"} and dict(tench.common_names) == {
        "en": "tench"}
    corvids = offered[("Corvidae", "family")]  # the class "jay": not a name of the family
    assert corvids.classification == {"kingdom": "Animalia"} and corvids.common_names == {}
    assert offered[("Malus domestica", "species")].common_names == {}  # "Granny Smith" is a cultivar
    assert offered[("Canis lupus familiaris", "subspecies")].common_names == {}  # 120 breeds: no one name
    assert offered[("Brassica oleracea var. italica", "variety")].classification["genus"] == "Brassica"
    assert not any(r.scientific_name in ("espresso", "Homo sapiens") for r in records())


def test_every_suggestion_points_at_its_taxon(engine: Engine, shots: dict[str, bytes]) -> None:
    load_defaults(engine)
    result = submit_photo(engine, shots["cat"])
    cat = ids_by_name(engine, ["Felis catus"])["Felis catus"]
    assert result["best"]["scientific_name"] == "Felis catus" and result["best"]["taxon_id"] == cat
    assert result["images"][0]["results"][0]["taxon_id"] == cat
    for suggestion in result["results"]:
        assert get(engine, suggestion["taxon_id"]).name == suggestion["scientific_name"]
    assert get(engine, cat).ancestors[0].name == "Animalia"


def test_without_the_taxon_the_suggestion_says_so(engine: Engine, shots: dict[str, bytes]) -> None:
    result = submit_photo(engine, shots["cat"])  # the kit emptied the taxon table
    assert result["best"]["scientific_name"] == "Felis catus" and result["best"]["taxon_id"] is None
    assert all(s["taxon_id"] is None for s in result["results"])
