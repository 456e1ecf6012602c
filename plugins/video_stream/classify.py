"""Events' crops classified with species_id's model (the project's video_stream ``model``, or
species_id's default), in batches: a ``Classifier`` takes BGR crops and gives each crop its
top-k, ``[{"label", "scientific_name", "taxon_id", "score"}]``, best first.

As in species_id, classes that stand for one taxon are added up (the five ImageNet cat classes
are one *Felis catus*) and only organisms are ranked. A crop whose best class is not an
organism (a car, a bench) gets that one class alone, with ``scientific_name`` None: the
pipeline reads it to type an event ``vehicle``, and never reports it as a taxon.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

Classifier = Callable[[list[np.ndarray]], list[list[dict[str, Any]]]]


def unclassified(crops: list[np.ndarray]) -> list[list[dict[str, Any]]]:
    """A classifier that recognises nothing (motion only; also what tests use without a model)."""
    return [[] for _ in crops]


def _label(entry: dict[str, Any]) -> str:
    """A suggestion's name: the class's own name where the taxon is one class ("tench"), the
    scientific name where several classes make it (the cats: "Felis catus")."""
    common = entry.get("common_names") or []
    if common and len(entry.get("classes") or []) <= 1:
        return str(common[0])
    return str(entry.get("scientific_name") or (common[0] if common else ""))


def species_classifier(engine: Any, settings: dict[str, Any]) -> Classifier:
    """species_id's model as a Classifier for this project's ``settings`` (``model``, ``top_k``).
    The model is loaded now (once per process: species_id keeps it); raises species_id's
    ModelError or KeyError when it cannot be."""
    from plugins.species_id.inference import classify, rank
    from plugins.species_id.runtime import Runtime
    from plugins.species_id.service import model_for

    catalogue = Runtime.of(engine).catalogue()
    model = model_for(catalogue, settings.get("model"))
    top_k = int(settings.get("top_k") or 3)
    batch_size = int(catalogue.config.batch_size)
    taxon_ids: dict[str, int | None] = {}

    def ids_for(names: set[str]) -> None:
        from core.taxonomy import ids_by_name

        missing = {n for n in names if n not in taxon_ids}
        if missing:
            try:
                found = ids_by_name(engine, missing)
            except Exception:  # the taxonomy unreachable leaves the ids out, never the result
                return
            taxon_ids.update({n: found.get(n) for n in missing})

    def run(crops: list[np.ndarray]) -> list[list[dict[str, Any]]]:
        if not crops:
            return []
        probs = classify(model, crops, batch_size)
        out: list[list[dict[str, Any]]] = []
        for row in probs:
            ranked = rank(model.taxa, row, top_k, False)
            if ranked["rejected"]:
                guess = ranked["best_guess"]
                out.append([{"label": guess.get("name") or "", "scientific_name": None, "taxon_id": None,
                             "score": round(float(guess.get("score") or 0.0), 4)}] if guess.get("name") else [])
                continue
            out.append([{"label": _label(e), "scientific_name": e["scientific_name"], "taxon_id": None,
                         "score": round(float(e["score"]), 4)} for e in ranked["results"]])
        ids_for({s["scientific_name"] for row in out for s in row if s["scientific_name"]})
        for row in out:
            for s in row:
                if s["scientific_name"]:
                    s["taxon_id"] = taxon_ids.get(s["scientific_name"])
        return out

    return run


def combine(rows: Sequence[list[dict[str, Any]]], top_k: int) -> list[dict[str, Any]]:
    """One ranking for an event from its crops' rankings: each class's mean score over the
    crops (a crop that did not rank it counts 0), best first, ``top_k`` kept."""
    if not rows:
        return []
    totals: dict[tuple[str | None, str], dict[str, Any]] = {}
    for row in rows:
        for s in row:
            key = (s.get("scientific_name"), s.get("label") or "")
            entry = totals.setdefault(key, {**s, "score": 0.0})
            entry["score"] += float(s["score"])
    ranked = sorted(totals.values(), key=lambda s: (-s["score"], s.get("label") or ""))
    for s in ranked:
        s["score"] = round(s["score"] / len(rows), 4)
    return ranked[:top_k]
