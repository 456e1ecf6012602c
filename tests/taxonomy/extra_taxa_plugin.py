"""A plugin offering taxa that species_id offers too (one taxon each), and one of its own."""

from core import hookimpl
from core.types import TaxonRecord


@hookimpl
def register_taxa(register):
    register(TaxonRecord("Tinca tinca", "species", {"kingdom": "Animalia", "genus": "Tinca"}, {"es": "Tenca"}))
    register(TaxonRecord("Erithacus rubecula", "species", {"kingdom": "Animalia", "class": "Aves",
                                                           "genus": "Erithacus"}, {"en": "European robin", "ca": "Pit-roig"},
                         gbif_key=2492462))
