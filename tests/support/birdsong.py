"""A test plugin limited to its own kind (``for_kinds``), taking the engine in its hooks."""

from core import for_kinds, hookimpl
from core.types import Flag, ObservationType

KIND = "bird_song"


@hookimpl
def register_observation_types(register):
    register(ObservationType(KIND, "Bird song", {"type": "object", "properties": {"species": {"type": "string"}}}))


@hookimpl
@for_kinds(KIND)
def enrich_observation(observation, project, engine):
    return {"kind": observation.kind, "projects": sorted(p.slug for p in engine.registry.projects)}


@hookimpl
@for_kinds(KIND)
def quality_check(observation, project, engine):
    return [Flag("song_checked", "the song was checked", "info")]


@hookimpl
def grade_observation(observation, flags, project):
    return "research" if observation.fields.get("species") == "certain" else None


ASSESSED: list[tuple[int, str, list[str], dict]] = []
COMMENTS: list[tuple[int, int, str]] = []


@hookimpl
def on_assessed(observation, flags, grade):
    ASSESSED.append((observation.id, grade, sorted(f.code for f in flags), dict(observation.enrichments)))


@hookimpl
def on_comment(comment, observation):
    COMMENTS.append((comment.observation_id, observation.id, comment.body))
