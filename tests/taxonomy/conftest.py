"""A small real checklist, written by the tests as a Darwin Core CSV and as a Darwin Core
Archive (GBIF's layout: meta.xml, a tab-separated Taxon core and a VernacularName extension)."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

from core.taxonomy.checklist import GBIF_BACKBONE

# taxonID, parentNameUsageID, acceptedNameUsageID, scientificName, authorship, rank, status
TAXA = [
    ("1", "", "", "Animalia", "", "kingdom", "accepted"),
    ("44", "1", "", "Chordata", "", "phylum", "accepted"),
    ("212", "44", "", "Aves", "", "class", "accepted"),
    ("729", "212", "", "Passeriformes", "", "order", "accepted"),
    ("5290", "729", "", "Turdidae", "", "family", "accepted"),
    ("2490", "5290", "", "Turdus", "", "genus", "accepted"),
    ("2490719", "2490", "", "Turdus merula Linnaeus, 1758", "Linnaeus, 1758", "species", "accepted"),
    ("9001", "", "2490719", "Merula vulgaris Leach, 1816", "Leach, 1816", "species", "heterotypic synonym"),
    ("9264", "729", "", "Paridae", "", "family", "accepted"),
    ("9265", "9264", "", "Parus", "", "genus", "accepted"),
    ("9266", "9265", "", "Parus major", "", "species", "accepted"),
    ("5291", "729", "", "Passeridae", "", "family", "accepted"),
    ("5292", "5291", "", "Passer", "", "genus", "accepted"),
    ("5293", "5292", "", "Passer domesticus", "", "species", "accepted"),
    ("5294", "5293", "", "Passer domesticus domesticus", "", "subspecies", "accepted"),
    ("359", "44", "", "Mammalia", "", "class", "accepted"),
    ("732", "359", "", "Carnivora", "", "order", "accepted"),
    ("9701", "732", "", "Canidae", "", "family", "accepted"),
    ("9702", "9701", "", "Vulpes", "", "genus", "accepted"),
    ("9703", "9702", "", "Vulpes vulpes", "", "species", "accepted"),
    ("9704", "9702", "9703", "Canis vulpes", "", "species", "homotypic synonym"),
    ("204", "44", "", "Actinopterygii", "", "class", "accepted"),
    ("1153", "204", "", "Cypriniformes", "", "order", "accepted"),
    ("9801", "1153", "", "Tincidae", "", "family", "accepted"),
    ("9802", "9801", "", "Tinca", "", "genus", "accepted"),
    ("9803", "9802", "", "Tinca tinca", "", "species", "accepted"),
    ("6", "", "", "Plantae", "", "kingdom", "accepted"),
    ("7707728", "6", "", "Tracheophyta", "", "phylum", "accepted"),
    ("220", "7707728", "", "Magnoliopsida", "", "class", "accepted"),
    ("1354", "220", "", "Fagales", "", "order", "accepted"),
    ("4689", "1354", "", "Fagaceae", "", "family", "accepted"),
    ("2877951", "4689", "", "Quercus", "", "genus", "accepted"),
    ("2878688", "2877951", "", "Quercus robur", "", "species", "accepted"),
    ("8001", "", "2878688", "Quercus pedunculata", "", "species", "synonym"),
    ("2879098", "2877951", "", "Quercus ilex", "", "species", "accepted"),
    ("5", "", "", "Fungi", "", "kingdom", "accepted"),
    ("34", "5", "", "Basidiomycota", "", "phylum", "accepted"),
    ("186", "34", "", "Agaricomycetes", "", "class", "accepted"),
    ("1499", "186", "", "Agaricales", "", "order", "accepted"),
    ("4379", "1499", "", "Amanitaceae", "", "family", "accepted"),
    ("2526", "4379", "", "Amanita", "", "genus", "accepted"),
    ("5237", "2526", "", "Amanita muscaria", "", "species", "accepted"),
    ("54", "1", "", "Arthropoda", "", "phylum", "accepted"),
    ("216", "54", "", "Insecta", "", "class", "accepted"),
    ("797", "216", "", "Lepidoptera", "", "order", "accepted"),
    ("7017", "797", "", "Nymphalidae", "", "family", "accepted"),
    ("7018", "7017", "", "Vanessa", "", "genus", "accepted"),
    ("7019", "7018", "", "Vanessa atalanta", "", "species", "accepted"),
    # an unranked clade: skipped, and its child hangs from its parent instead
    ("9996", "1", "", "Bilateria", "", "unranked", "accepted"),
    ("52", "9996", "", "Mollusca", "", "phylum", "accepted"),
    # bad records
    ("9997", "7018", "", "", "", "species", "accepted"),  # no scientific name
    ("9994", "", "424242", "Vanessa cardui", "", "species", "synonym"),  # its accepted taxon is not in the file
]
ACCEPTED = 46
"""The accepted taxa the checklist loads (not the synonyms, the unranked clade or the bad records)."""

KINGDOMS = {"1": "Animalia", "6": "Plantae", "5": "Fungi"}

VERNACULAR = [  # taxonID, name, language, preferred
    ("2490719", "Eurasian blackbird", "en", True),
    ("2490719", "Mirlo común", "es", True),
    ("2490719", "Merla", "ca", True),
    ("9266", "Great tit", "en", True),
    ("9266", "Carbonero común", "es", True),
    ("9266", "Mésange charbonnière", "fr", True),
    ("5293", "House sparrow", "en", True),
    ("5293", "Gorrión común", "es", True),
    ("9703", "Red fox", "en", True),
    ("9703", "Zorro rojo", "es", True),
    ("9703", "Raposo", "es", False),
    ("9803", "Tench", "en", True),
    ("9803", "Tenca", "es", True),
    ("2878688", "Pedunculate oak", "en", True),
    ("2878688", "Roble común", "es", True),
    ("2879098", "Holm oak", "en", True),
    ("2879098", "Encina", "es", True),
    ("5237", "Fly agaric", "en", True),
    ("5237", "Matamoscas", "es", True),
    ("7019", "Red admiral", "en", True),
    ("7019", "Vulcana", "es", True),
    ("424242", "Painted lady", "en", True),  # no such taxon in the core: skipped
]

CSV_HEADER = ["taxonID", "parentNameUsageID", "acceptedNameUsageID", "scientificName", "scientificNameAuthorship",
              "taxonRank", "taxonomicStatus", "kingdom", "vernacularName", "language"]


def kingdom_of(taxon_id: str) -> str:
    by_id = {t[0]: t for t in TAXA}
    seen = taxon_id
    while seen in by_id:
        if seen in KINGDOMS:
            return KINGDOMS[seen]
        seen = by_id[seen][1] or by_id.get(by_id[seen][2], ("",) * 7)[1]
    return ""


def write_csv(path: Path) -> Path:
    """The checklist as a comma-separated Darwin Core file, the first vernacular name of each
    taxon in its row (English and Spanish), with one line of too few fields after the header."""
    first: dict[str, tuple[str, str]] = {}
    for taxon_id, name, language, _ in VERNACULAR:
        first.setdefault(taxon_id, (name, language))
    first["2879098"] = ("Encina", "es")  # a Spanish name in the core too
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for row in TAXA[:10]:
        writer.writerow([*row, kingdom_of(row[0]), *first.get(row[0], ("", ""))])
    out.write("9999,7018,,Vanessa cardui,,species\n")  # line 12: 6 fields of 10
    for row in TAXA[10:]:
        writer.writerow([*row, kingdom_of(row[0]), *first.get(row[0], ("", ""))])
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


META = """<?xml version="1.0" encoding="UTF-8"?>
<archive xmlns="http://rs.tdwg.org/dwc/text/" metadata="eml.xml">
  <core encoding="UTF-8" fieldsTerminatedBy="\\t" linesTerminatedBy="\\n" fieldsEnclosedBy="" ignoreHeaderLines="1"
        rowType="{core}">
    <files><location>Taxon.tsv</location></files>
    <id index="0"/>
    <field index="0" term="http://rs.tdwg.org/dwc/terms/taxonID"/>
    <field index="1" term="http://rs.tdwg.org/dwc/terms/datasetID"/>
    <field index="2" term="http://rs.tdwg.org/dwc/terms/parentNameUsageID"/>
    <field index="3" term="http://rs.tdwg.org/dwc/terms/acceptedNameUsageID"/>
    <field index="4" term="http://rs.tdwg.org/dwc/terms/scientificName"/>
    <field index="5" term="http://rs.tdwg.org/dwc/terms/scientificNameAuthorship"/>
    <field index="6" term="http://rs.gbif.org/terms/1.0/canonicalName"/>
    <field index="7" term="http://rs.tdwg.org/dwc/terms/taxonRank"/>
    <field index="8" term="http://rs.tdwg.org/dwc/terms/taxonomicStatus"/>
    <field index="9" term="http://rs.tdwg.org/dwc/terms/kingdom"/>
  </core>
  <extension encoding="UTF-8" fieldsTerminatedBy="\\t" linesTerminatedBy="\\n" fieldsEnclosedBy="" ignoreHeaderLines="1"
             rowType="http://rs.gbif.org/terms/1.0/VernacularName">
    <files><location>VernacularName.tsv</location></files>
    <coreid index="0"/>
    <field index="1" term="http://rs.tdwg.org/dwc/terms/vernacularName"/>
    <field index="2" term="http://purl.org/dc/terms/language"/>
    <field index="3" term="http://rs.gbif.org/terms/1.0/isPreferredName"/>
  </extension>
</archive>
"""


def canonical(name: str, authorship: str) -> str:
    return name[: -len(authorship)].strip() if authorship and name.endswith(authorship) else name


def write_dwca(path: Path, core: str = "http://rs.tdwg.org/dwc/terms/Taxon", meta: bool = True) -> Path:
    """The checklist as GBIF publishes a Darwin Core Archive: the Backbone's datasetID (its
    taxonIDs are GBIF keys), canonicalName, and the vernacular names in four languages."""
    taxa = ["\t".join(["taxonID", "datasetID", "parentNameUsageID", "acceptedNameUsageID", "scientificName",
                       "scientificNameAuthorship", "canonicalName", "taxonRank", "taxonomicStatus", "kingdom"])]
    for taxon_id, parent, accepted, name, authorship, rank, status in TAXA:
        taxa.append("\t".join([taxon_id, GBIF_BACKBONE, parent, accepted, name, authorship,
                               canonical(name, authorship), rank, status, kingdom_of(taxon_id)]))
    names = ["\t".join(["taxonID", "vernacularName", "language", "isPreferredName"])]
    names += ["\t".join([t, n, lang, "true" if p else "false"]) for t, n, lang, p in VERNACULAR]
    with zipfile.ZipFile(path, "w") as archive:
        if meta:
            archive.writestr("meta.xml", META.format(core=core))
        archive.writestr("Taxon.tsv", "\n".join(taxa) + "\n")
        archive.writestr("VernacularName.tsv", "\n".join(names) + "\n")
    return path
