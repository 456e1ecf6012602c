"""The engine's taxonomy: taxa with iNaturalist's ranks, ancestry and iconic groups, and their
names in every language.

* ``load_records`` / ``import_checklist``: load plugins' records or a Darwin Core checklist
  (CSV, or a DwC-A whose core is Taxon), idempotent, with a ``Report``.
* ``search``, ``get``, ``ids_by_name``, ``descendant_filter``, ``at_or_below``: read it.
* ``load_defaults``: every installed plugin's ``register_taxa`` (done at start-up when the taxon
  table is empty).

See docs/taxonomy.md.
"""

from core.taxonomy.checklist import ChecklistError, import_checklist
from core.taxonomy.defaults import load_defaults, load_defaults_if_empty
from core.taxonomy.load import Report, Skipped, load_records
from core.taxonomy.names import ICONIC_NAMES, RANK_LEVELS, search_key
from core.taxonomy.search import (
    TaxonDetail,
    TaxonNotFound,
    TaxonSearch,
    TaxonSummary,
    ancestor_ids,
    at_or_below,
    descendant_filter,
    get,
    ids_by_name,
    search,
)

__all__ = [
    "ChecklistError", "ICONIC_NAMES", "RANK_LEVELS", "Report", "Skipped", "TaxonDetail", "TaxonNotFound",
    "TaxonSearch", "TaxonSummary", "ancestor_ids", "at_or_below", "descendant_filter", "get", "ids_by_name", "import_checklist",
    "load_defaults", "load_defaults_if_empty", "load_records", "search", "search_key",
]
