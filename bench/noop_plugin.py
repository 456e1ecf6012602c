"""A benchmark plugin that enriches every observation with nothing.

Enabled for the benchmark's project, it makes ``submit`` store one pending enrichment row and
queue one task per observation, which is the work the ingest benchmark means to measure.
"""

from typing import Any

from core import hookimpl
from core.types import ObservationView, ProjectContext


@hookimpl
def enrich_observation(observation: ObservationView, project: ProjectContext) -> dict[str, Any]:
    return {"noop": True}
