"""Importing Darwin Core checklists (CSV and DwC-A), twice; the tree, names and reports."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.db.models import Taxon, TaxonName
from core.engine import Engine
from core.taxonomy import ChecklistError, get, ids_by_name, import_checklist
from tests.taxonomy.conftest import ACCEPTED, write_csv, write_dwca


def taxon(engine: Engine, name: str) -> Taxon:
    with engine.sessions() as session:
        found = session.scalars(sa.select(Taxon).where(Taxon.scientific_name == name)).all()
        assert len(found) == 1, f"{len(found)} taxa named {name}"
        return found[0]


def names_of(engine: Engine, taxon_id: int) -> set[tuple[str, str, bool]]:
    with engine.sessions() as session:
        return {(n.lexicon, n.name, n.preferred) for n in session.scalars(
            sa.select(TaxonName).where(TaxonName.taxon_id == taxon_id))}


def count(engine: Engine, model: type) -> int:
    with engine.sessions() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def lineage(engine: Engine, name: str) -> list[str]:
    """The names of a taxon's ancestors root first, then its own, from its stored ancestry."""
    found = taxon(engine, name)
    return [a.name for a in get(engine, found.id).ancestors] + [found.scientific_name]


def test_a_csv_checklist_builds_the_tree_and_reports_its_bad_lines(engine: Engine, tmp_path: Path) -> None:
    report = import_checklist(engine, write_csv(tmp_path / "birds-and-more.csv"))
    assert report.source == "birds-and-more"
    assert (report.added, report.updated, report.unchanged) == (ACCEPTED, 0, 0)
    reasons = {s.line: s.reason for s in report.skipped}
    assert reasons[12] == "has 6 fields, the header has 10"
    assert "unknown rank 'unranked'" in reasons[51]
    assert reasons[53] == "no scientificName"
    assert "'424242' is not in the checklist" in reasons[54]
    assert len(report.skipped) == 4
    assert count(engine, Taxon) == ACCEPTED

    merula = taxon(engine, "Turdus merula")  # the authorship is not part of the name
    assert merula.rank == "species" and merula.rank_level == 10 and merula.source == "birds-and-more"
    assert lineage(engine, "Turdus merula") == ["Animalia", "Chordata", "Aves", "Passeriformes", "Turdidae", "Turdus",
                                                "Turdus merula"]
    parent = taxon(engine, "Turdus")
    assert merula.parent_id == parent.id and merula.ancestry == f"{parent.ancestry}/{parent.id}"
    assert merula.ancestry.split("/")[0] == str(taxon(engine, "Animalia").id) and taxon(engine, "Animalia").ancestry is None
    # iconic groups: the nearest ancestor (or itself) named as iNaturalist's
    for name, group in [("Turdus merula", "Aves"), ("Vulpes vulpes", "Mammalia"), ("Tinca tinca", "Actinopterygii"),
                        ("Vanessa atalanta", "Insecta"), ("Quercus ilex", "Plantae"), ("Amanita muscaria", "Fungi"),
                        ("Chordata", "Animalia"), ("Aves", "Aves"), ("Mollusca", "Mollusca")]:
        assert taxon(engine, name).iconic_taxon_id == taxon(engine, group).id, name
    # the unranked clade is skipped; its child hangs from the clade's parent
    assert taxon(engine, "Mollusca").parent_id == taxon(engine, "Animalia").id
    assert taxon(engine, "Passer domesticus domesticus").rank_level == 5
    # synonyms are names of their accepted taxon, not taxa
    assert ("scientific", "Merula vulgaris", False) in names_of(engine, merula.id)
    assert ("scientific", "Turdus merula", True) in names_of(engine, merula.id)
    assert ids_by_name(engine, ["Quercus pedunculata", "Canis vulpes", "Nothing here"]) == {
        "Quercus pedunculata": taxon(engine, "Quercus robur").id, "Canis vulpes": taxon(engine, "Vulpes vulpes").id}
    with engine.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Taxon).where(
            Taxon.scientific_name.in_(["Merula vulgaris", "Quercus pedunculata", "Canis vulpes"]))) == 0
    # vernacular names of the core, in English and Spanish
    assert ("en", "Eurasian blackbird", True) in names_of(engine, merula.id)
    assert ("es", "Encina", True) in names_of(engine, taxon(engine, "Quercus ilex").id)

    again = import_checklist(engine, tmp_path / "birds-and-more.csv")
    assert (again.added, again.updated, again.unchanged, again.higher_added, again.names_added) == (0, 0, ACCEPTED, 0, 0)
    assert count(engine, Taxon) == ACCEPTED


def test_a_dwca_with_vernacular_names_in_four_languages(engine: Engine, tmp_path: Path) -> None:
    archive = write_dwca(tmp_path / "backbone-extract.zip")
    report = import_checklist(engine, archive, source="gbif-extract")
    assert (report.added, report.updated, report.unchanged) == (ACCEPTED, 0, 0)
    skipped = {(s.file, s.line): s.reason for s in report.skipped}
    assert "unknown rank" in skipped[("Taxon.tsv", 50)] and skipped[("Taxon.tsv", 52)] == "no scientificName"
    assert "'424242' is not in the checklist" in skipped[("Taxon.tsv", 53)]
    assert "'424242' is not in the checklist" in skipped[("VernacularName.tsv", 23)]
    tit = taxon(engine, "Parus major")
    assert tit.gbif_key == 9266  # the Backbone's taxonIDs are GBIF keys
    assert {("en", "Great tit", True), ("es", "Carbonero común", True), ("fr", "Mésange charbonnière", True)} <= names_of(
        engine, tit.id)
    fox = names_of(engine, taxon(engine, "Vulpes vulpes").id)
    assert ("es", "Zorro rojo", True) in fox and ("es", "Raposo", False) in fox  # one preferred name per language
    assert ("ca", "Merla", True) in names_of(engine, taxon(engine, "Turdus merula").id)

    again = import_checklist(engine, archive, source="gbif-extract")
    assert (again.added, again.updated, again.unchanged, again.names_added) == (0, 0, ACCEPTED, 0)


def test_a_changed_checklist_moves_a_taxon_and_its_descendants(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "list.csv")
    import_checklist(engine, path)
    moved = path.read_text().replace("9265,9264,,Parus,", "9265,5291,,Parus,")  # Parus into Passeridae
    path.write_text(moved)
    report = import_checklist(engine, path)
    assert (report.added, report.updated, report.unchanged) == (0, 2, ACCEPTED - 2)  # Parus, and Parus major below it
    assert lineage(engine, "Parus major")[-3:] == ["Passeridae", "Parus", "Parus major"]


def test_a_dry_run_stores_nothing(engine: Engine, tmp_path: Path) -> None:
    report = import_checklist(engine, write_csv(tmp_path / "list.csv"), dry_run=True)
    assert report.dry_run and report.added == ACCEPTED and len(report.skipped) == 4
    assert count(engine, Taxon) == 0 and count(engine, TaxonName) == 0


def test_a_tab_separated_file_without_ids_builds_its_higher_taxa_from_the_classification(engine: Engine,
                                                                                       tmp_path: Path) -> None:
    path = tmp_path / "Taxon.tsv"
    path.write_text("scientificName\ttaxonRank\tkingdom\tclass\tfamily\tgenus\tvernacularName\tlanguage\n"
                    "Erithacus rubecula\tspecies\tAnimalia\tAves\tMuscicapidae\tErithacus\tPit-roig\tca\n"
                    "Luscinia megarhynchos\tspecies\tAnimalia\tAves\tMuscicapidae\tLuscinia\tRuiseñor común\tes\n"
                    "Sylvia atricapilla\t\tAnimalia\tAves\tSylviidae\t\t\t\n", encoding="utf-8")
    report = import_checklist(engine, path, source="garden-birds")
    assert (report.added, report.higher_added, report.skipped) == (3, 7, [])
    assert lineage(engine, "Sylvia atricapilla") == ["Animalia", "Aves", "Sylviidae", "Sylvia", "Sylvia atricapilla"]
    assert lineage(engine, "Luscinia megarhynchos")[:3] == ["Animalia", "Aves", "Muscicapidae"]
    assert taxon(engine, "Muscicapidae").source_id == "name:Animalia/family/Muscicapidae"
    again = import_checklist(engine, path, source="garden-birds")
    assert (again.added, again.unchanged, again.higher_added) == (0, 3, 0)


def test_files_that_are_no_checklist_are_refused_and_nothing_is_stored(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(ChecklistError, match="no such file"):
        import_checklist(engine, tmp_path / "missing.csv")
    no_names = tmp_path / "no-names.csv"
    no_names.write_text("taxonID,name,rank\n1,Animalia,kingdom\n")
    with pytest.raises(ChecklistError, match="no scientificName column"):
        import_checklist(engine, no_names)
    with pytest.raises(ChecklistError, match="without meta.xml is not a Darwin Core Archive"):
        import_checklist(engine, write_dwca(tmp_path / "bare.zip", meta=False))
    with pytest.raises(ChecklistError, match="whose core is 'occurrence', not Taxon"):
        import_checklist(engine, write_dwca(tmp_path / "obs.zip", core="http://rs.tdwg.org/dwc/terms/Occurrence"))
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("meta.xml", "<archive><core rowType='http://rs.tdwg.org/dwc/terms/Taxon'>")
    with pytest.raises(ChecklistError, match="meta.xml is not well-formed"):
        import_checklist(engine, broken)
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("scientificName,vernacularName,language\nQuercus ilex,Encina común,es\n".encode("latin-1").replace(
        b"com\xfan", b"com\xfan"))
    latin1.write_bytes(b"scientificName,vernacularName,language\nQuercus ilex,Encina com\xfan,es\n")
    with pytest.raises(ChecklistError, match="not UTF-8"):
        import_checklist(engine, latin1)
    assert count(engine, Taxon) == 0
