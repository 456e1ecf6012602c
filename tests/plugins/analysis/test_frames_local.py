"""Observatory.local(): the observations frame of a filled project, as staff and as the public see it."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from plugins.analysis import Observatory
from plugins.analysis.frames import FilterError
from plugins.analysis.frames.columns import BASE_COLUMNS


def test_staff_frame_holds_every_column_with_its_type(engine: Any, filled: Any) -> None:
    frame = Observatory.local(engine=engine, cache=False).observations("survey")
    ids = filled.ids
    assert list(frame["id"]) == sorted(ids.values())
    assert list(frame.columns[:len(BASE_COLUMNS)]) == list(BASE_COLUMNS)
    assert str(frame["observed_at"].dtype) == "datetime64[ns, UTC]"
    assert str(frame["id"].dtype) == "Int64" and str(frame["lat"].dtype) == "Float64"
    assert isinstance(frame["status"].dtype, pd.CategoricalDtype)
    row = frame.set_index("id").loc
    fox = row[ids["fox"]]
    assert fox["contributor_id"] == filled.people["ana"].account_id
    assert fox["taxon_name"] == "Vulpes vulpes" and fox["taxon_rank"] == "species"
    assert (fox["kingdom"], fox["family"], fox["genus"]) == ("Animalia", "Canidae", "Vulpes")
    assert fox["n_media"] == 1 and fox["n_comments"] == 1  # the hidden comment is not counted
    assert fox["field.count"] == 2 and fox["field.weight"] == 6.5 and bool(fox["field.seen"]) is True
    assert fox["field.tags"] == '["night", "road"]' and fox["category"] == "mammal"
    assert fox["lat"] == 41.3851  # staff: the exact place
    assert row[ids["hidden"]]["lat"] == 41.3851  # staff see private places too
    assert pd.isna(row[ids["bird"]]["field.count"]) and pd.isna(row[ids["bird"]]["taxon_id"])
    assert row[ids["gone"]]["status"] == "unpublished" and row[ids["bin"]]["status"] == "trashed"
    assert fox["licence"] == "CC-BY-4.0"
    assert fox["observed_at"] == pd.Timestamp("2026-05-01T09:00:00Z")


def test_public_frame_shows_what_the_public_sees(engine: Any, filled: Any) -> None:
    frame = Observatory.local(engine=engine, public=True, cache=False).observations("survey")
    ids = filled.ids
    assert set(frame["id"]) == {ids["fox"], ids["cat"], ids["hidden"], ids["bird"]}
    assert frame["contributor_id"].isna().all() and frame["n_comments"].isna().all()
    row = frame.set_index("id").loc
    assert row[ids["fox"]]["lat"] == 41.39  # the project's grid
    assert row[ids["cat"]]["lat"] == 41.4 and row[ids["cat"]]["location_privacy"] == "obscured"
    assert pd.isna(row[ids["hidden"]]["lat"]) and pd.isna(row[ids["hidden"]]["lon"])


def test_filters_are_the_apis(engine: Any, filled: Any) -> None:
    local = Observatory.local(engine=engine, cache=False)
    assert list(local.observations("survey", kind="generic")["id"]) == [filled.ids["bird"]]
    assert set(local.observations("survey", filters={"field.count>": 2})["id"]) == {filled.ids["fox"], filled.ids["hidden"]}
    assert list(local.observations("survey", status="trashed")["id"]) == [filled.ids["bin"]]
    with pytest.raises(FilterError, match="unknown filter 'colour'"):
        local.observations("survey", colour="red")
    with pytest.raises(FilterError, match="unknown field 'size'"):
        local.observations("survey", filters={"field.size": 3})


def test_empty_project_gives_an_empty_frame_with_the_columns(engine: Any) -> None:
    frame = Observatory.local(engine=engine, cache=False).observations("closed")
    assert len(frame) == 0 and "field.count" in frame.columns and str(frame["id"].dtype) == "Int64"
