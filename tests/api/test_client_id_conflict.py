"""One situation, one answer: a client_id already used in the project with other content (or by
someone else) is refused with 409 ``client_id_conflict`` and one message, whichever path finds it:
the look-up before storing (an edit, a batch) or the unique index that refuses an insert (a plain
submit, a racing writer)."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import func, select

from core import lifecycle
from core.db.models import Observation
from core.db.session import transaction
from core.errors import Conflict
from tests.conftest import draft

API = "/api/v1"
MESSAGE = ("client_id 'phone-7' is already used in this project with other content; choose another, "
           "or send it as an edit to change your own observation")


def post(client, headers, body, photo=None):
    url = f"{API}/projects/alpha/observations"
    if photo is None:
        return client.post(url, json=body, headers=headers)
    return client.post(url, data={"draft": json.dumps(body)}, files=[("media", ("p.jpg", photo, "image/jpeg"))],
                       headers=headers)


def stored(engine, client_id: str) -> list[dict]:
    with transaction(engine.sessions) as session:
        rows = session.scalars(select(Observation).where(Observation.client_id == client_id)).all()
        return [{"id": o.id, "fields": o.fields, "contributor_id": o.contributor_id} for o in rows]


def assert_refused(response) -> None:
    assert response.status_code == 409, response.text
    assert response.json() == {"error": {"code": "client_id_conflict", "message": MESSAGE}}


@pytest.fixture
def first(client, make_token, auth):
    """Ana's observation under client id phone-7, and her token."""
    ana = make_token("contributor", "alpha")
    created = post(client, auth(ana), draft(client_id="phone-7"))
    assert created.status_code == 201, created.text
    return created.json(), ana


def test_the_unique_index_refuses_other_content_and_someone_elses_client_id(engine, client, make_token, auth,
                                                                           photos, first):
    obs, ana = first
    # a plain submit inserts first: the unique index on (project, client_id) is what refuses these
    assert_refused(post(client, auth(ana), draft(client_id="phone-7", fields={"note": "a badger"})))
    assert_refused(post(client, auth(ana), draft(client_id="phone-7"), photo=photos["chelsea.jpg"]))
    ben = make_token("contributor", "alpha")
    assert_refused(post(client, auth(ben), draft(client_id="phone-7")))  # Ana's very content: no hint of her
    kept = {"id": obs["id"], "fields": obs["fields"], "contributor_id": obs["contributor_id"]}
    assert stored(engine, "phone-7") == [kept]


def test_racing_writers_get_one_201_and_the_same_409(engine, client, make_token, auth):
    tokens = [make_token("contributor", "alpha") for _ in range(3)]
    barrier = threading.Barrier(6)
    answers = []

    def send(i: int) -> None:
        barrier.wait()
        answers.append(post(client, auth(tokens[i % 3]), draft(client_id="phone-7", fields={"note": f"take {i}"})))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(a.status_code for a in answers) == [201] + [409] * 5, [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 409:
            assert_refused(answer)
    assert len(stored(engine, "phone-7")) == 1


def test_an_edit_looked_up_first_answers_the_same(engine, first):
    obs, _ana = first
    # submit --edit looks the client id up before storing: Ana's, so refused to anyone else
    for contributor in (None, obs["contributor_id"] + 1000):
        with pytest.raises(Conflict) as refused:
            lifecycle.submit(engine, "alpha", draft(client_id="phone-7", fields={"note": "mine now"}),
                             contributor_id=contributor, edit=True)
        assert (refused.value.code, refused.value.http_status, refused.value.message) == ("client_id_conflict", 409,
                                                                                         MESSAGE)
    assert stored(engine, "phone-7")[0]["fields"] == obs["fields"]


def test_a_batch_reports_the_same_code_and_message_on_both_paths(engine, first, monkeypatch):
    obs, _ana = first
    other = (draft(client_id="phone-7", fields={"note": "imported"}), [])
    looked_up = lifecycle.submit_many(engine, "alpha", [other])
    assert [(p.path, p.code, p.message) for p in looked_up[0].problems] == [(("client_id",), "client_id_conflict",
                                                                              MESSAGE)]

    # a writer that stores the client id between the batch's look-up and its insert: the unique
    # index refuses the insert, and the batch looks again
    real = lifecycle.stored_client_ids
    looks = []

    def missed_once(engine_, project, client_ids):
        looks.append(list(client_ids))
        return {} if len(looks) == 1 else real(engine_, project, client_ids)

    monkeypatch.setattr(lifecycle, "stored_client_ids", missed_once)
    raced = lifecycle.submit_many(engine, "alpha", [other, (draft(client_id="phone-8"), [])])
    assert len(looks) >= 2, "the insert was refused by the unique index, then looked up again"
    assert raced[0].observation_id is None
    assert [(p.path, p.code, p.message) for p in raced[0].problems] == [(("client_id",), "client_id_conflict", MESSAGE)]
    assert raced[1].created
    with transaction(engine.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Observation)) == 2
    assert stored(engine, "phone-7")[0]["fields"] == obs["fields"]
