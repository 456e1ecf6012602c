"""A test plugin whose register_observation_types raises (not a duplicate: a bug)."""

from core import hookimpl


@hookimpl
def register_observation_types(register):
    raise ZeroDivisionError("division by zero")
