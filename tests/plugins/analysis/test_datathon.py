"""The datathon kit: the split's promises and the scores on generated frames with known answers,
every kind of bad submission, and a datathon frozen from a real engine through the CLI (no test
label and no personal data in the participants' folder; a perfect and a random submission on the
leaderboard)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner, Result

from core.cli import build_cli
from core.testing import draft, submit
from plugins.analysis.datathon import layout
from plugins.analysis.datathon.predictions import SubmissionError, read_predictions
from plugins.analysis.datathon.score import score
from plugins.analysis.datathon.split import TEST, TRAIN, SplitError, split_rows

ROOT = Path(__file__).resolve().parents[3]
CLASSES = ["Erithacus rubecula", "Parus major", "Passer domesticus", "Turdus merula"]


def generated(people: int = 40, days: int = 30, rows: int = 1200, seed: int = 1) -> pd.DataFrame:
    """Rows by ``people`` contributors over ``days`` days, each person keen on a few days (as
    real contributors are), labels drawn from CLASSES."""
    rng = np.random.default_rng(seed)
    person = rng.integers(0, people, rows)
    own_days = rng.integers(0, days, (people, 4))
    day = own_days[person, rng.integers(0, 4, rows)]
    return pd.DataFrame({"contributor_id": pd.array(person, "Int64"),
                         "day": [f"2026-05-{d + 1:02d}" for d in day],
                         "label": rng.choice(CLASSES, rows)})


@pytest.mark.parametrize("how", ["contributor+time", "time"])
def test_no_person_and_no_day_on_both_sides(how: str) -> None:
    frame = generated()
    split = split_rows(frame, test_share=0.2, how=how, seed=3)
    train, test = frame.loc[split.train_index], frame.loc[split.test_index]
    assert not set(train["contributor_id"]) & set(test["contributor_id"])
    assert not set(train["day"]) & set(test["day"])
    assert set(test["label"]) <= set(train["label"])
    kept = len(train) + len(test)
    assert kept + sum(split.dropped.values()) == len(frame)  # every row kept or counted as dropped
    assert 0.08 < len(test) / kept < 0.4 and kept > 0.5 * len(frame)
    assert split_rows(frame, test_share=0.2, how=how, seed=3).side.equals(split.side)  # the seed fixes it


def test_a_split_that_cannot_be_made_says_why() -> None:
    one_person = pd.DataFrame({"contributor_id": pd.array([7, 7, 7], "Int64"), "day": ["a", "b", "c"],
                               "label": ["x", "x", "x"]})
    with pytest.raises(SplitError, match="more contributors and days are needed"):
        split_rows(one_person)
    with pytest.raises(SplitError, match="between 0 and 1"):
        split_rows(generated(), test_share=1.5)


def truth_of(n: int = 400, seed: int = 2) -> pd.Series:
    rng = np.random.default_rng(seed)
    return pd.Series(rng.choice(CLASSES, n), index=[f"d{i:05d}" for i in range(n)], dtype="string")


def write_predictions(path: Path, rows: list[list[Any]], header: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_a_perfect_submission_scores_one_and_a_random_one_chance(tmp_path: Path) -> None:
    truth = truth_of()
    ids = list(truth.index)
    perfect = write_predictions(tmp_path / "perfect.csv", [[i, truth[i], 1.0] for i in ids], ["id", "label", "score"])
    scores = score(read_predictions(perfect, ids, CLASSES), truth)
    assert (scores["top1"], scores["top5"], scores["macro_f1"], scores["ece"]) == (1.0, 1.0, 1.0, 0.0)
    assert scores["per_class_recall"] == {c: 1.0 for c in CLASSES}

    rng = np.random.default_rng(5)
    guesses = [[i, *rng.permutation(CLASSES)[:2], 0.5, 0.3] for i in ids]
    random = write_predictions(tmp_path / "random.csv", guesses, ["id", "label_1", "label_2", "score_1", "score_2"])
    scores = score(read_predictions(random, ids, CLASSES), truth)
    assert abs(scores["top1"] - 0.25) < 0.07 and abs(scores["top5"] - 0.5) < 0.08
    assert abs(scores["macro_f1"] - 0.25) < 0.07
    assert abs(scores["ece"] - 0.25) < 0.07  # says 0.5, right a quarter of the time

    confident_and_wrong = write_predictions(
        tmp_path / "wrong.csv", [[i, next(c for c in CLASSES if c != truth[i]), 0.95] for i in ids],
        ["id", "label", "score"])
    scores = score(read_predictions(confident_and_wrong, ids, CLASSES), truth)
    assert scores["top1"] == 0.0 and scores["ece"] == 0.95


def test_each_kind_of_bad_submission_is_reported_with_its_line(tmp_path: Path) -> None:
    ids = ["d00001", "d00002", "d00003", "d00004"]
    bad = tmp_path / "bad.csv"
    bad.write_text("id,label,score\n"
                   "d00001,Parus major,0.9\n"
                   "d00001,Parus major,0.8\n"        # line 3: duplicate
                   "d09999,Parus major,0.5\n"        # line 4: unknown id
                   "d00002,parus major,0.5\n"        # line 5: unknown label (case)
                   "d00003,Turdus merula,1.7\n"      # line 6: score out of [0, 1]
                   "d00004,Turdus merula\n",          # line 7: a cell short
                   encoding="utf-8")
    with pytest.raises(SubmissionError) as caught:
        read_predictions(bad, ids, CLASSES)
    report = str(caught.value)
    for expected in ("line 3: id 'd00001' again (first on line 2)",
                     "line 4: unknown id 'd09999'",
                     "line 5: unknown label 'parus major' (did you mean 'Parus major'?)",
                     "line 6: score 1.7 is outside [0, 1]",
                     "line 7: 2 cells, the header has 3",
                     "1 test id has no prediction: d00004"):
        assert expected in report, report
    assert "6 problems, nothing was scored" in report

    cases = {
        "nolabel.csv": ("id,guess\nd00001,Parus major\n", "unknown column 'guess'"),
        "noid.csv": ("label\nParus major\n", "no 'id' column"),
        "gap.csv": ("id,label_1,label_3\nd00001,Parus major,Turdus merula\n", "'label_3' without 'label_2'"),
        "empty.csv": ("", "the file is empty"),
        "quote.csv": ('id,label\nd00001,"Parus major\n', "malformed CSV"),
        "latin1.csv": ("id,label\nd00001,P\xe1rus\n".encode("latin-1"), "not UTF-8"),
        "nan.csv": ("id,label,score\nd00001,Parus major,nan\n", "outside [0, 1]"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        with pytest.raises(SubmissionError, match=message.replace("[", r"\[").replace("]", r"\]")
                           .replace("(", r"\(").replace(")", r"\)")):
            read_predictions(path, ids, CLASSES)


# --------------------------------------------------------------------------------------------
# Through the CLI, on a real engine
# --------------------------------------------------------------------------------------------


def analysis_entry() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "registry.yaml").read_text())["services"]["analysis"]


@pytest.fixture
def registry() -> str:
    return yaml.safe_dump({
        "services": {"analysis": analysis_entry()},
        "projects": [{"slug": "birds", "name": "Garden birds", "public": True, "auto_publish": True,
                      "timezone": "Europe/Madrid", "location_precision": 2, "licence": "CC-BY-4.0",
                      "services": {"analysis": {}}}],
    }, sort_keys=False)


def tiny_jpeg(seed: int) -> bytes:
    import cv2

    pixels = np.full((48, 64, 3), (seed * 37 % 255, seed * 91 % 255, 120), np.uint8)
    ok, buf = cv2.imencode(".jpg", pixels)
    assert ok
    return buf.tobytes()


PEOPLE = ["Alice Example", "Bob Sample", "Carla Placeholder", "Dmitri Testcase", "Eve Fixture", "Farid Mock",
          "Gloria Stub", "Hugo Dummy"]


@pytest.fixture
def filled(client: Any, make_token: Callable[..., str]) -> dict[str, Any]:
    """Eight named contributors, each on their own two days (two of them share a day), 40 photos
    of four species at exact places, one observation without a species and one held back."""
    tokens = [make_token("contributor", "birds", name) for name in PEOPLE]
    stored = []
    for n in range(40):
        person = n % 8
        day = 1 + 2 * person + (n // 8) % 2 if person != 7 else 1  # Hugo shares Alice's first day
        obs = submit(client, "birds", draft(
            observed_at=f"2026-05-{day:02d}T{8 + n % 10:02d}:{n:02d}:17+02:00",
            location={"lat": 41.381234 + n / 1000, "lon": 2.171234, "accuracy_m": 5},
            fields={"category": CLASSES[n % 4], "note": f"seen by {PEOPLE[person]} at home"}),
            media={f"IMG_{n}.jpg": tiny_jpeg(n)}, token=tokens[person])
        stored.append(obs)
    submit(client, "birds", draft(fields={"note": "no idea what it was"}), token=tokens[0])
    return {"observations": stored}


@pytest.fixture
def run(engine: Any) -> Callable[..., Result]:
    cli = build_cli()
    runner = CliRunner()

    def invoke(*args: Any) -> Result:
        return runner.invoke(cli, ["datathon", *map(str, args)], catch_exceptions=False)

    return invoke


def all_text(folder: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in folder.rglob("*") if p.is_file())


def test_create_score_and_leaderboard_on_a_real_engine(run: Callable[..., Result], filled: dict[str, Any],
                                                       tmp_path: Path) -> None:
    out = tmp_path / "garden"
    made = run("create", "garden-2026", "--project", "birds", "--label", "category", "--test-share", "0.25",
               "--seed", "11", "--out", out)
    assert made.exit_code == 0, made.output
    assert "1 rows left out: no label" in made.stdout
    part, org = out / "participants", out / "organiser"
    train = pd.read_csv(part / "train.csv", dtype="string")
    test = pd.read_csv(part / "test.csv", dtype="string")
    labels = pd.read_csv(org / "test_labels.csv", dtype="string")
    card = json.loads((part / "datacard.json").read_text())

    # the split's promises, on the files participants get
    assert "label" in train and "label" not in test and list(labels.columns) == ["id", "label"]
    assert set(labels["id"]) == set(test["id"]) and len(test) > 0 and len(train) > 0
    assert not set(train["contributor"]) & set(test["contributor"])
    assert not set(train["date"]) & set(test["date"])
    dropped = card["rows"]["dropped_by_split"]
    assert len(train) + len(test) + sum(dropped.values()) == 40
    assert card["split"]["contributors_on_both_sides"] == card["split"]["days_on_both_sides"] == 0
    assert card["rows"]["train"] == len(train) and card["classes"] == sorted(CLASSES)
    assert sum(c["test"] for c in card["per_class"].values()) == len(test)
    assert card["sides"]["train"]["licences"] == {"CC-BY-4.0": len(train)}

    # nothing personal, nothing that leads back to a test label
    text = all_text(part)
    for secret in [*PEOPLE, "41.381234", "IMG_", "seen by", "/api/v1/observations"]:
        assert secret not in text, secret
    obs_ids = {str(o["id"]) for o in filled["observations"]}
    assert not set(test["id"]) & obs_ids and set(test["contributor"]) <= {f"P{i:04d}" for i in range(1, 9)}
    assert set(train["lat"].astype(float).round(2)) == set(train["lat"].astype(float))  # the public grid
    assert not any(p.name == "test_labels.csv" for p in part.rglob("*"))

    # media: the public copies, named by their checksum, all listed in the manifest
    manifest = {f["path"]: f["sha256"] for f in json.loads((part / "manifest.json").read_text())["files"]}
    first = test["media"].iloc[0]
    assert first.startswith("media/") and first.endswith(".jpg") and (part / first).is_file()
    assert manifest[first] == layout.sha256_of(part / first) == Path(first).stem
    assert {"train.csv", "test.csv", "datacard.md", "datacard.json"} <= set(manifest)
    assert "## Predictions" in (part / "datacard.md").read_text()

    # a perfect and a random submission
    truth = dict(zip(labels["id"], labels["label"]))
    perfect = write_predictions(tmp_path / "perfect.csv", [[i, truth[i], 0.99] for i in test["id"]],
                                ["id", "label", "score"])
    scored = run("score", perfect, "--datathon", out, "--name", "Oracle", "--model", "reads the answers")
    assert scored.exit_code == 0, scored.output
    assert "top-1 1.0000, top-5 1.0000, macro F1 1.0000" in scored.stdout
    rng = np.random.default_rng(0)
    random = write_predictions(tmp_path / "random.csv", [[i, rng.choice(CLASSES)] for i in test["id"]], ["id", "label"])
    assert run("score", random, "--datathon", out, "--name", "Dice", "--model", "uniform").exit_code == 0
    board = json.loads(run("leaderboard", out, "--json").stdout)["entries"]
    assert [(e["rank"], e["team"], e["model"]) for e in board] == [(1, "Oracle", "reads the answers"),
                                                                   (2, "Dice", "uniform")]
    assert board[0]["top1"] == 1.0 and board[1]["ece"] is None and board[0]["ece"] == 0.01
    assert "Oracle" in (org / "leaderboard.csv").read_text()

    # a bad submission: a report, exit code 2, the leaderboard untouched
    bad = write_predictions(tmp_path / "bad.csv", [[i, "Pica pica"] for i in test["id"][:-1]], ["id", "label"])
    refused = run("score", bad, "--datathon", out, "--name", "Sloppy")
    assert refused.exit_code == 2
    assert "line 2: unknown label 'Pica pica'" in refused.stderr and "1 test id has no prediction" in refused.stderr
    assert len(json.loads(run("leaderboard", out, "--json").stdout)["entries"]) == 2


def test_create_refuses_what_it_cannot_do(run: Callable[..., Result], filled: dict[str, Any], tmp_path: Path) -> None:
    result = run("create", "x", "--project", "birds", "--label", "field.colour", "--out", tmp_path / "a")
    assert result.exit_code == 2 and "no column 'field.colour'" in result.stderr and "category" in result.stderr
    result = run("create", "x", "--project", "birds", "--label", "category", "--filter", "colour=red",
                 "--out", tmp_path / "b")
    assert result.exit_code == 2 and "unknown filter 'colour'" in result.stderr
    result = run("create", "x", "--project", "nowhere", "--out", tmp_path / "c")
    assert result.exit_code == 2 and "unknown project 'nowhere'" in result.stderr
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep.txt").write_text("mine")
    result = run("create", "x", "--project", "birds", "--label", "category", "--out", tmp_path / "d")
    assert result.exit_code == 2 and "not empty" in result.stderr and (tmp_path / "d" / "keep.txt").read_text() == "mine"
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    result = run("score", tmp_path / "nothing.csv", "--datathon", tmp_path / "d", "--name", "t")
    assert result.exit_code == 2 and "not a datathon folder" in result.stderr
