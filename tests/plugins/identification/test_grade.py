"""The grade in a project with the identification service, as iNaturalist decides it: evidence
(a photo or a sound), quality votes, "no further ID possible", error flags, people; and a
project without the service keeps the engine's own rule."""

from __future__ import annotations

import io
import wave
from typing import Any

from core.db.models import Taxon
from core.db.session import transaction
from core.testing import draft, submit
from tests.plugins.identification.conftest import API, identify, listing, observe


def two_agree(client: Any, people: Any, obs: int, taxon_id: int) -> dict[str, Any]:
    identify(client, people["ana"], obs, taxon_id)
    identify(client, people["ben"], obs, taxon_id)
    return listing(client, obs)["summary"]


def vote(client: Any, person: Any, obs: int, metric: str, agree: bool) -> dict[str, Any]:
    answer = client.put(f"{API}/observations/{obs}/quality/{metric}", json={"agree": agree}, headers=person.headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def a_sound() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x10" * 8000)
    return out.getvalue()


def test_without_a_photo_or_a_sound_it_is_casual(client, people, taxa):
    obs = observe(client, people["ana"])
    summary = two_agree(client, people, obs, taxa["Vulpes vulpes"])
    assert summary["community_taxon"]["name"] == "Vulpes vulpes" and summary["grade"] == "casual"


def test_a_sound_is_evidence_too(client, people, taxa):
    obs = int(submit(client, "wild", draft(), media={"song.wav": a_sound()}, token=people["ana"].token)["id"])
    assert two_agree(client, people, obs, taxa["Turdus merula"])["grade"] == "research"


def test_a_quality_metric_voted_down_makes_it_casual_and_more_agree_votes_bring_it_back(client, people, taxa, photos):
    obs = observe(client, people["ana"], photo=photos["chelsea.jpg"])
    assert two_agree(client, people, obs, taxa["Vulpes vulpes"])["grade"] == "research"
    assert vote(client, people["ben"], obs, "wild", False)["grade"] == "casual"
    assert vote(client, people["eva"], obs, "wild", True)["grade"] == "research"  # half agree: passes


def test_no_further_id_possible_makes_a_genus_research_grade(client, people, taxa, photos):
    obs = observe(client, people["ana"], photo=photos["chelsea.jpg"])
    summary = two_agree(client, people, obs, taxa["Vulpes"])
    assert summary["community_taxon"]["name"] == "Vulpes" and summary["grade"] == "needs_id"
    assert vote(client, people["eva"], obs, "needs_id", False)["grade"] == "research"


def test_no_further_id_possible_above_genus_makes_it_casual(client, people, taxa, photos):
    obs = observe(client, people["ana"], photo=photos["chelsea.jpg"])
    assert two_agree(client, people, obs, taxa["Canidae"])["grade"] == "needs_id"
    assert vote(client, people["eva"], obs, "needs_id", False)["grade"] == "casual"


def test_can_still_be_improved_keeps_a_species_at_needs_id(client, people, taxa, photos):
    obs = observe(client, people["ana"], photo=photos["chelsea.jpg"])
    assert two_agree(client, people, obs, taxa["Vulpes vulpes"])["grade"] == "research"
    assert vote(client, people["eva"], obs, "needs_id", True)["grade"] == "needs_id"


def test_an_error_flag_makes_it_casual(client, people, taxa, photos):
    obs = observe(client, people["ana"], photo=photos["chelsea.jpg"], location={"lat": 0, "lon": 0})
    assert two_agree(client, people, obs, taxa["Vulpes vulpes"])["grade"] == "casual"


def test_a_person_is_casual(client, engine, people, taxa, photos):
    with transaction(engine.sessions) as session:
        homo = Taxon(scientific_name="Homo sapiens", rank="species", rank_level=10, source="test",
                     source_id="Homo sapiens", ancestry=f"{taxa['Animalia']}/{taxa['Chordata']}/{taxa['Mammalia']}")
        session.add(homo)
        session.flush()
        homo_id = homo.id
    obs = observe(client, people["ana"], photo=photos["astronaut.jpg"])
    summary = two_agree(client, people, obs, homo_id)
    assert summary["community_taxon"]["name"] == "Homo sapiens" and summary["grade"] == "casual"


def test_a_project_without_the_service_keeps_the_engines_grade(client, people, photos):
    obs = observe(client, people["ana"], "plain", photo=photos["chelsea.jpg"])
    assert client.get(f"{API}/observations/{obs}").json()["grade"] == "needs_id"


def test_an_observation_nobody_identified_is_needs_id_with_evidence_and_casual_without(client, people, photos):
    with_photo = observe(client, people["ana"], photo=photos["chelsea.jpg"])
    without = observe(client, people["ana"])
    assert client.get(f"{API}/observations/{with_photo}").json()["grade"] == "needs_id"
    assert client.get(f"{API}/observations/{without}").json()["grade"] == "casual"
