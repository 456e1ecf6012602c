"""A test plugin that records every hook call it receives, per observation."""

import json
import os
from pathlib import Path

from core import hookimpl
from core.types import Flag, Problem

CALLS: list[tuple[str, str]] = []


def _log(hook: str, project: str) -> None:
    CALLS.append((hook, project))
    target = os.environ.get("RECORDER_LOG")
    if target:
        with Path(target).open("a") as fh:
            fh.write(json.dumps([hook, project]) + "\n")


@hookimpl
def validate_observation(draft, project):
    _log("validate_observation", project.slug)
    if draft.fields.get("reject_me"):
        return [Problem(("fields", "reject_me"), "the recorder refuses this draft")]
    return []


@hookimpl
def enrich_observation(observation, project):
    _log("enrich_observation", project.slug)
    return {"seen": observation.id, "media": len(observation.media)}


@hookimpl
def quality_check(observation, project):
    _log("quality_check", project.slug)
    return [Flag("recorded", "the recorder saw it", "info", observation.enrichments.get("recorder"))]


@hookimpl
def grade_observation(observation, flags, project):
    _log("grade_observation", project.slug)
    return None


@hookimpl
def on_status_change(observation, old, new, project):
    _log("on_status_change", project.slug)
