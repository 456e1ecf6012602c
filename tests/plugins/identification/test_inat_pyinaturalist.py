"""pyinaturalist, unchanged, reads a running engine's ``/inat/v1`` through its public functions and
models: observations (one page, every page by id, by id), taxa (search, by id) and projects; the
values a user reads (taxon name, place, quality grade, photo URLs of every size, identifications'
categories, handles) and what the public may not read (obscured and private places, unpublished
observations, a project that is not public); a bad parameter is an HTTP error it raises.

pyinaturalist 0.21.1 pins requests-ratelimiter < 0.9 and so pyrate-limiter < 3, while schemathesis
4 needs pyrate-limiter 4: they cannot share one environment. So pyinaturalist lives in its own
folder (``make install`` puts it in ``.venv/pyinaturalist``; ``OBSERVATORY_PYINATURALIST_PATH``
names another), and this module, run as a script with that folder on ``PYTHONPATH``, is the
reader: it sends pyinaturalist's requests for api.inaturalist.org to the engine with a requests
transport adapter mounted on the session it gives pyinaturalist (``session=`` is part of
pyinaturalist's public API), and prints what it read as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
PYINATURALIST = Path(os.environ.get("OBSERVATORY_PYINATURALIST_PATH") or ROOT / ".venv" / "pyinaturalist")
INSTALL = f"{sys.executable} -m pip install --target {PYINATURALIST} pyinaturalist==0.21.1"


@pytest.fixture(scope="module")
def pyinaturalist_path() -> Path:
    if not (PYINATURALIST / "pyinaturalist" / "__init__.py").is_file():
        message = f"pyinaturalist is installed in a folder of its own: `make install` or `{INSTALL}`"
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(message)
        pytest.skip(message)
    return PYINATURALIST


def read_with_pyinaturalist(path: Path, base: str, plan: dict[str, Any], work: Path) -> dict[str, Any]:
    """Run this module as pyinaturalist's reader against ``base``; what it read."""
    env = {**os.environ, "PYTHONPATH": str(path), "HOME": str(work), "XDG_DATA_HOME": str(work),
           "XDG_CACHE_HOME": str(work)}
    done = subprocess.run([sys.executable, __file__, base, json.dumps(plan), str(work)], env=env, cwd=work,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"the pyinaturalist reader failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_pyinaturalist_reads_the_engine_unchanged(client: Any, engine: Any, people: dict[str, Any],
                                                  taxa: dict[str, int], photos: dict[str, bytes],
                                                  tmp_path: Path, pyinaturalist_path: Path) -> None:
    from core.db.models import Observation
    from core.db.session import transaction
    from plugins.identification.inat_projects import project_number
    from tests.plugins.identification.conftest import identify, observe
    from tests.support.serving import api_server

    ana, ben, eva = people["ana"], people["ben"], people["eva"]
    where = {"lat": 41.3851, "lon": 2.1734, "accuracy_m": 5}
    fox = observe(client, ana, photo=photos["chelsea.jpg"], location=where)
    identify(client, ana, fox, taxa["Vulpes vulpes"])
    identify(client, ben, fox, taxa["Vulpes vulpes"])
    wolf = observe(client, ben, photo=photos["coffee.jpg"], observed_at="2026-05-02T10:00:00+02:00")
    identify(client, ben, wolf, taxa["Canidae"])
    identify(client, eva, wolf, taxa["Canis lupus"])
    hidden_place = observe(client, ana, photo=photos["rocket.jpg"], location=where, location_privacy="obscured")
    secret_place = observe(client, ben, location=where, location_privacy="private")
    cat = observe(client, ana, photo=photos["astronaut.jpg"])
    identify(client, eva, cat, taxa["Felis catus"])
    pending = observe(client, ana)
    with transaction(engine.sessions) as session:
        session.get(Observation, pending).status = "pending"
    closed = observe(client, ana, "closed")
    visible = sorted([fox, wolf, hidden_place, secret_place, cat])
    expected_login = client.get(f"/inat/v1/observations/{fox}").json()["results"][0]["user"]["login"]

    plan = {"project": project_number("wild"), "slug": "wild", "ids": [fox, wolf, pending, closed, secret_place],
            "fox": fox, "canidae": taxa["Canidae"], "vulpes": taxa["Vulpes"]}
    with api_server(tmp_path, ROOT, env={"OBSERVATORY_SERVE_DISPATCHER": "inline"}) as base:
        read = read_with_pyinaturalist(pyinaturalist_path, base, plan, tmp_path)
        printed = run_the_docs_example(pyinaturalist_path, base, tmp_path)

    # docs/inat-api.md's example, as written but for the server's address and the test's project
    assert [line.split()[:3] for line in printed] == [[str(fox), "Vulpes", "vulpes"]]
    assert printed[0].endswith("/medium.jpg") and expected_login in printed[0]

    # every page, by id (get_observations(page='all') and iNatClient's paginator, 2 a page)
    assert read["all_total"] == 5 and sorted(read["all_ids"]) == visible
    assert sorted(read["client_ids"]) == visible
    assert read["by_id"] == [fox, wolf, secret_place]  # unpublished and not-public ones left out
    obs = {o["id"]: o for o in read["observations"]}
    assert obs[fox]["taxon"] == "Vulpes vulpes" and obs[fox]["quality_grade"] == "research"
    assert obs[fox]["location"] == [41.39, 2.17] and obs[fox]["obscured"] is False
    assert obs[fox]["user"] == expected_login and obs[fox]["user"].startswith("observer-")
    assert obs[fox]["identifications"] == [["improving", "Vulpes vulpes"], ["supporting", "Vulpes vulpes"]]
    assert obs[fox]["cumulative_ids"] == [2, 2] and obs[fox]["project_ids"] == [plan["project"]]
    assert obs[fox]["license_code"] == "CC-BY" and obs[fox]["observed_on"].startswith("2026-05-01T09:30:00")
    assert [c for c, _ in obs[wolf]["identifications"]] == ["improving", "leading"]
    assert obs[wolf]["taxon"] == "Canis lupus" and obs[wolf]["quality_grade"] == "needs_id"
    assert obs[hidden_place]["location"] == [41.4, 2.2] and obs[hidden_place]["obscured"] is True
    assert obs[secret_place]["location"] is None and obs[secret_place]["geoprivacy"] == "private"
    # the photo's sizes, as pyinaturalist's Photo names them, all served
    urls = obs[fox]["photo_urls"]
    assert urls["square"].endswith("/square.jpg") and set(urls) == {"square", "small", "medium", "large", "original"}
    assert all(status == [200, "image/jpeg"] for status in read["photo_status"].values())
    assert read["filtered"] == [fox]  # research grade below Canidae, observed from 1 May
    assert read["taxa_search"] == ["Vulpes", "Vulpes lagopus", "Vulpes vulpes"]
    assert read["taxon_ancestors"] == ["Animalia", "Chordata", "Mammalia", "Carnivora", "Canidae"]
    assert read["projects"] == [[plan["project"], "wild", "Wild"]]  # its number and its slug name one project
    assert read["bad_per_page"] == [422, 422, "invalid_request"]


def run_the_docs_example(path: Path, base: str, work: Path) -> list[str]:
    """docs/inat-api.md's pyinaturalist example, run against ``base`` for the project ``wild``; its lines."""
    text = (ROOT / "docs" / "inat-api.md").read_text(encoding="utf-8")
    example = text.split("## Reading an observatory with pyinaturalist")[1].split("```python\n")[1].split("```")[0]
    address = 'OBSERVATORY = "http://127.0.0.1:8000"'
    assert address in example and 'project_id="demo"' in example
    script = work / "example.py"
    script.write_text(example.replace(address, f'OBSERVATORY = "{base}"').replace('project_id="demo"',
                                                                                  'project_id="wild"'))
    env = {**os.environ, "PYTHONPATH": str(path), "HOME": str(work), "XDG_DATA_HOME": str(work),
           "XDG_CACHE_HOME": str(work)}
    done = subprocess.run([sys.executable, str(script)], env=env, cwd=work, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"the docs' example failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return done.stdout.strip().splitlines()


# -- the reader: run as a script, with pyinaturalist's folder on PYTHONPATH ------------------------


def _reader(base: str, plan: dict[str, Any], work: str) -> dict[str, Any]:
    import requests
    from pyinaturalist import (ClientSession, Observation, Project, Taxon, get_observations,
                               get_observations_by_id, get_projects_by_id, get_taxa, get_taxa_by_id, iNatClient)
    from requests.adapters import HTTPAdapter

    class ToTheEngine(HTTPAdapter):
        """Sends what pyinaturalist asks of api.inaturalist.org/v1 to the engine's /inat/v1."""

        def send(self, request: Any, **kwargs: Any) -> Any:
            request.url = request.url.replace("https://api.inaturalist.org/v1", f"{base}/inat/v1", 1)
            return super().send(request, **kwargs)

    session = ClientSession(cache_file=f"{work}/inat-cache.sqlite", ratelimit_path=f"{work}/inat-ratelimit.db",
                            lock_path=f"{work}/inat-ratelimit.lock", per_second=100, per_minute=6000,
                            per_day=8_640_000, burst=1, max_retries=0)
    session.mount("https://api.inaturalist.org/", ToTheEngine())
    out: dict[str, Any] = {}

    every = get_observations(project_id=plan["project"], per_page=2, page="all", session=session)
    out["all_total"], out["all_ids"] = every["total_results"], [o["id"] for o in every["results"]]
    models = Observation.from_json_list(every["results"])
    out["observations"] = [{
        "id": o.id, "taxon": o.taxon.name if o.taxon else None, "quality_grade": o.quality_grade,
        "location": list(o.location) if o.location else None, "obscured": o.obscured, "geoprivacy": o.geoprivacy,
        "user": o.user.login if o.user else None, "license_code": o.license_code,
        "observed_on": o.observed_on.isoformat() if o.observed_on else None, "project_ids": o.project_ids,
        "identifications": [[i.category, i.taxon.name] for i in o.identifications],
        "cumulative_ids": list(o.cumulative_ids) if o.community_taxon_id else None,
        "photo_urls": {size: o.photos[0].url_size(size) for size in ("square", "small", "medium", "large", "original")}
        if o.photos else {},
    } for o in models]
    client = iNatClient(session=session)
    out["client_ids"] = [o.id for o in client.observations.search(project_id=plan["slug"], per_page=2).all()]
    out["by_id"] = [o["id"] for o in get_observations_by_id(plan["ids"], session=session)["results"]]
    fox = next(o for o in models if o.id == plan["fox"])
    out["photo_status"] = {}
    for size in ("square", "small", "medium", "large", "original"):
        got = requests.get(fox.photos[0].url_size(size), timeout=30)
        out["photo_status"][size] = [got.status_code, got.headers.get("content-type")]
    filtered = get_observations(taxon_id=plan["canidae"], quality_grade="research", d1="2026-05-01",
                                session=session)
    out["filtered"] = [o["id"] for o in filtered["results"]]
    out["taxa_search"] = [t.name for t in Taxon.from_json_list(get_taxa(q="vulpes", session=session)["results"])]
    vulpes = Taxon.from_json(get_taxa_by_id(plan["vulpes"], session=session)["results"][0])
    out["taxon_ancestors"] = [t.name for t in vulpes.ancestors]
    projects = get_projects_by_id([plan["project"], plan["slug"]], session=session)["results"]
    out["projects"] = [[p.id, p.slug, p.title] for p in Project.from_json_list(projects)]
    try:
        get_observations(per_page=500, session=session)
        out["bad_per_page"] = None
    except requests.HTTPError as exc:
        body = exc.response.json()
        out["bad_per_page"] = [exc.response.status_code, body["status"], body["error"]["code"]]
    return out


if __name__ == "__main__":
    print(json.dumps(_reader(sys.argv[1], json.loads(sys.argv[2]), sys.argv[3])))
