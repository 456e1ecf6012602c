"""A large checklist imports in seconds, and again as all unchanged (batched writes).

``OBSERVATORY_TAXA_SCALE`` sets how many taxa (20,000 by default; 100,000 for the figures in
docs/taxonomy.md)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import sqlalchemy as sa

from core.db.models import Taxon
from core.engine import Engine
from core.taxonomy import get, import_checklist, search

SCALE = int(os.environ.get("OBSERVATORY_TAXA_SCALE", "20000"))


def write_tree(path: Path, species: int) -> int:
    """A GBIF-like Taxon.tsv: 1 kingdom, 10 phyla, 100 classes, 1,000 orders... down to genera,
    and ``species`` species with an English name each; the number of taxa written."""
    lines = ["taxonID\tparentNameUsageID\tacceptedNameUsageID\tscientificName\ttaxonRank\ttaxonomicStatus\t"
             "vernacularName\tlanguage"]
    lines.append("1\t\t\tAnimalia\tkingdom\taccepted\tanimals\ten")
    genera = max(1, species // 10)
    ranks = [("phylum", 10), ("class", 10), ("order", 10), ("family", 10)]
    parents, next_id = ["1"], 2
    for rank, fan in ranks:
        made = []
        for parent in parents:
            for _ in range(fan):
                if len(made) >= genera:
                    break
                made.append(str(next_id))
                lines.append(f"{next_id}\t{parent}\t\t{rank.title()}us{next_id}\t{rank}\taccepted\t\t")
                next_id += 1
        parents = made
    genus_ids = []
    for i in range(genera):
        genus_ids.append(str(next_id))
        lines.append(f"{next_id}\t{parents[i % len(parents)]}\t\tGenus{next_id}\tgenus\taccepted\t\t")
        next_id += 1
    for i in range(species):
        genus = genus_ids[i % genera]
        lines.append(f"{next_id}\t{genus}\t\tGenus{genus} species{i}\tspecies\taccepted\tspecies number {i}\ten")
        next_id += 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines) - 1


def test_a_large_checklist_imports_in_seconds(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "Taxon.tsv"
    total = write_tree(path, int(SCALE * 0.88))
    began, cpu = time.perf_counter(), time.process_time()
    report = import_checklist(engine, path, source="big")
    first, first_cpu = time.perf_counter() - began, time.process_time() - cpu
    assert (report.added, report.skipped) == (total, [])
    began = time.perf_counter()
    again = import_checklist(engine, path, source="big")
    second = time.perf_counter() - began
    assert (again.added, again.updated, again.unchanged) == (0, 0, total)
    print(f"\n{total:,} taxa on {engine.db.dialect.name}: imported in {first:.1f} s ({first_cpu:.1f} s of this "
          f"process's CPU), again (all unchanged) in {second:.1f} s")
    assert first < max(20.0, total / 2000)  # seconds for 100,000 taxa, with room for a slow shared CI machine
    found = search(engine, "species number 12", limit=5)
    assert found.total >= 1 and found.results[0].preferred_common_name.startswith("species number 12")
    with engine.sessions() as session:
        leaf = session.scalars(sa.select(Taxon).where(Taxon.rank == "species").limit(1)).one()
    assert [a.rank for a in get(engine, leaf.id).ancestors] == ["kingdom", "phylum", "class", "order", "family", "genus"]
