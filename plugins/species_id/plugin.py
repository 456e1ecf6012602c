"""The species_id hooks (entry point ``observatory: species_id``).

* ``enrich_observation``: every photo of the observation identified by the project's model
  (``settings.model``, else the service's default); the result keeps the model's name and
  version, the combined top-k taxa with scores, each photo's own top-k and its measures.
* ``quality_check``: ``low_confidence`` (best score under ``min_score``), ``no_organism``,
  ``photo_too_small``, ``photo_too_dark``/``photo_too_bright``, ``photo_blurred``,
  ``photo_duplicate`` (of a photo in an earlier observation of the project) and
  ``photo_unreadable``; each carries its measured value.
* No ``grade_observation``: a machine suggestion alone never makes research grade, so the
  engine's own rule (casual or needs_id) decides.
* ``register_taxa``: the label file's organisms as default taxa; each suggestion of the
  enrichment carries the ``taxon_id`` of its scientific name.
* ``register_routes``: ``POST /api/v1/identify``; ``register_commands``: ``observatory models``.

Heavy modules (onnxruntime, OpenCV) are imported when first needed, not at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from core.hookspecs import for_kinds, hookimpl
from core.types import Flag, ObservationView, ProjectContext

if TYPE_CHECKING:
    from core.engine import Engine

SERVICE = "species_id"
PHOTO_KINDS = ("generic",)
"""The kinds species_id identifies: the engine's generic observation (photos of organisms);
odour reports and other kinds get no species_id enrichment, row or task."""


@hookimpl
@for_kinds(*PHOTO_KINDS)
def enrich_observation(observation: ObservationView, project: ProjectContext, engine: Engine) -> dict[str, Any]:
    from plugins.species_id import service
    from plugins.species_id.runtime import Runtime

    from plugins.species_id.taxa import add_taxon_ids

    return add_taxon_ids(engine, service.enrich(Runtime.of(engine), observation, project.settings(SERVICE)))


@hookimpl
@for_kinds(*PHOTO_KINDS)
def quality_check(observation: ObservationView, project: ProjectContext, engine: Engine) -> list[Flag]:
    from plugins.species_id import service
    from plugins.species_id.runtime import Runtime

    if SERVICE not in observation.enrichments:
        return []
    return service.quality(Runtime.of(engine), observation, project.settings(SERVICE), project.public)


@hookimpl
def register_taxa(register: Callable[..., None]) -> None:
    from plugins.species_id.taxa import records

    for record in records():
        register(record)


@hookimpl
def doctor_checks(settings: Any, registry: Any) -> list[Any]:
    from plugins.species_id.doctor import check_models

    return check_models(settings, registry)


@hookimpl
def register_routes(register: Callable[..., None]) -> None:
    from plugins.species_id.routes import router

    register(router)


@hookimpl
def register_commands(cli: Any) -> None:
    from plugins.species_id.kit import models

    cli.add_command(models)
