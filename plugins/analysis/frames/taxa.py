"""A taxon's name, rank and ancestors' names, as the frames' taxon columns hold them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from plugins.analysis.frames.columns import RANKS


@dataclass(frozen=True)
class Lineage:
    """One taxon: its scientific name, its rank and the names at each rank of ``RANKS`` above it
    (itself included)."""

    name: str
    rank: str
    ranks: Mapping[str, str] = field(default_factory=dict)


Lookup = Callable[[list[int]], Mapping[int, Lineage]]
"""Lineages of taxon ids (those it does not know left out)."""


def lineage_of(name: str, rank: str, ancestors: Iterable[tuple[str, str]]) -> Lineage:
    """The Lineage of a taxon from its ancestors' (name, rank), root first."""
    ranks = {r: n for n, r in (*ancestors, (name, rank)) if r in RANKS}
    return Lineage(name, rank, ranks)


def taxon_columns(taxon_ids: list[int | None], lookup: Lookup, known: dict[int, Lineage]) -> dict[str, list[Any]]:
    """The taxon columns (taxon_name, taxon_rank, kingdom ... species) of ``taxon_ids``; ``known``
    caches lineages between batches (taxa are few, observations many)."""
    wanted = sorted({t for t in taxon_ids if t is not None and t not in known})
    if wanted:
        found = lookup(wanted)
        known.update(found)
    lineages = [known.get(t) if t is not None else None for t in taxon_ids]
    out: dict[str, list[Any]] = {
        "taxon_name": [x.name if x else None for x in lineages],
        "taxon_rank": [x.rank if x else None for x in lineages],
    }
    for rank in RANKS:
        out[rank] = [x.ranks.get(rank) if x else None for x in lineages]
    return out
