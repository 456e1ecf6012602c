"""A plugin with a misspelt hook: start-up must refuse it."""

from core import hookimpl


@hookimpl
def enrich_observaton(observation, project):
    return {}
