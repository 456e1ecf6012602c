"""A test plugin whose enrichment fails its first N attempts (setting 'failures')."""

from core import hookimpl

_attempts: dict[str, int] = {}


@hookimpl
def enrich_observation(observation, project):
    key = f"{observation.id}@{observation.created_at.isoformat()}"
    seen = _attempts.get(key, 0) + 1
    _attempts[key] = seen
    if seen <= project.settings("flaky")["failures"]:
        raise RuntimeError(f"flaky failure {seen}")
    return {"attempt": seen}
