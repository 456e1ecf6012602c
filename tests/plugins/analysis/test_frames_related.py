"""Observatory.local(): the media and identifications frames of a filled project, as staff and
as the public see them (the same frames over the API: test_frames_remote)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from plugins.analysis import Observatory


def agree_to_be_named(client: Any, person: Any) -> None:
    choices = client.get("/api/v1/projects/survey").json()["consent_choices"]
    version = next(c["version"] for c in choices if c["name"] == "attribution")
    response = client.post("/api/v1/me/consents", headers=person.headers,
                           json={"project": "survey", "choice": "attribution", "version": version, "agreed": True})
    assert response.status_code == 201, response.text


def test_media_frame_credits_the_recorder_only_when_they_agreed(engine: Any, client: Any, filled: Any) -> None:
    staff = Observatory.local(engine=engine, cache=False)
    fox = filled.ids["fox"]
    media = staff.media("survey")
    assert list(media["observation_id"]) == [fox]
    row = media.iloc[0]
    assert row["url"] == f"/api/v1/observations/{fox}/media/{row['media_id']}"
    assert client.get(row["url"]).status_code == 200  # the path serves the file
    assert (row["content_type"], row["licence"]) == ("image/jpeg", "CC-BY-4.0")
    assert row["attribution"] == "Survey"  # not named: the project holds the rights, as open data says
    agree_to_be_named(client, filled.people["ana"])
    assert staff.media("survey").iloc[0]["attribution"] == "Ana"
    public = Observatory.local(engine=engine, public=True, cache=False).media("survey")
    pd.testing.assert_frame_equal(public, staff.media("survey"))
    assert len(staff.media("survey", kind="generic")) == 0
    assert str(media["media_id"].dtype) == "Int64" and isinstance(media["content_type"].dtype, pd.CategoricalDtype)


def test_identifications_frame_names_identifiers_to_staff_only(engine: Any, filled: Any) -> None:
    ids, people, taxa = filled.ids, filled.people, filled.taxa
    frame = Observatory.local(engine=engine, cache=False).identifications("survey")
    assert list(frame["observation_id"]) == [ids["fox"], ids["fox"], ids["cat"]]
    assert list(frame["taxon_name"]) == ["Vulpes vulpes", "Vulpes vulpes", "Felis catus"]
    assert list(frame["taxon_id"]) == [taxa["Vulpes vulpes"], taxa["Vulpes vulpes"], taxa["Felis catus"]]
    assert list(frame["identifier_id"]) == [people["eva"].account_id, people["ben"].account_id,
                                            people["ben"].account_id]
    assert frame["current"].all() and str(frame["created_at"].dtype) == "datetime64[ns, UTC]"
    assert frame["created_at"].is_monotonic_increasing
    public = Observatory.local(engine=engine, public=True, cache=False).identifications("survey")
    assert public["identifier_id"].isna().all()
    pd.testing.assert_frame_equal(public.drop(columns="identifier_id"), frame.drop(columns="identifier_id"))
    counted = Observatory.local(engine=engine, cache=False).identifications("survey", filters={"field.count>": 2})
    assert list(counted["observation_id"]) == [ids["fox"], ids["fox"]]  # the observations' filters


def test_a_project_without_identifications_gives_an_empty_frame(engine: Any) -> None:
    frame = Observatory.local(engine=engine, cache=False).identifications("closed")
    assert len(frame) == 0 and "identifier_id" in frame.columns and str(frame["taxon_id"].dtype) == "Int64"
