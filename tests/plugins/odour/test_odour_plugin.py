"""The odour plugin in the engine: the simulated factory's reports submitted through the
lifecycle (distinct contributors, kind ``odour``), then events, flags, enrichment, export, the
pseudonym key, a project without odour, and the CLI run as a separate process.

The API side is in ``test_odour_plugin_api.py``; it imports the helpers of this module.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from core import lifecycle
from core.db.session import transaction
from core.errors import ValidationFailed
from core.export import export
from core.moderation import moderate
from core.projects import project_kinds
from core.registry import load_registry
from core.secret_keys import forget_cached_keys
from core.tokens import create_token
from core.views import load_observation, observation_dict
from plugins.odour import service
from plugins.odour.compat import pseudonymous_user_id
from plugins.odour.enrichment import haversine_m
from plugins.odour.events import report_annoyance
from plugins.odour.reports import Report
from plugins.odour.schema import ODOUR_SETTINGS_SCHEMA
from plugins.odour.simulate import Simulation, simulate_factory

ROOT = Path(__file__).resolve().parents[3]
FACTORY = (41.40, 2.20)
ZONE = [[2.16, 41.37], [2.24, 41.37], [2.24, 41.43], [2.16, 41.43]]

ODOUR_REGISTRY = f"""
services:
  recorder:
    summary: records which observations it saw
    settings: {{type: object}}
  odour:
    summary: odour reports
    config: {{pseudonym_key: ""}}
    settings: {json.dumps(ODOUR_SETTINGS_SCHEMA)}
projects:
  - slug: smells
    name: Smells
    timezone: Europe/Madrid
    auto_publish: true
    location_precision: 3
    services:
      odour:
        points_of_interest: [{{name: Factory, lat: {FACTORY[0]}, lon: {FACTORY[1]}}}]
        zones: [{{name: Estate, polygon: {json.dumps(ZONE)}}}]
  - slug: exact
    name: Exact places, moderated
    timezone: UTC
    services:
      odour: {{points_of_interest: [{{name: Factory, lat: {FACTORY[0]}, lon: {FACTORY[1]}}}]}}
  - slug: closed
    name: Not public
    public: false
    auto_publish: true
    services: {{odour: {{}}}}
  - slug: plain
    name: No odour here
    services: {{recorder: {{}}}}
"""


# --------------------------------------------------------------------------- helpers (also used by the API tests)


def simulation(**overrides: Any) -> Simulation:
    """A small factory: a few hundred reports at most, planted episodes and lone false reports."""
    options: dict[str, Any] = {"seed": 11, "days": 40, "episodes": 5, "residents": 300, "noise_reports": 12,
                               "factory_lat": FACTORY[0], "factory_lon": FACTORY[1]}
    options.setdefault("reporters_per_episode", (3, 8))
    options.update(overrides)
    return simulate_factory(**options)


def odour_draft(report: Report, **extra: Any) -> dict[str, Any]:
    fields = {"category": report.category, "subtype": report.subtype, "intensity": report.intensity,
              "hedonic_tone": report.hedonic_tone}
    if report.duration is not None:
        fields["duration"] = report.duration
    return {"client_id": f"sim-{report.id}", "observed_at": report.observed_at.isoformat(), "kind": "odour",
            "location": {"lat": report.lat, "lon": report.lon, "accuracy_m": 10}, "fields": fields, **extra}


def contributors_for(engine, sim: Simulation, project: str) -> dict[str, int]:
    """A real contributor (made with a token, as an app user gets one) per simulated person."""
    names = sorted({r.contributor for r in sim.reports})
    return {name: create_token(engine, "contributor", project, name).contributor_id for name in names}


def submit_simulation(engine, sim: Simulation, project: str = "smells") -> tuple[dict[int, int], dict[str, int]]:
    """Submit every simulated report through the lifecycle, in time order; returns
    (simulated id -> observation id, simulated contributor -> contributor id)."""
    people = contributors_for(engine, sim, project)
    ids = {}
    for report in sim.reports:
        result = lifecycle.submit(engine, project, odour_draft(report), contributor_id=people[report.contributor])
        ids[report.id] = result.observation_id
    return ids, people


def show(engine, obs_id: int) -> dict[str, Any]:
    with transaction(engine.sessions) as session:
        return observation_dict(load_observation(session, obs_id))


def codes(obs: dict[str, Any]) -> set[str]:
    return {f["code"] for f in obs["flags"]}


def planted_groups(sim: Simulation, ids: dict[int, int]) -> set[frozenset[int]]:
    return {frozenset(ids[i] for i in episode.report_ids) for episode in sim.episodes}


@pytest.fixture
def engine(make_engine):
    return make_engine(ODOUR_REGISTRY)


@pytest.fixture(scope="module")
def sim() -> Simulation:
    """About two hundred reports: twelve episodes of 5 to 20 neighbours, forty false reports."""
    return simulation(seed=11, days=60, episodes=12, residents=900, reporters_per_episode=(5, 16), noise_reports=40)


# --------------------------------------------------------------------------- registry and wiring


def test_registry_yaml_offers_odour_with_the_settings_schema_of_the_code():
    registry = load_registry(ROOT / "registry.yaml")
    spec = registry.services["odour"]
    assert spec.settings == ODOUR_SETTINGS_SCHEMA, "registry.yaml services.odour.settings drifted from schema.py"
    assert spec.config.get("pseudonym_key") == "", "no pseudonym secret is committed"
    demo = registry.project("smells")
    assert demo.enables("odour") and demo.timezone == "Europe/Madrid"
    settings = demo.settings("odour")
    assert settings["points_of_interest"] and len(settings["zones"]) == 1
    assert "odour" in yaml.safe_load((ROOT / "registry.yaml").read_text())["services"]


def test_pyproject_declares_the_entry_point():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'odour = "plugins.odour.plugin"' in text


def test_the_plugin_registers_its_kind_analyses_and_hooks(engine):
    host = engine.host
    assert host.info["odour"].builtin is True
    assert host.observation_types["odour"].plugin == "odour"
    assert set(service.analysis_names(engine)) == {"hour_weekday", "categories", "intensity", "heatmap"}
    hooks = set(host.hooks_of("odour"))
    assert {"on_status_change", "register_observation_types", "validate_observation", "enrich_observation", "quality_check",
            "export_columns", "register_analyses", "register_routes", "register_commands"} <= hooks
    kinds = {t.name for t in project_kinds(engine, engine.registry.project("smells"))}
    assert "odour" in kinds
    assert "odour" not in {t.name for t in project_kinds(engine, engine.registry.project("plain"))}


# --------------------------------------------------------------------------- the simulated factory


def test_simulated_episodes_become_events_and_noise_stays_possible(engine, sim):
    ids, people = submit_simulation(engine, sim)
    project = engine.registry.project("smells")
    payload = service.events(engine, project, public=False)

    assert payload["n_reports"] == len(sim.reports)
    found = {frozenset(e["report_ids"]) for e in payload["events"]}
    assert found == planted_groups(sim, ids), "each planted episode is exactly one event"
    assert {ids[i] for i in sim.noise_ids} <= set(payload["possible"])
    by_obs = {ids[r.id]: r for r in sim.reports}
    for event, episode in zip(payload["events"], sim.episodes):
        members = [by_obs[i] for i in event["report_ids"]]
        assert event["n_contributors"] == len(episode.contributors) >= 2
        assert sorted(event["contributors"]) == sorted(people[c] for c in episode.contributors)
        expected = sum(report_annoyance(r.intensity, r.hedonic_tone) for r in members) / len(members)
        assert event["annoyance"] == pytest.approx(expected)
        assert event["category_name"] == "Industrial"
        assert datetime.fromisoformat(event["start"]) == episode.start

    # every report of an episode is flagged corroborated (the first ones too), no false report is
    for sim_id, obs_id in ids.items():
        obs = show(engine, obs_id)
        in_episode = sim_id not in sim.noise_ids
        assert ("odour.corroborated" in codes(obs)) is in_episode, (sim_id, obs["flags"])
        if in_episode:
            flag = next(f for f in obs["flags"] if f["code"] == "odour.corroborated")
            assert flag["severity"] == "info" and flag["plugin"] == "odour" and flag["value"] >= 2

    # enrichment: local time in the project's zone, the factory's distance, the zone
    first = sim.reports[0]
    enriched = show(engine, ids[first.id])["enrichments"]["odour"]
    assert enriched["status"] == "done"
    local = first.observed_at.astimezone(ZoneInfo("Europe/Madrid"))
    assert enriched["result"]["local_time"] == local.isoformat()
    assert enriched["result"]["day_of_week"] == local.strftime("%A")
    assert enriched["result"]["points_of_interest"][0]["name"] == "Factory"

    # false reports far away lie outside the estate's zone, and are flagged
    far = [r for r in sim.reports if r.id in sim.noise_ids
           and not (ZONE[0][0] <= r.lon <= ZONE[1][0] and ZONE[0][1] <= r.lat <= ZONE[2][1])]
    assert far, "the simulation scatters false reports beyond the zone"
    for report in far:
        obs = show(engine, ids[report.id])
        assert "odour.outside_zones" in codes(obs)
        assert obs["enrichments"]["odour"]["result"]["zone"] is None


def test_public_events_use_published_reports_and_hide_contributors(engine):
    sim = simulation(episodes=2, noise_reports=3, days=10, seed=5)
    ids, _ = submit_simulation(engine, sim)
    project = engine.registry.project("smells")
    episode = max(sim.episodes, key=lambda e: len(e.contributors))
    hidden = [ids[i] for i in episode.report_ids]
    for obs_id in hidden:
        moderate(engine, obs_id, "unpublish", actor="test")
    public = service.events(engine, project, public=True)
    staff = service.events(engine, project, public=False)
    assert len(staff["events"]) == 2 and len(public["events"]) == 1
    assert not set(hidden) & {i for e in public["events"] for i in e["report_ids"]}
    assert not set(hidden) & set(public["possible"])
    assert all("contributors" not in e for e in public["events"])
    assert all(e["centroid"]["lat"] == round(e["centroid"]["lat"], 3) for e in public["events"])
    assert "contributor" not in json.dumps(public["events"]).replace("n_contributors", "")


def test_a_late_second_witness_confirms_the_first_report(engine):
    alice = create_token(engine, "contributor", "smells", "alice").contributor_id
    bob = create_token(engine, "contributor", "smells", "bob").contributor_id
    t0 = datetime(2024, 5, 6, 8, 0, tzinfo=UTC)
    base = Report(0, None, 5, t0, 41.401, 2.201, 4, -3, subtype=53, duration=1)
    first = lifecycle.submit(engine, "smells", odour_draft(base), contributor_id=alice).observation_id
    assert "odour.corroborated" not in codes(show(engine, first))
    again = Report(1, None, 5, t0 + timedelta(minutes=20), 41.402, 2.201, 3, -2, subtype=53, duration=1)
    same_person = lifecycle.submit(engine, "smells", odour_draft(again), contributor_id=alice).observation_id
    assert "odour.corroborated" not in codes(show(engine, same_person)), "one person alone is no event"
    other = Report(2, None, 5, t0 + timedelta(hours=1), 41.405, 2.203, 3, -3, subtype=53, duration=1)
    second = lifecycle.submit(engine, "smells", odour_draft(other), contributor_id=bob).observation_id
    for obs_id in (first, same_person, second):
        assert "odour.corroborated" in codes(show(engine, obs_id)), obs_id
    elsewhere = Report(3, None, 2, t0 + timedelta(hours=1), 41.405, 2.203, 3, -3, subtype=11, duration=1)
    lone = lifecycle.submit(engine, "smells", odour_draft(elsewhere), contributor_id=bob).observation_id
    assert "odour.corroborated" not in codes(show(engine, lone)), "another category is another odour"


# --------------------------------------------------------------------------- validation and quality


def submit_fields(engine, fields: dict[str, Any], project: str = "smells", **draft: Any) -> int:
    body = {"observed_at": "2024-05-06T10:00:00+02:00", "location": {"lat": 41.401, "lon": 2.201},
            "kind": "odour", "fields": fields, **draft}
    return lifecycle.submit(engine, project, body).observation_id


@pytest.mark.parametrize(
    ("fields", "path", "words"),
    [
        ({"category": 5, "subtype": 11, "intensity": 3, "hedonic_tone": -2}, ("fields", "subtype"),
         "belongs to category 2"),
        ({"category": 5, "subtype": 53, "intensity": 0, "hedonic_tone": 0}, ("fields", "intensity"),
         "intensity 0"),
        ({"category": 9, "subtype": 88, "intensity": 3, "hedonic_tone": 0}, ("fields", "intensity"),
         "no odour requires intensity 0"),
        ({"category": 5, "subtype": 53, "intensity": 7, "hedonic_tone": -2}, ("fields", "intensity"), "7"),
        ({"category": 5, "subtype": 53, "hedonic_tone": -2}, ("fields",), "intensity"),
        ({"category": 5, "subtype": 53, "intensity": 3, "hedonic_tone": -2, "smell": "bad"}, ("fields",), "smell"),
    ],
)
def test_invalid_reports_are_refused_with_field_paths(engine, fields, path, words):
    with pytest.raises(ValidationFailed) as caught:
        submit_fields(engine, fields)
    problems = caught.value.problems
    assert any(p.path == path and words in p.message for p in problems), problems
    assert service.observations(engine, engine.registry.project("smells"), public=False) == []


def test_a_burst_from_one_contributor_is_flagged(engine):
    who = create_token(engine, "contributor", "smells", "eager").contributor_id
    t0 = datetime(2024, 5, 6, 8, 0, tzinfo=UTC)
    last = None
    for k in range(5):
        report = Report(k, None, 6, t0 + timedelta(minutes=2 * k), 41.40, 2.20, 2, -1, subtype=59, duration=1)
        last = lifecycle.submit(engine, "smells", odour_draft(report), contributor_id=who).observation_id
    flag = next(f for f in show(engine, last)["flags"] if f["code"] == "odour.burst")
    assert flag["value"] == 5 and flag["plugin"] == "odour"


def test_implausible_combinations_are_flagged(engine):
    nice = submit_fields(engine, {"category": 7, "subtype": 74, "intensity": 2, "hedonic_tone": -3})
    assert "odour.nice_but_unpleasant" in codes(show(engine, nice))
    still = submit_fields(engine, {"category": 9, "subtype": 88, "intensity": 0, "hedonic_tone": 0, "duration": 3})
    assert "odour.no_odour_but_continuous" in codes(show(engine, still))


def test_distances_are_as_coarse_as_the_public_place(engine):
    # 41.4014, 2.2014 shows as 41.401, 2.201: the distance and bearing must be those of that
    # place, or moving the report by a few metres would move them and tell where in the cell it is
    fields = {"category": 5, "subtype": 53, "intensity": 3, "hedonic_tone": -2}
    results = [show(engine, submit_fields(engine, fields, location={"lat": lat, "lon": lon}))
               ["enrichments"]["odour"]["result"] for lat, lon in ((41.4014, 2.2014), (41.4006, 2.2006))]
    assert results[0] == results[1]
    poi = results[0]["points_of_interest"][0]
    assert poi["distance_m"] == round(haversine_m(41.401, 2.201, *FACTORY))
    assert results[0]["from_public_place"] == {"precision_m": 111.0}
    exact = show(engine, submit_fields(engine, {"category": 5, "subtype": 53, "intensity": 3, "hedonic_tone": -2},
                                       project="exact"))
    result = exact["enrichments"]["odour"]["result"]
    assert result["points_of_interest"][0]["distance_m"] == round(haversine_m(41.401, 2.201, *FACTORY))
    assert result["local_time"] == "2024-05-06T08:00:00+00:00" and "zone" not in result


# --------------------------------------------------------------------------- a project without odour


def test_a_project_without_odour_never_runs_its_hooks_and_refuses_the_kind(engine):
    plain = engine.registry.project("plain")
    for hook in ("validate_observation", "enrich_observation", "quality_check", "export_columns"):
        assert "odour" not in engine.host.plugins_of(hook, plain), hook
    with pytest.raises(ValidationFailed) as caught:
        submit_fields(engine, {"category": 5, "subtype": 53, "intensity": 3, "hedonic_tone": -2}, project="plain")
    (problem,) = caught.value.problems
    assert problem.path == ("kind",) and "unknown observation kind 'odour'" in problem.message
    assert "not enabled" in problem.message
    obs = show(engine, lifecycle.submit(engine, "plain", {"observed_at": "2024-05-06T10:00:00+00:00",
                                                          "location": {"lat": 41.4, "lon": 2.2},
                                                          "fields": {"note": "smelly"}}).observation_id)
    assert set(obs["enrichments"]) == {"recorder"}
    assert not [f for f in obs["flags"] if f["plugin"] == "odour"]
    header = next(csv.reader(io.StringIO("".join(export(engine, plain, "csv", public=False)))))
    assert not [c for c in header if c.startswith("odour_")]


def test_other_kinds_in_an_odour_project_are_left_alone(engine):
    obs = show(engine, lifecycle.submit(engine, "smells", {"observed_at": "2024-05-06T10:00:00+00:00",
                                                           "location": {"lat": 41.4, "lon": 2.2},
                                                           "fields": {"note": "not a smell"}}).observation_id)
    assert "odour" not in obs["enrichments"], "odour enriches odour reports only: no row, no task for other kinds"
    assert not [f for f in obs["flags"] if f["plugin"] == "odour"]


# --------------------------------------------------------------------------- export and pseudonyms


def test_export_has_the_odour_columns(engine):
    obs_id = submit_fields(engine, {"category": 5, "subtype": 53, "intensity": 4, "hedonic_tone": -3})
    rows = list(csv.DictReader(io.StringIO("".join(export(engine, engine.registry.project("smells"), "csv")))))
    (row,) = [r for r in rows if r["id"] == str(obs_id)]
    assert row["odour_category"] == "Industrial" and row["odour_subtype"] == "Sulphur"
    assert row["odour_intensity"] == "4" and row["odour_hedonic_tone"] == "-3"
    assert row["odour_local_time"] == "2024-05-06T10:00:00+02:00"
    assert row["odour_zone"] == "Estate"


def test_the_pseudonym_key_is_made_once_per_installation_with_mode_0600(engine, make_engine, monkeypatch):
    key = service.pseudonym_key(engine)
    path = Path(engine.settings.data_dir) / service.KEY_FILE
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip().encode() == key and len(key) == 64
    forget_cached_keys()
    assert service.pseudonym_key(engine) == key, "the same key after a restart"
    monkeypatch.setenv("ODOUR_TEST_KEY", "from-the-environment")
    configured = make_engine(ODOUR_REGISTRY.replace('pseudonym_key: ""', "pseudonym_key: env:ODOUR_TEST_KEY"))
    assert service.pseudonym_key(configured) == b"from-the-environment"
    assert pseudonymous_user_id(7, service.pseudonym_key(configured)) != pseudonymous_user_id(7, key)


# --------------------------------------------------------------------------- CLI, as a user runs it


@pytest.fixture
def cli(engine, tmp_path):
    """Run ``observatory`` in a child process on the test engine's database and registry."""

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "core.cli", *args], capture_output=True, check=False,
            env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path, timeout=120,
        )

    return run


@pytest.mark.slow  # over 30 s: once in CI (the PostgreSQL pass)
def test_cli_submits_and_lists_events_and_analyses(engine, cli, tmp_path):
    sim = simulation(episodes=2, noise_reports=4, days=10, seed=3)
    ids, _ = submit_simulation(engine, sim)
    draft_path = tmp_path / "report.json"
    draft_path.write_text(json.dumps(odour_draft(Report(0, None, 2, datetime(2024, 1, 5, 9, tzinfo=UTC), 41.38,
                                                        2.18, 3, -2, subtype=11, duration=1))))
    submitted = cli("submit", "smells", str(draft_path))
    assert submitted.returncode == 0, submitted.stderr
    assert json.loads(submitted.stdout)["kind"] == "odour"
    bad_path = tmp_path / "bad.json"
    bad_path.write_text(json.dumps({**json.loads(draft_path.read_text()), "client_id": "bad",
                                    "fields": {"category": 5, "subtype": 11, "intensity": 3, "hedonic_tone": -2}}))
    refused = cli("submit", "smells", str(bad_path))
    assert refused.returncode == 2 and b"error: fields.subtype:" in refused.stderr

    out = cli("odour", "events", "smells")
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    assert {frozenset(e["report_ids"]) for e in payload["events"]} == planted_groups(sim, ids)
    assert all("contributors" in e for e in payload["events"])
    public = json.loads(cli("odour", "events", "smells", "--public", "--format", "geojson").stdout)
    assert public["type"] == "FeatureCollection" and len(public["features"]) == 2
    assert "contributors" not in public["features"][0]["properties"]
    since = sim.episodes[1].start.date().isoformat()
    table = cli("odour", "events", "smells", "--format", "csv", "--since", since).stdout.decode()
    assert len(list(csv.DictReader(io.StringIO(table)))) == 1

    assert cli("odour", "analyse", "smells", "heatmap", "--output", str(tmp_path / "map.png")).returncode == 0
    assert (tmp_path / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli("odour", "analyse", "smells", "categories", "-o", str(tmp_path / "cat.csv")).returncode == 0
    rows = list(csv.DictReader((tmp_path / "cat.csv").open()))
    assert sum(int(r["n_reports"]) for r in rows) == len(sim.reports) + 1
    hours = json.loads(cli("odour", "analyse", "smells", "hour_weekday").stdout)
    assert sum(r["count"] for r in hours["rows"]) == len(sim.reports) + 1 and "png" not in hours

    unknown = cli("odour", "analyse", "smells", "horoscope")
    assert unknown.returncode == 2 and b"unknown odour analysis 'horoscope'" in unknown.stderr
