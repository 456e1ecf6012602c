"""GET /api/v1/services[/{name}]: what each caller sees, health for staff equal to planted rows,
acceptance following planted verdicts, and a 404 that says nothing about hidden services."""

from __future__ import annotations

from core.db.models import utcnow
from core.tokens import authenticate
from tests.api.conftest import API
from tests.conftest import draft
from tests.test_service_health import plant, plant_observations


def names(response) -> dict[str, dict]:
    assert response.status_code == 200, response.text
    return {e["name"]: e for e in response.json()}


def test_each_caller_sees_their_part_and_staff_see_planted_health(engine, client, make_token, auth):
    beta_obs = plant_observations(engine, "beta", 2)
    plant(engine, beta_obs, "recorder", [{"status": "failed", "finished_at": utcnow(), "attempts": 3,
                                          "error": "timed out after 2 s", "duration_ms": 2000},
                                         {"status": "done", "finished_at": utcnow(), "duration_ms": 40}])

    public = names(client.get(f"{API}/services"))
    assert set(public) >= {"recorder", "flaky"} and "sleepy" not in public and "species_id" not in public
    assert {p for e in public.values() for p in e["projects"]} <= {"alpha", "gamma"}, "only public projects"
    assert all(e["health"] is None for e in public.values())
    assert client.get(f"{API}/services/sleepy").json()["error"]["code"] == "not_found"
    assert client.get(f"{API}/services/sleepy").status_code == client.get(f"{API}/services/nothing").status_code == 404

    moderator = names(client.get(f"{API}/services", headers=auth(make_token("moderator", "beta"))))
    assert "sleepy" in moderator, "staff see every service"
    beta_day = moderator["recorder"]["health"]["projects"]["beta"]["windows"]["day"]
    assert beta_day == {"run": 2, "succeeded": 1, "failed": 1, "timed_out": 1, "retried": 1,
                        "median_ms": 40, "p95_ms": 2000}
    assert moderator["recorder"]["health"]["total"] is None
    assert moderator["recorder"]["health"]["projects"]["beta"]["last_error"]["code"] == "timed_out"

    operator = client.get(f"{API}/services/recorder", headers=auth(make_token("operator")))
    assert operator.status_code == 200
    assert operator.json()["health"]["total"]["windows"]["month"]["timed_out"] == 1
    assert operator.json()["maturity"]["status"] == "experimental"


def test_acceptance_follows_planted_verdicts(engine, client, make_token, auth):
    from core.feedback import give_result_feedback
    from core.testing import submit

    obs = [submit(engine, "alpha", draft())["id"] for _ in range(3)]
    for verdict, observation in zip(("agree", "agree", "disagree"), obs):
        token = make_token("moderator", "alpha")
        give_result_feedback(engine, authenticate(engine, token), observation, "recorder", verdict)
    month = utcnow().strftime("%Y-%m")
    entry = client.get(f"{API}/services/recorder").json()
    assert entry["acceptance"] == [{"month": month, "agree": 2, "disagree": 1, "rate": round(2 / 3, 4)}]
