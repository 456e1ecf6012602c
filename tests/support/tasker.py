"""A test plugin with background work (``register_tasks``) and a ``recover_work`` that leaves a
trace: ``tasker.write`` writes a file (with the process id that did it); ``recover_work`` appends
a line to ``$TASKER_DIR/recovered`` on every call."""

import os
from pathlib import Path

from core import hookimpl
from core.types import BackgroundTask


def write(engine, path, text):
    Path(path).write_text(f"{text} {os.getpid()}")
    return f"wrote {path}"


@hookimpl
def register_tasks(register):
    register(BackgroundTask("tasker.write", write, "write a file"))


@hookimpl
def recover_work(engine):
    folder = os.environ.get("TASKER_DIR")
    if folder:
        with Path(folder, "recovered").open("a") as fh:
            fh.write("called\n")
    return 0
