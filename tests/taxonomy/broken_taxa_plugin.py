"""A plugin whose register_taxa fails half-way: its taxa are left out, the engine starts."""

from core import hookimpl
from core.types import TaxonRecord


@hookimpl
def register_taxa(register):
    register(TaxonRecord("Brokenia halfway", "species", {"kingdom": "Animalia"}))
    raise RuntimeError("the label file is gone")
