"""A plugin that registers a kind the engine already has."""

from core import hookimpl
from core.types import ObservationType


@hookimpl
def register_observation_types(register):
    register(ObservationType(name="generic", title="Again", schema={"type": "object"}))
