"""The example plugin of docs/plugin_api.md: an enrichment that counts an observation's photos.

tests/test_plugin_api_docs.py loads it as the plugin ``photo_count`` to run that page's examples.
"""

from __future__ import annotations

from typing import Any

from core import hookimpl
from core.types import ObservationView, ProjectContext

__version__ = "0.1.0"


@hookimpl
def enrich_observation(observation: ObservationView, project: ProjectContext) -> dict[str, Any]:
    photos = [m for m in observation.media if m.content_type.startswith("image/")]
    return {"photos": len(photos)}
