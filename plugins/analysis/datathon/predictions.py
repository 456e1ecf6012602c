"""A participant's predictions file, read and checked before anything is scored.

The format (also in every datathon's data card): a CSV with a header line and one line per
test row, ``id`` as in test.csv, then either

* ``label``, and optionally ``score`` (the model's confidence in that label, 0 to 1); or
* ``label_1`` ... ``label_k`` (k at most 5, best first; later ones may be empty), and
  optionally ``score_1`` ... ``score_k``.

Labels are written exactly as the data card's classes. Every problem is reported, with its line
number, and a file with any problem is not scored.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

MAX_LABELS = 5
MAX_LISTED = 20
"""Problems listed one by one; more are counted."""
_RANKED = re.compile(r"^(label|score)_([1-9][0-9]*)$")


@dataclass(frozen=True)
class Problem:
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line is not None else self.message


class SubmissionError(ValueError):
    """The predictions file cannot be scored; ``problems`` lists why, line by line."""

    def __init__(self, path: str, problems: list[Problem]):
        self.path, self.problems = path, problems
        shown = [f"  {p}" for p in problems[:MAX_LISTED]]
        if len(problems) > MAX_LISTED:
            shown.append(f"  ... and {len(problems) - MAX_LISTED} more problems")
        super().__init__(f"{path}: {len(problems)} problem{'s' if len(problems) != 1 else ''}, "
                         "nothing was scored:\n" + "\n".join(shown))


def _columns(header: list[str]) -> tuple[list[int], list[int | None], list[Problem]]:
    """Positions of label_1..k and of their scores in ``header``, or the problems with it."""
    names = [h.strip() for h in header]
    problems = []
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(Problem(1, f"column {name!r} appears more than once"))
    if "id" not in names:
        problems.append(Problem(1, "no 'id' column (the header must start like: id,label or id,label_1,...)"))
    ranked = {m.group(1, 2): i for i, n in enumerate(names) if (m := _RANKED.match(n))}
    if "label" in names:
        if any(kind == "label" for kind, _ in ranked):
            problems.append(Problem(1, "give either 'label' or 'label_1'...'label_5', not both"))
        labels, scores = [names.index("label")], [names.index("score") if "score" in names else None]
    else:
        k = 0
        while ("label", str(k + 1)) in ranked:
            k += 1
        if k == 0:
            problems.append(Problem(1, "no label column: name it 'label', or 'label_1' ... 'label_5'"))
        extra = sorted(int(n) for kind, n in ranked if kind == "label" and int(n) > k)
        if extra:
            problems.append(Problem(1, f"'label_{extra[0]}' without 'label_{k + 1}': number them from 1 without gaps"))
        if k > MAX_LABELS:
            problems.append(Problem(1, f"at most {MAX_LABELS} labels a row (label_1 ... label_{MAX_LABELS})"))
        labels = [ranked[("label", str(i))] for i in range(1, k + 1)]
        scores = [ranked.get(("score", str(i))) for i in range(1, k + 1)]
        if any(s is not None for s in scores) and any(s is None for s in scores):
            problems.append(Problem(1, "give a score for every label column (score_1 ... score_k) or none"))
    known = {"id", "label", "score"} | {f"{kind}_{n}" for kind, n in ranked}
    for name in names:
        if name not in known:
            problems.append(Problem(1, f"unknown column {name!r} (columns: id, label[_k], score[_k])"))
    return labels, scores, problems


def read_predictions(path: Path | str, ids: list[str], classes: list[str]) -> pd.DataFrame:
    """The predictions in ``path`` for the test rows ``ids``: a frame indexed by id, in the
    order of ``ids``, with ``label_1``..``label_5`` (NA where not given) and ``score`` (the
    confidence in label_1, NA when none was given). SubmissionError lists every problem."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise SubmissionError(str(path), [Problem(None, f"cannot read the file: {exc.strerror or exc}")]) from None
    except UnicodeDecodeError as exc:
        raise SubmissionError(str(path), [Problem(None, f"not UTF-8 text (byte {exc.start}); save the CSV as UTF-8")]) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise SubmissionError(str(path), [Problem(1, f"malformed CSV: {exc}")]) from None
    if not header or not "".join(header).strip():
        raise SubmissionError(str(path), [Problem(1, "the file is empty: expected a header line id,label,...")])
    label_at, score_at, problems = _columns(header)
    if problems:
        raise SubmissionError(str(path), problems)
    id_at = [h.strip() for h in header].index("id")
    wanted, known = set(ids), set(classes)
    folded = {c.casefold(): c for c in classes}
    seen: dict[str, int] = {}
    rows: dict[str, dict[str, object]] = {}
    line = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(Problem(reader.line_num, f"malformed CSV: {exc}"))
            break
        line = reader.line_num
        if not cells or not "".join(cells).strip():
            continue
        if len(cells) != len(header):
            problems.append(Problem(line, f"{len(cells)} cells, the header has {len(header)}"))
            continue
        row_id = cells[id_at].strip()
        if row_id in seen:
            problems.append(Problem(line, f"id {row_id!r} again (first on line {seen[row_id]})"))
            continue
        seen[row_id] = line
        if row_id not in wanted:
            problems.append(Problem(line, f"unknown id {row_id!r}: not a row of test.csv"))
            continue
        labels = [cells[i].strip() or None for i in label_at]
        if labels[0] is None:
            problems.append(Problem(line, "no label"))
        for label in filter(None, labels):
            if label not in known:
                hint = f" (did you mean {folded[label.casefold()]!r}?)" if label.casefold() in folded else ""
                problems.append(Problem(line, f"unknown label {label!r}{hint}: labels are the data card's classes"))
        given = [label for label in labels if label]
        if len(set(given)) != len(given):
            problems.append(Problem(line, "the same label twice in one row"))
        score = None
        for position, at in enumerate(score_at):
            if at is None or not cells[at].strip():
                continue
            try:
                value = float(cells[at])
            except ValueError:
                problems.append(Problem(line, f"score {cells[at].strip()!r} is not a number"))
                continue
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                problems.append(Problem(line, f"score {cells[at].strip()} is outside [0, 1]"))
            elif position == 0:
                score = value
        rows[row_id] = {**{f"label_{i + 1}": label for i, label in enumerate(labels)}, "score": score}
    missing = [i for i in ids if i not in seen]
    if missing:
        listed = ", ".join(missing[:10]) + (f" ... ({len(missing) - 10} more)" if len(missing) > 10 else "")
        problems.append(Problem(None, f"{len(missing)} test {'ids have' if len(missing) > 1 else 'id has'} no "
                                      f"prediction: {listed}"))
    if problems:
        raise SubmissionError(str(path), sorted(problems, key=lambda p: (p.line is None, p.line or 0)))
    return predictions_frame(ids, rows)


def predictions_frame(ids: list[str], rows: dict[str, dict[str, object]]) -> pd.DataFrame:
    """Predictions as the scorer takes them (see :func:`read_predictions`); an id without a row
    has no label (it counts as wrong)."""
    frame = pd.DataFrame.from_dict(rows, orient="index").reindex(ids)
    for i in range(1, MAX_LABELS + 1):
        column = f"label_{i}"
        frame[column] = frame[column].astype("string") if column in frame else pd.array([pd.NA] * len(frame), "string")
    frame["score"] = frame["score"].astype("Float64") if "score" in frame else pd.array([pd.NA] * len(frame), "Float64")
    frame.index.name = "id"
    return frame[[f"label_{i}" for i in range(1, MAX_LABELS + 1)] + ["score"]]


def write_predictions(frame: pd.DataFrame, path: Path) -> None:
    """``frame`` (as :func:`predictions_frame` makes it) as a submission file in this format:
    id, label_1..label_5, score_1 (the others empty)."""
    out = frame[[f"label_{i}" for i in range(1, MAX_LABELS + 1)]].copy()
    out["score_1"] = frame["score"]
    for i in range(2, MAX_LABELS + 1):
        out[f"score_{i}"] = pd.NA
    out.to_csv(path, index_label="id")
