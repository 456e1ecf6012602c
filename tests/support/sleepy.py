"""A test plugin whose enrichment sleeps (to test time limits and killed workers).

With SLEEPY_DIR set, it writes 'started-<id>-<pid>' when it begins and appends a line to
'completed' when it finishes, so a test can see how many times the work really completed.
It sleeps only on its first attempt when SLEEPY_ONCE is set."""

import os
import time
from pathlib import Path

from core import hookimpl


@hookimpl
def enrich_observation(observation, project):
    folder = os.environ.get("SLEEPY_DIR")
    first = True
    if folder:
        started = list(Path(folder).glob(f"started-{observation.id}-*"))
        first = not started
        Path(folder, f"started-{observation.id}-{os.getpid()}").touch()
    if first or not os.environ.get("SLEEPY_ONCE"):
        time.sleep(float(project.settings("sleepy").get("seconds", 30)))
    if folder:
        with Path(folder, "completed").open("a") as fh:
            fh.write(f"{observation.id}\n")
    return {"slept": True}
