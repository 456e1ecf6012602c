"""``observatory analyse plot``, ``analyse list`` and ``observatory report`` on a real engine:
charts of the ``filled`` survey project (hours counted in Europe/Madrid), the odour plugin's
analysis reached by its registered name, the interactive map as the public sees it, and clear
refusals (exit code 2, a message, no traceback) for an unknown name, project, suffix or empty data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from core.cli import build_cli
from plugins.odour.schema import ODOUR_SETTINGS_SCHEMA
from tests.plugins.analysis.conftest import REGISTRY as SURVEY_REGISTRY
from tests.plugins.analysis.test_maps import LIBRARIES, URL, parse
from tests.plugins.odour.test_odour_plugin import simulation, submit_simulation

REGISTRY = SURVEY_REGISTRY.replace("services:\n", f"""services:
  odour:
    summary: odour reports
    config: {{pseudonym_key: ""}}
    settings: {json.dumps(ODOUR_SETTINGS_SCHEMA)}
""", 1) + """
  - slug: smells
    name: Smells
    public: true
    auto_publish: true
    timezone: Europe/Madrid
    services: {odour: {}, analysis: {}}
"""


@pytest.fixture
def registry() -> str:
    return REGISTRY


@pytest.fixture
def plugins() -> str:
    return "survey=tests.plugins.analysis.conftest,analysis=plugins.analysis.plugin,odour=plugins.odour.plugin"


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("OBSERVATORY_ANALYSIS_CACHE", str(tmp_path / "cache"))


def run(*args: str) -> Any:
    return CliRunner().invoke(build_cli(), [str(a) for a in args])


def test_plot_draws_charts_and_tables_of_a_project(engine: Any, filled: Any, tmp_path: Path) -> None:
    png = tmp_path / "hours.png"
    result = run("analyse", "plot", "survey", "hour", "--out", png)
    assert result.exit_code == 0, result.output
    assert png.read_bytes().startswith(b"\x89PNG")
    # five observations staff see (the trashed one left out), at 09:00, 22:00, 09:00, 09:00 and 07:15
    # UTC in May: 11, 0, 11, 11 and 9 o'clock in Madrid
    table = tmp_path / "hours.csv"
    assert run("analyse", "plot", "survey", "hour", "--out", table).exit_code == 0
    hours = pd.read_csv(table).set_index("hour")["observations"]
    assert (hours[11], hours[0], hours[9], hours.sum()) == (3, 1, 1, 5)
    utc = pd.read_csv(table) if run("analyse", "plot", "survey", "hour", "--timezone", "UTC",
                                   "--out", table).exit_code == 0 else None
    assert utc is not None and utc.set_index("hour")["observations"][9] == 3
    public = tmp_path / "public.csv"
    assert run("analyse", "plot", "survey", "hour", "--public", "--out", public).exit_code == 0
    assert pd.read_csv(public)["observations"].sum() == 4  # published only
    contributions = tmp_path / "people.csv"
    assert run("analyse", "plot", "survey", "contributions", "--out", contributions).exit_code == 0
    people = pd.read_csv(contributions)
    assert list(people["contributor_id"]) == [filled.people["ana"].account_id, filled.people["ben"].account_id]
    assert list(people["n_observations"]) == [3, 2] and "Ana" not in contributions.read_text()
    refused = run("analyse", "plot", "survey", "lorenz", "--public", "--out", tmp_path / "l.png")
    assert refused.exit_code == 2 and "no contributor ids" in refused.output


def test_the_interactive_map_as_the_public_sees_it(engine: Any, filled: Any, tmp_path: Path) -> None:
    out = tmp_path / "map.html"
    result = run("analyse", "plot", "survey", "map-html", "--public", "--out", out)
    assert result.exit_code == 0, result.output
    page = out.read_text()
    loads = parse(page)
    assert not [a for a in loads.addresses if URL.match(a)] and "L.markerClusterGroup" in page
    own = {u for s in loads.scripts if s not in LIBRARIES for u in URL.findall(s)}
    assert own == {engine.settings.map_tile_url}  # the tiles the settings name, nothing else
    assert "41.3851" not in page and "41.39" in page  # the public grid of 2 decimals, not the exact place
    assert "Ana" not in page and "Ben" not in page


def test_list_shows_charts_and_every_plugins_analysis(engine: Any) -> None:
    listed = run("analyse", "list")
    assert listed.exit_code == 0, listed.output
    for name in ("over-time", "hour", "weekday", "taxa", "map", "heatmap", "map-html", "contributions", "lorenz",
                 "odour_hour_weekday", "odour_heatmap"):
        assert name in listed.output
    assert "(plugin odour)" in listed.output
    assert run("analyse", "plot", "--list").output == listed.output


def test_plot_runs_the_odour_plugins_analysis(engine: Any, tmp_path: Path) -> None:
    sim = simulation(days=6, episodes=2, residents=40, noise_reports=4)
    submit_simulation(engine, sim, "smells")
    png = tmp_path / "odour.png"
    result = run("analyse", "plot", "smells", "odour_hour_weekday", "--out", png)
    assert result.exit_code == 0, result.output
    assert png.read_bytes().startswith(b"\x89PNG")
    rows = tmp_path / "odour.csv"
    assert run("analyse", "plot", "smells", "odour_hour_weekday", "--out", rows).exit_code == 0
    assert pd.read_csv(rows)["count"].sum() == len(sim.reports)
    other = run("analyse", "plot", "survey", "odour_hour_weekday", "--out", png)
    assert other.exit_code == 2 and "not on in project survey" in other.output


def test_bad_input_gets_a_message_and_exit_code_2(engine: Any, filled: Any, tmp_path: Path) -> None:
    cases = [
        (("analyse", "plot", "survey", "pie", "--out", tmp_path / "x.png"), "no chart or analysis 'pie'"),
        (("analyse", "plot", "nowhere", "hour", "--out", tmp_path / "x.png"), "no project 'nowhere'"),
        (("analyse", "plot", "closed", "hour", "--out", tmp_path / "x.png"), "no observations in closed"),
        (("analyse", "plot", "survey", "hour", "--out", tmp_path / "x.xlsx"), "write .png, .svg, .pdf or .csv"),
        (("analyse", "plot", "survey", "map", "--out", tmp_path / "x.csv"), "has no table"),
        (("analyse", "plot", "survey", "hour", "--timezone", "Mars/Base", "--out", tmp_path / "x.png"),
         "unknown time zone"),
        (("analyse", "plot", "survey"), "give PROJECT and NAME"),
        (("report", "closed", "--out", tmp_path / "r.html"), "no observations in Closed"),
        (("report", "survey", "--out", tmp_path / "r.docx"), "write .html or .pdf"),
    ]
    for args, message in cases:
        result = run(*args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "r.html").exists()


def test_report_of_a_project(engine: Any, filled: Any, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = run("report", "survey", "--out", out)
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "Survey" in page and "published observations" in page
    assert ">4</span> Observations" in page and ">2</span> Contributors" in page  # published ones
    assert "Vulpes vulpes" in page and "Participation" in page
    assert "http://" not in page and "https://" not in page
    assert "Ana" not in page and "Ben" not in page
    pdf = run("report", "survey", "--out", tmp_path / "report.pdf")
    from plugins.analysis.report import weasyprint_available

    if not weasyprint_available():
        assert pdf.exit_code == 2 and "WeasyPrint, which is not installed" in pdf.output
