"""registry.yaml is validated at start-up; errors name the key and the problem."""

from __future__ import annotations

import pytest

from core.registry import RegistryError, load_registry, parse_registry

GOOD = """
services:
  odour:
    summary: odours
    settings:
      type: object
      properties:
        window_h: {type: number, default: 4}
projects:
  - slug: town
    name: Town
    services:
      odour: {window_h: 2}
  - slug: village
    name: Village
    services: {odour: }
"""


def test_a_good_registry_gives_projects_with_settings_and_defaults():
    registry = parse_registry(GOOD)
    assert registry.project("town").settings("odour") == {"window_h": 2}
    assert registry.project("village").settings("odour") == {"window_h": 4}
    assert registry.projects_enabling("odour") == ["town", "village"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace("window_h: 2", "window_h: four"), "projects[0].services.odour: setting 'window_h': 'four' is not of type 'number'"),
        (GOOD.replace("slug: village", "slug: Village!"), "projects[1].slug: must be lower-case"),
        (GOOD.replace("slug: village", "slug: town"), "project 'town' is defined twice"),
        (GOOD.replace("odour: {window_h: 2}", "smell: {}"), "projects[0].services.smell: no service 'smell' is offered"),
        (GOOD.replace("summary: odours", "sumary: odours"), "services.odour.sumary"),
        ("projects: [", "not valid YAML"),
        ("- a\n- b", "the top level must be a mapping"),
        (GOOD.replace("name: Town", "name: Town\n    timezone: Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_errors_name_the_key_and_the_problem(text, message):
    with pytest.raises(RegistryError) as info:
        parse_registry(text)
    assert message in str(info.value)


def test_a_missing_file_says_how_to_point_at_one(tmp_path):
    with pytest.raises(RegistryError, match="OBSERVATORY_REGISTRY_PATH"):
        load_registry(tmp_path / "nope.yaml")


def test_the_shipped_registry_is_valid_and_has_a_demo_project():
    registry = load_registry("registry.yaml")
    assert "demo" in registry.contexts()
