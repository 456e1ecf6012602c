"""The API's plain-SQL read of observations gives what the ORM view gives, field for field."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core import lifecycle
from core.db.models import Observation, QualityFlag
from core.db.session import transaction
from core.errors import NotFound
from core.lifecycle import Upload
from core.read_model import observation_rows, read_observation, read_observations
from core.views import load_observation, observation_dict
from tests.conftest import draft

URL = "/api/v1/observations/{obs_id}/media/{media_id}"


def _stored(engine, photos) -> list[int]:
    ids = []
    for i, name in enumerate(("chelsea.jpg", "coffee.jpg")):
        media = [Upload(photos[name], f"p{i}.jpg", None), Upload(photos["camera.png"], "cam.png", None)]
        ids.append(lifecycle.submit(engine, "alpha", draft(client_id=f"rm-{i}"), media).observation_id)
    ids.append(lifecycle.submit(engine, "alpha", draft(client_id="rm-bare", kind=None)).observation_id)
    with transaction(engine.sessions) as session:  # a flag of each severity on the first
        for severity in ("info", "warning"):
            session.add(QualityFlag(observation_id=ids[0], plugin="test", code=f"c-{severity}", severity=severity,
                                    message="m", value={"measured": 1.5}))
    return ids


def test_one_observation_reads_the_same_as_the_orm_view(engine, photos):
    ids = _stored(engine, photos)
    with transaction(engine.readers) as session:
        for obs_id in ids:
            expected = observation_dict(load_observation(session, obs_id), media_url=URL)
            got = read_observation(session, obs_id, media_url=URL)
            assert got.data == expected
            assert (got.project, got.contributor_id, got.status) == ("alpha", None, expected["status"])
    with transaction(engine.readers) as session:
        one = read_observation(session, ids[0], media_url=URL).data
    assert len(one["media"]) == 2 and one["media"][0]["url"].endswith(f"/media/{one['media'][0]['id']}")
    assert [f["code"] for f in one["flags"]][-2:] == ["c-info", "c-warning"]
    assert one["enrichments"]["recorder"]["status"] == "done"


def test_a_page_keeps_the_query_order_and_each_its_own_children(engine, photos):
    ids = _stored(engine, photos)
    with transaction(engine.readers) as session:
        page = read_observations(session, observation_rows().order_by(Observation.id.desc()))
        expected = [observation_dict(o) for o in session.scalars(select(Observation).order_by(Observation.id.desc()))]
    assert [o.data["id"] for o in page] == sorted(ids, reverse=True)
    assert [o.data for o in page] == expected


def test_a_missing_observation_is_not_found(engine):
    with transaction(engine.readers) as session, pytest.raises(NotFound) as caught:
        read_observation(session, 987654)
    assert caught.value.code == "observation_not_found"
