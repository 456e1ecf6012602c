"""A test plugin registering a background task under a name ``tasker`` already uses."""

from core import hookimpl
from core.types import BackgroundTask


@hookimpl
def register_tasks(register):
    register(BackgroundTask("tasker.write", lambda engine, **kwargs: None))
