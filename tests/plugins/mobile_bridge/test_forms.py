"""Form discovery: what an app needs to build its screens, versioned, with an ETag; items made
with an older form are accepted while they still validate and otherwise refused naming the version."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from plugins.mobile_bridge import forms
from plugins.mobile_bridge.projects import bridge_project
from tests.plugins.mobile_bridge.bridge_kit import API, bearer, bridge_registry, item, sign_up

FORM = f"{API}/projects/field/form"
BIRDFORM = "birdform:\n    summary: birdsong\n"
PRIVATE = """  - slug: private
    name: Private
    public: false
    services: {mobile_bridge: {}}
"""


def registry_with(newsletter_version: str = "2") -> str:
    text = bridge_registry("{map_area: [2.05, 41.32, 2.25, 41.47]}", PRIVATE)
    text = text.replace("services:\n", f"services:\n  {BIRDFORM}", 1)
    text = text.replace("services: {mobile_bridge: {map_area", "services: {birdform: {}, mobile_bridge: {map_area")
    return text.replace('version: "2"', f'version: "{newsletter_version}"')


@pytest.fixture
def registry() -> str:
    return registry_with()


@pytest.fixture
def plugins() -> str:
    return "birdform=tests.plugins.mobile_bridge.form_kinds"



def test_the_form_has_each_kind_with_its_fields_hints_and_translations(client: Any) -> None:
    response = client.get(FORM)
    assert response.status_code == 200, response.text
    form = response.json()
    assert [k["name"] for k in form["kinds"]] == ["birdsong", "generic"]
    birdsong = form["kinds"][0]
    assert birdsong["translations"] == {"ca": {"title": "Cant d'ocell"}} and birdsong["open"] is False
    fields = {f["name"]: f for f in birdsong["fields"]}
    assert [f["name"] for f in birdsong["fields"]] == ["species", "count", "heard_only", "comment"]
    assert fields["species"]["widget"] == "select" and fields["species"]["required"] is True
    assert fields["species"]["options"] == [{"value": "erithacus", "label": "Robin"},
                                            {"value": "turdus", "label": "Blackbird"}]
    assert fields["species"]["translations"]["ca"] == {"label": "Espècie", "help": None,
                                                       "options": {"erithacus": "Pit-roig", "turdus": "Merla"}}
    assert (fields["count"]["widget"], fields["count"]["label"], fields["count"]["help"]) == (
        "integer", "How many", "birds singing at once")
    assert fields["heard_only"]["widget"] == "toggle" and fields["heard_only"]["required"] is False
    assert fields["comment"]["widget"] == "textarea" and fields["comment"]["label"] == "comment"
    assert birdsong["schema"]["properties"]["count"]["minimum"] == 1
    assert form["services"] == ["birdform", "mobile_bridge"]
    assert [lic["id"] for lic in form["licences"]] == ["CC-BY-4.0", "CC0-1.0"] and form["default_licence"] == "CC-BY-4.0"
    assert {c["name"]: c["version"] for c in form["consent_choices"]}["newsletter"] == "2"
    assert form["map_area"] == [2.05, 41.32, 2.25, 41.47] and form["comments"] is True
    assert form["signup"] == {"require_email": False, "allow_pseudonymous": True}


def test_the_etag_is_the_version_and_if_none_match_answers_304(client: Any) -> None:
    first = client.get(FORM)
    version = first.json()["version"]
    assert first.headers["ETag"] == f'"{version}"' and len(version) == forms.VERSION_LENGTH
    same = client.get(FORM, headers={"If-None-Match": f'W/"old", "{version}"'})
    assert same.status_code == 304 and same.content == b"" and same.headers["ETag"] == f'"{version}"'
    assert client.get(FORM, headers={"If-None-Match": '"something-else"'}).status_code == 200


def test_a_changed_form_has_another_version(engine: Any, make_engine: Callable[..., Any]) -> None:
    before = forms.build_form(engine, bridge_project(engine, "field"))["version"]
    changed = make_engine(registry_with(newsletter_version="3"))
    assert forms.build_form(changed, bridge_project(changed, "field"))["version"] != before
    assert forms.build_form(engine, bridge_project(engine, "field"))["version"] == before


def test_who_sees_a_form(client: Any, make_token: Callable[..., str]) -> None:
    assert client.get(f"{API}/projects/closed/form").status_code == 404
    assert client.get(f"{API}/projects/private/form").status_code == 401
    assert client.get(f"{API}/projects/private/form", headers=bearer(make_token("contributor", "field"))
                      ).status_code == 403
    assert client.get(f"{API}/projects/private/form", headers=bearer(make_token("contributor", "private"))
                      ).status_code == 200


def test_an_item_of_an_older_form_is_accepted_while_valid_and_else_refused_naming_its_version(client: Any) -> None:
    headers = bearer(sign_up(client)["token"])
    current = client.get(FORM).json()["version"]
    still_valid = item(kind="birdsong", fields={"species": "turdus", "count": 2}, form_version="0ld0ld0ld0ld")
    no_longer = item(kind="birdsong", fields={"species": "turdus", "count": 2, "wingspan": 30},
                     form_version="0ld0ld0ld0ld")
    current_bad = item(kind="birdsong", fields={"species": "corvus", "count": 1}, form_version=current)
    answers = client.post(f"{API}/projects/field/sync", json={"items": [still_valid, no_longer, current_bad]},
                          headers=headers).json()["items"]
    assert [a["status"] for a in answers] == ["created", "rejected", "rejected"]
    [problem] = answers[1]["problems"]
    assert problem["form_version"] == "0ld0ld0ld0ld" and problem["path"] == ["fields"]
    assert f"made with form version 0ld0ld0ld0ld; the current form is version {current}" in problem["message"]
    assert answers[2]["problems"][0]["path"] == ["fields", "species"]
    assert "form_version" not in answers[2]["problems"][0] and "form version" not in answers[2]["problems"][0]["message"]
