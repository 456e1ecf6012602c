"""The default taxonomy: loaded when a fresh engine starts on an empty taxon table, from every
installed plugin's register_taxa (species_id's label file); a checklist adds to it."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

import pytest
import sqlalchemy as sa

from core.config import Settings
from core.db.models import Taxon, TaxonName
from core.engine import Engine
from core.taxonomy import get, ids_by_name, import_checklist, load_defaults, search
from tests.conftest import TEST_PLUGINS
from tests.taxonomy.conftest import write_csv

EXTRA = f"{TEST_PLUGINS},broken_taxa=tests.taxonomy.broken_taxa_plugin,extra_taxa=tests.taxonomy.extra_taxa_plugin"


def taxa_named(engine: Engine, name: str) -> list[Taxon]:
    with engine.sessions() as session:
        return list(session.scalars(sa.select(Taxon).where(Taxon.scientific_name == name)))


def lineage(engine: Engine, name: str) -> list[str]:
    (found,) = taxa_named(engine, name)
    return [a.name for a in get(engine, found.id).ancestors] + [found.scientific_name]


def started(settings_factory: Callable[..., Settings], **settings: str) -> Engine:
    """An engine started as `observatory serve` starts one (Engine.start), on the test database."""
    return Engine.start(settings_factory(**settings))


def test_a_fresh_engine_starts_with_the_default_taxonomy(engine: Engine, settings_factory: Callable[..., Settings]) -> None:
    assert taxa_named(engine, "Tinca tinca") == []  # the kit empties every table
    began = time.perf_counter()
    fresh = started(settings_factory)
    seconds = time.perf_counter() - began
    try:
        assert lineage(fresh, "Tinca tinca") == ["Animalia", "Tinca", "Tinca tinca"]
        (tench,) = taxa_named(fresh, "Tinca tinca")
        assert tench.source == "species_id" and tench.rank_level == 10
        assert tench.iconic_taxon_id == taxa_named(fresh, "Animalia")[0].id
        assert search(fresh, "tench").results[0].name == "Tinca tinca"
        assert lineage(fresh, "Brassica oleracea var. italica") == ["Plantae", "Brassica", "Brassica oleracea var. italica"]
        assert lineage(fresh, "Grifola frondosa") == ["Fungi", "Grifola", "Grifola frondosa"]
        # a scientific name of several classes (dog breeds) is one taxon, with no breed as its name
        assert [n.name for n in get(fresh, taxa_named(fresh, "Canis lupus familiaris")[0].id).names] == [
            "Canis lupus familiaris"]
        assert taxa_named(fresh, "espresso") == []  # not an organism
        with fresh.sessions() as session:
            kingdoms = set(session.scalars(sa.select(Taxon.scientific_name).where(Taxon.rank == "kingdom")))
        assert kingdoms == {"Animalia", "Plantae", "Fungi"}
        print(f"\nengine start with the default taxonomy loaded: {seconds:.2f} s")
        # started again, the table is not empty: nothing is loaded twice
        again = started(settings_factory)
        again.close()
        assert len(taxa_named(fresh, "Tinca tinca")) == 1
        reports = load_defaults(fresh)
        assert [(r.source, r.added, r.updated) for r in reports] == [("species_id", 0, 0)]
        assert reports[0].unchanged == 307
    finally:
        fresh.close()


def test_a_failing_plugin_is_logged_and_the_others_taxa_are_one_tree(
        engine: Engine, settings_factory: Callable[..., Settings], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="core.taxonomy.defaults"):
        fresh = started(settings_factory, plugin_modules=EXTRA)
    try:
        assert "plugin 'broken_taxa': register_taxa failed" in caplog.text and "the label file is gone" in caplog.text
        assert taxa_named(fresh, "Brokenia halfway") == []
        # two plugins offering Tinca tinca make one taxon, with both plugins' names
        (tench,) = taxa_named(fresh, "Tinca tinca")
        assert {(n.lexicon, n.name) for n in get(fresh, tench.id).names} == {
            ("scientific", "Tinca tinca"), ("en", "tench"), ("es", "Tenca")}
        assert len(taxa_named(fresh, "Tinca")) == 1 and len(taxa_named(fresh, "Animalia")) == 1
        assert lineage(fresh, "Erithacus rubecula") == ["Animalia", "Aves", "Erithacus", "Erithacus rubecula"]
        (robin,) = taxa_named(fresh, "Erithacus rubecula")
        assert robin.gbif_key == 2492462 and robin.source == "extra_taxa"
        assert robin.iconic_taxon_id == taxa_named(fresh, "Aves")[0].id
    finally:
        fresh.close()


def test_a_checklist_takes_over_the_default_taxa_it_names(engine: Engine, tmp_path: Path) -> None:
    load_defaults(engine)
    before = ids_by_name(engine, ["Tinca tinca", "Animalia", "Carassius auratus"])
    report = import_checklist(engine, write_csv(tmp_path / "fishes.csv"))
    assert report.added + report.updated == 46 and report.updated >= 4  # Animalia, Plantae, Fungi, Tinca, Tinca tinca
    after = ids_by_name(engine, ["Tinca tinca", "Animalia", "Carassius auratus"])
    assert after == before  # the same taxa: species_id's suggestions still point at them
    assert lineage(engine, "Tinca tinca") == ["Animalia", "Chordata", "Actinopterygii", "Cypriniformes", "Tincidae",
                                              "Tinca", "Tinca tinca"]
    (tench,) = taxa_named(engine, "Tinca tinca")
    assert tench.source == "fishes" and tench.source_id == "9803"
    assert tench.iconic_taxon_id == taxa_named(engine, "Actinopterygii")[0].id
    assert lineage(engine, "Carassius auratus") == ["Animalia", "Carassius", "Carassius auratus"]  # the defaults' own
    # the defaults loaded again do not move what the checklist placed, nor make a second tench
    reports = load_defaults(engine)
    assert (reports[0].added, reports[0].updated, reports[0].higher_added) == (0, 0, 0)
    assert len(taxa_named(engine, "Tinca tinca")) == 1 and len(taxa_named(engine, "Tinca")) == 1
    assert lineage(engine, "Tinca tinca")[2] == "Actinopterygii"
    again = import_checklist(engine, tmp_path / "fishes.csv")
    assert (again.added, again.updated, again.unchanged) == (0, 0, 46)
    with engine.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(TaxonName).where(
            TaxonName.name == "Tinca tinca", TaxonName.preferred.is_(True))) == 1
