"""species_id and the engine's taxonomy: its label file's organisms offered as default taxa
(``register_taxa``), and its suggestions pointed at taxa (``taxon_id``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Iterator

from sqlalchemy.exc import DBAPIError

from core.types import TaxonRecord
from plugins.species_id.catalogue import Label, load_labels, packaged_labels

if TYPE_CHECKING:
    from core.engine import Engine

log = logging.getLogger(__name__)
LABELS = "imagenet_labels.csv"
_BINOMIAL_RANKS = ("species", "subspecies", "variety", "form")
NOT_NAMES = frozenset({"Granny Smith"})
"""Class names that are not names of their taxon (a cultivar of *Malus domestica*)."""


def records(labels: tuple[Label, ...] | None = None) -> Iterator[TaxonRecord]:
    """One record per scientific name of the label file (organisms only): its rank, kingdom and
    the genus of a binomial; its class name as the English common name of a species (or lower)
    that is the only class of its taxon. Not for more: the dog breeds are not names of *Canis
    lupus familiaris*, and "jay" (Corvidae), "acorn" (Quercus) or "mushroom" (Fungi) are not
    names of the higher taxa they stand for."""
    labels = labels if labels is not None else load_labels(packaged_labels(LABELS)).labels
    grouped: dict[tuple[str, str], list[Label]] = {}
    for label in labels:
        if label.organism and label.scientific_name and label.rank:
            grouped.setdefault((label.scientific_name, label.rank), []).append(label)
    for (name, rank), members in grouped.items():
        first = members[0]
        classification = {k: v for k, v in (("kingdom", first.kingdom), ("family", first.family)) if v}
        words = name.split()
        genus = first.genus or (words[0] if rank in _BINOMIAL_RANKS and len(words) >= 2 else None)
        if genus:
            classification["genus"] = genus
        named = len(members) == 1 and rank in _BINOMIAL_RANKS and first.name not in NOT_NAMES and first.name != name
        common = {"en": first.name} if named else {}
        gbif = int(first.gbif_id) if first.gbif_id and first.gbif_id.isdigit() else None
        yield TaxonRecord(name, rank, classification, common, gbif)


def suggestions(result: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every suggestion of an enrichment result: ``results``, ``best`` and each photo's."""
    yield from result.get("results") or []
    if isinstance(result.get("best"), dict):
        yield result["best"]
    for image in result.get("images") or []:
        yield from image.get("results") or []


def add_taxon_ids(engine: Engine, result: dict[str, Any]) -> dict[str, Any]:
    """Give each suggestion the ``taxon_id`` of its scientific name (None where the engine has
    no such taxon). The taxonomy being unreachable leaves the ids out, never the result."""
    from core.taxonomy import ids_by_name

    found = list(suggestions(result))
    names = {s["scientific_name"] for s in found if s.get("scientific_name")}
    try:
        ids = ids_by_name(engine, names) if names else {}
    except DBAPIError as exc:
        log.warning("species_id: suggestions not linked to taxa: %s", exc)
        return result
    for suggestion in found:
        suggestion["taxon_id"] = ids.get(suggestion.get("scientific_name") or "")
    return result
