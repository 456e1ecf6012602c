"""A test service with a kind whose schema carries every UI hint the form route reads."""

from __future__ import annotations

from typing import Any, Callable

from core import hookimpl
from core.types import ObservationType

BIRDSONG: dict[str, Any] = {
    "type": "object",
    "title": "Birdsong",
    "x-translations": {"ca": {"title": "Cant d'ocell"}},
    "x-order": ["species", "count", "heard_only"],
    "required": ["species", "count"],
    "additionalProperties": False,
    "properties": {
        "heard_only": {"type": "boolean", "title": "Heard, not seen"},
        "comment": {"type": "string", "maxLength": 2000, "description": "anything else"},
        "count": {"type": "integer", "minimum": 1, "title": "How many", "description": "birds singing at once"},
        "species": {"type": "string", "enum": ["erithacus", "turdus"], "title": "Species",
                    "x-labels": {"erithacus": "Robin", "turdus": "Blackbird"},
                    "x-translations": {"ca": {"title": "Espècie", "x-labels": {"erithacus": "Pit-roig",
                                                                                "turdus": "Merla"}}}},
    },
}


@hookimpl
def register_observation_types(register: Callable[[ObservationType], None]) -> None:
    register(ObservationType(name="birdsong", title="Birdsong", schema=BIRDSONG, description="a bird heard",
                             plugin="birdform"))
