"""The example plugin of docs/hackathon_plugin.md (docs/examples/night_owl.py), loaded as a plugin."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.registry import RegistryError
from core.testing import draft, submit
from tests.conftest import TEST_PLUGINS

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "hackathon_plugin.md"

REGISTRY = """
services:
  night_owl:
    summary: flags observations made at night
    settings:
      type: object
      properties:
        dusk_hour: {type: integer, minimum: 0, maximum: 23, default: 21}
        dawn_hour: {type: integer, minimum: 0, maximum: 23, default: 6}
      additionalProperties: false
projects:
  - slug: owls
    name: Owls
    timezone: Europe/Madrid
    services:
      night_owl: {}
  - slug: late
    name: Late owls
    timezone: Europe/Madrid
    services:
      night_owl: {dusk_hour: 23}
  - slug: larks
    name: Larks
    timezone: Europe/Madrid
    services: {}
"""


# `docs` is importable because pytest puts the repository root on sys.path (tests/ is a package).
@pytest.fixture
def engine(make_engine):
    return make_engine(REGISTRY, plugins=TEST_PLUGINS + ",night_owl=docs.examples.night_owl")


def flags_of(engine, project: str, observed_at: str) -> dict[str, dict]:
    observation = submit(engine, project, draft(observed_at=observed_at))
    return {flag["code"]: flag for flag in observation["flags"]}


def test_a_night_time_observation_is_flagged(engine):
    flags = flags_of(engine, "owls", "2026-05-01T23:30:00+02:00")
    assert flags["night"]["plugin"] == "night_owl"
    assert flags["night"]["severity"] == "info"
    assert flags["night"]["value"] == "23:30"
    assert flags["night"]["message"] == "observed at 23:30 local time, between 21:00 and 06:00"


def test_a_day_time_observation_is_not_flagged(engine):
    assert "night" not in flags_of(engine, "owls", "2026-05-01T12:00:00+02:00")


def test_the_night_is_read_in_the_project_time_zone(engine):
    # 20:30 UTC is 22:30 in Madrid (summer time): night there, though not yet 21:00 by the UTC clock.
    assert flags_of(engine, "owls", "2026-05-01T20:30:00+00:00")["night"]["value"] == "22:30"
    # 04:30 UTC is 06:30 in Madrid: day there, though still before 06:00 by the UTC clock.
    assert "night" not in flags_of(engine, "owls", "2026-05-02T04:30:00+00:00")


def test_the_project_setting_moves_dusk(engine):
    assert "night" not in flags_of(engine, "late", "2026-05-01T22:30:00+02:00")
    assert flags_of(engine, "late", "2026-05-01T23:10:00+02:00")["night"]["message"].endswith("between 23:00 and 06:00")


def test_a_project_that_does_not_enable_it_gets_no_flag(engine):
    assert "night" not in flags_of(engine, "larks", "2026-05-01T23:30:00+02:00")


def test_a_bad_setting_stops_start_up(make_engine):
    bad = REGISTRY.replace("night_owl: {dusk_hour: 23}", "night_owl: {dusk_hour: 25}")
    with pytest.raises(RegistryError, match=r"projects\[1\]\.services\.night_owl: setting 'dusk_hour'"):
        make_engine(bad, plugins=TEST_PLUGINS + ",night_owl=docs.examples.night_owl")


def test_the_guide_shows_the_example_as_it_is():
    guide = GUIDE.read_text(encoding="utf-8")
    code = (ROOT / "docs" / "examples" / "night_owl.py").read_text(encoding="utf-8")
    assert code.strip() in guide, "docs/hackathon_plugin.md must show docs/examples/night_owl.py in full"


def test_the_guide_shows_these_tests_as_they_are():
    excerpt = GUIDE.read_text(encoding="utf-8").split("<!-- excerpt: tests/test_docs_example.py -->\n```python\n")[1]
    excerpt = excerpt.split("\n```", 1)[0]
    assert excerpt.strip() in Path(__file__).read_text(encoding="utf-8"), "the guide's excerpt of this file"
