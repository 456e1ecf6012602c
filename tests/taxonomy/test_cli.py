"""``observatory taxa import|search|show|defaults`` as an operator runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from core.cli import engine_cli
from core.engine import Engine
from core.taxonomy import ids_by_name
from tests.taxonomy.conftest import ACCEPTED, write_csv, write_dwca


def run(*args: str) -> Result:
    return CliRunner().invoke(engine_cli(), list(args), prog_name="observatory", catch_exceptions=False)


@pytest.fixture
def csv_path(engine: Engine, tmp_path: Path) -> str:
    """The test checklist as CSV, over an empty taxon table (the engine the command starts loads
    the defaults first, as a fresh installation would)."""
    return str(write_csv(tmp_path / "checklist.csv"))


def test_import_prints_its_report_and_the_skipped_lines(csv_path: str, engine: Engine) -> None:
    first = run("taxa", "import", csv_path, "--source", "my-list")
    assert first.exit_code == 0, first.output
    lines = first.stdout.splitlines()
    assert lines[0].startswith("my-list: ") and ", 4 skipped" in lines[0]
    assert lines[1:] == ["  skipped line 12: has 6 fields, the header has 10",
                         "  skipped line 51: Bilateria: unknown rank 'unranked' (kingdom, phylum, class, order, family, "
                         "genus, species... as iNaturalist has them)",
                         "  skipped line 53: no scientificName",
                         "  skipped line 54: 'Vanessa cardui': taxon '424242' is not in the checklist"]
    again = run("taxa", "import", csv_path, "--source", "my-list", "--json")
    report = json.loads(again.stdout)
    assert (report["added"], report["updated"], report["unchanged"], report["skipped"]) == (0, 0, ACCEPTED, 4)
    assert report["skipped_records"][0] == {"line": 12, "file": None, "reason": "has 6 fields, the header has 10"}
    assert "Vulpes vulpes" in ids_by_name(engine, ["Vulpes vulpes"])


def test_a_dry_run_stores_nothing(csv_path: str, engine: Engine) -> None:
    result = run("taxa", "import", csv_path, "--dry-run")
    assert result.exit_code == 0 and "[dry run: nothing stored]" in result.stdout
    assert list(ids_by_name(engine, ["Quercus ilex", "Tinca tinca"])) == ["Tinca tinca"]  # only the defaults' tench


def test_search_show_and_defaults(csv_path: str, engine: Engine) -> None:
    run("taxa", "import", csv_path)
    found = run("taxa", "search", "encina")
    assert found.exit_code == 0 and found.stderr == "1 of 1 taxa\n"
    oak = ids_by_name(engine, ["Quercus ilex"])["Quercus ilex"]
    assert found.stdout == f"{oak}\tspecies\tQuercus ilex  [Encina]\n"
    assert run("taxa", "search", "encina", "--lexicon", "en").stdout == ""
    shown = json.loads(run("taxa", "show", str(oak), "--lexicon", "es").stdout)
    assert shown["name"] == "Quercus ilex" and shown["preferred_common_name"] == "Encina"
    assert [a["name"] for a in shown["ancestors"]][-2:] == ["Fagaceae", "Quercus"] and shown["iconic_taxon_name"] == "Plantae"
    defaults = run("taxa", "defaults")
    assert defaults.exit_code == 0 and defaults.stdout.startswith("species_id: 0 added, 0 updated, ")


@pytest.mark.parametrize("make, message", [
    (lambda d: str(d / "missing.csv"), "missing.csv: no such file"),
    (lambda d: (d / "names.csv").write_text("taxonID,name\n1,Animalia\n") and str(d / "names.csv"),
     "no scientificName column (found: name, taxonid)"),
    (lambda d: str(write_dwca(d / "occurrences.zip", core="http://rs.tdwg.org/dwc/terms/Occurrence")),
     "a Darwin Core Archive whose core is 'occurrence', not Taxon"),
    (lambda d: str(write_dwca(d / "plain.zip", meta=False)), "a zip without meta.xml is not a Darwin Core Archive"),
])
def test_files_that_are_no_checklist_are_clear_errors(engine: Engine, tmp_path: Path, make, message: str) -> None:
    result = run("taxa", "import", make(tmp_path))
    assert result.exit_code == 2 and message in result.stderr and result.stderr.startswith("error: ")


def test_bad_queries_and_unknown_taxa(engine: Engine) -> None:
    short = run("taxa", "search", "a")
    assert short.exit_code == 2 and "at least 2" in short.stderr
    missing = run("taxa", "show", "999999")
    assert missing.exit_code == 1 and "there is no taxon 999999" in missing.stderr
    assert run("taxa", "show", "0").exit_code == 2
    assert run("taxa", "search", "tinca", "--rank", "clade").exit_code == 2
