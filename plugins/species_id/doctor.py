"""species_id's part of ``observatory doctor``: the models its projects use are there and load,
or can be built (the ``doctor_checks`` hook)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.config import Settings
from core.registry import Registry
from core.types import DoctorCheck as Check

SPECIES_ID = "species_id"


def check_models(settings: Settings, registry: Registry) -> list[Check]:
    """The models that species_id's projects use are present and load."""
    from plugins.species_id import catalogue as catalogue_mod
    from plugins.species_id import inference, model_build

    users = registry.projects_enabling(SPECIES_ID)
    if not users:
        return [Check("models", "ok", f"no project enables {SPECIES_ID}: no model needed")]
    config = dict(registry.services[SPECIES_ID].config)
    try:
        catalogue = catalogue_mod.build_catalogue(config, settings.data_dir,
                                                  Path(settings.registry_path).resolve().parent)
    except catalogue_mod.CatalogueError as exc:
        return [Check("models", "problem", str(exc), f"correct services.{SPECIES_ID}.config in "
                      f"{settings.registry_path} (docs/species_id.md)")]
    found = [Check("models", "warning", problem, "fix or remove that entry: `observatory models remove NAME`, then "
                   "`observatory models add` it again") for problem in catalogue.problems]
    chosen: dict[str, list[str]] = {}
    for slug in users:
        name = registry.project(slug).settings(SPECIES_ID).get("model") or catalogue.default
        chosen.setdefault(name, []).append(slug)
    for name, slugs in chosen.items():
        found.append(_check_model(catalogue, catalogue_mod, model_build, inference, name, ", ".join(slugs)))
    return found


def _check_model(catalogue: Any, catalogue_mod: Any, model_build: Any, inference: Any, name: str,
                 projects: str) -> Check:
    try:
        spec = catalogue.get(name)
    except catalogue_mod.CatalogueError as exc:
        return Check("models", "problem", f"projects {projects}: {exc}",
                     f"set services.{SPECIES_ID}.model of those projects to a model `observatory models list` shows")
    path = spec.onnx_path(catalogue.models_dir)
    if path.is_file():
        try:
            model = inference.open_model(spec, path, threads=1)
        except inference.ModelError as exc:
            remedy = (f"build it again: rm {path} && observatory models build {name}" if spec.builtin else
                      f"replace the file, or add the model again: observatory models add {name} --onnx FILE "
                      "--labels FILE --replace")
            return Check("models", "problem", str(exc), remedy)
        return Check("models", "ok", f"model {name} {spec.version} loads ({len(model.labels)} labels), "
                     f"used by {projects}")
    if spec.builtin:
        recipe = model_build.MODELS[spec.builtin]
        try:
            model_build.find_weights(recipe)
        except RuntimeError as exc:
            return Check("models", "problem", f"model {name} (used by {projects}) cannot be built: {exc}",
                         f"{recipe['install']}, then: observatory models build {name}")
        return Check("models", "warning", f"model {name} (used by {projects}) is not built yet; the first "
                     "identification builds it, and waits", f"observatory models build {name}")
    return Check("models", "problem", f"model {name} (used by {projects}): the ONNX file {path} does not exist",
                 f"put the file there, or correct services.{SPECIES_ID}.config.models in registry.yaml, or add it: "
                 f"observatory models add {name} --onnx FILE --labels FILE")
