"""``observatory analyse frame`` and the contributors frame."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from click.testing import CliRunner

from core.cli import build_cli
from plugins.analysis import Observatory


def test_frame_command_writes_parquet_and_csv_and_refuses_bad_input(engine: Any, filled: Any, tmp_path: Path,
                                                                    monkeypatch: Any) -> None:
    monkeypatch.setenv("OBSERVATORY_ANALYSIS_CACHE", str(tmp_path / "cache"))
    runner = CliRunner()
    out = tmp_path / "survey.parquet"
    result = runner.invoke(build_cli(), ["analyse", "frame", "survey", "--filter", "field.count>=2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = pd.read_parquet(out)
    assert set(written["id"]) == {filled.ids["fox"], filled.ids["hidden"]}
    assert str(written["observed_at"].dtype) == "datetime64[ns, UTC]"
    csv = tmp_path / "public.csv"
    result = runner.invoke(build_cli(), ["analyse", "frame", "survey", "--public", "--out", str(csv)])
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(csv)) == 4
    bad = runner.invoke(build_cli(), ["analyse", "frame", "survey", "--filter", "colour=red", "--out", str(csv)])
    assert bad.exit_code != 0 and "unknown filter 'colour'" in bad.output and "Traceback" not in bad.output
    wrong = runner.invoke(build_cli(), ["analyse", "frame", "survey", "--out", str(tmp_path / "x.xlsx")])
    assert wrong.exit_code == 2 and ".csv or .parquet" in wrong.output


def test_contributors_frame_counts_active_days_and_names_only_for_staff(engine: Any, filled: Any,
                                                                        tmp_path: Path) -> None:
    staff = Observatory.local(engine=engine, cache=False).contributors("survey")
    ana = staff.set_index("contributor_id").loc[filled.people["ana"].account_id]
    assert ana["n_observations"] == 4 and ana["active_days"] == 4 and ana["display_name"] == "Ana"
    public = Observatory.local(engine=engine, public=True, cache=False).contributors("survey")
    assert len(public) == 0 and "display_name" not in public.columns


def test_contributors_active_days_are_local_days_as_participation_counts_them() -> None:
    from plugins.analysis.frames.contributors import contributors_frame
    from plugins.analysis.participation import contributor_metrics

    times = pd.to_datetime(["2026-05-01T22:30:00Z", "2026-05-02T08:00:00Z", "2026-05-03T08:00:00Z"], utc=True)
    frame = pd.DataFrame({"contributor_id": pd.array([7, 7, 8], dtype="Int64"), "observed_at": times})
    madrid = contributors_frame(frame, timezone="Europe/Madrid").set_index("contributor_id")
    assert madrid.loc[7, "active_days"] == 1  # 00:30 and 10:00 of 2 May in Madrid: one day there
    assert contributors_frame(frame).set_index("contributor_id").loc[7, "active_days"] == 2  # two UTC days
    metrics = contributor_metrics(frame, "Europe/Madrid")
    assert list(madrid["active_days"]) == list(metrics.loc[[7, 8], "active_days"])
