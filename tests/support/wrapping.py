"""A test plugin with a pluggy wrapper around every quality check: it sees each plugin's flags."""

from core import hookimpl
from core.types import Flag

WRAPPED: list[list[str]] = []


@hookimpl(wrapper=True)
def quality_check(observation, project):
    flags = yield  # the result of the wrapped implementations: a list of lists of flags
    WRAPPED.append(sorted(f.code for found in flags for f in found or ()))
    return [*flags, [Flag("wrapped", "a wrapper added this", "info")]]
