"""Split labelled rows into a training and a test part so that no person and no day is on both
sides: a model cannot score by recognising a contributor's camera, garden or habits, nor the
weather of a day, that it saw in training.

Two ways:

* ``contributor+time`` (default): each contributor and each day gets a side. Random contributors
  (fixed by the seed) start on the test side; then, in turn, the days most of whose rows are test
  contributors' go to the test side, and the contributors most of whose rows fall on test days,
  each time as many as hold ``test_share`` of the rows, until nothing changes. A row whose
  contributor and day ended on different sides is dropped.
* ``time``: the latest days go to the test side, as few as hold ``test_share`` of the rows once
  cleaned (a test for a model used on what comes next). Clean-up: a contributor with rows on
  both sides keeps only the side where they have more, then a day on both sides likewise.

Dropping rows never puts anyone or any day on a second side, so either way the result holds
both promises. Test rows of a class the training part lacks are dropped too (no model could
learn it). Every dropped row is counted by reason. How many rows are lost depends on how
contributors and days mix: in a project where everyone comes every day nothing can be split so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

SPLITS = ("contributor+time", "time")
TRAIN, TEST = "train", "test"


class SplitError(ValueError):
    """The rows cannot be split as asked; the message says why."""


@dataclass
class Split:
    """Which side each kept row is on (``side``: index of the input frame -> ``train``/``test``)
    and how many rows were dropped for each reason."""

    side: pd.Series
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def train_index(self) -> pd.Index:
        return self.side.index[self.side == TRAIN]

    @property
    def test_index(self) -> pd.Index:
        return self.side.index[self.side == TEST]


def split_rows(frame: pd.DataFrame, *, label: str = "label", person: str = "contributor_id", day: str = "day",
               test_share: float = 0.2, how: str = "contributor+time", seed: int = 0) -> Split:
    """Assign each row of ``frame`` (columns ``label``, ``person``, ``day``) to a side."""
    if how not in SPLITS:
        raise SplitError(f"split {how!r}: choose one of {', '.join(SPLITS)}")
    if not 0 < test_share < 1:
        raise SplitError(f"test share {test_share}: give a number between 0 and 1 (e.g. 0.2)")
    if frame[person].isna().any():
        raise SplitError("every row needs a contributor to split by person (imported rows without one are "
                         "left out before splitting)")
    if frame.empty:
        raise SplitError("no rows to split")
    if how == "contributor+time":
        side, dropped = _by_contributor(frame, person, day, test_share, seed)
    else:
        side, dropped = _latest_days(frame, person, day, test_share)
    train_labels = set(frame.loc[side.index[side == TRAIN], label])
    unseen = (side == TEST) & ~frame.loc[side.index, label].isin(train_labels)
    if unseen.any():
        dropped["class not in training part"] = int(unseen.sum())
        side = side[~unseen]
    if not (side == TEST).any() or not (side == TRAIN).any():
        raise SplitError(f"{len(frame)} rows by {frame[person].nunique()} contributors on {frame[day].nunique()} "
                         "days cannot be split with nobody and no day on both sides and both parts non-empty; "
                         "more contributors and days are needed")
    return Split(side.sort_index(), dropped)


def _by_contributor(frame: pd.DataFrame, person: str, day: str, test_share: float,
                    seed: int) -> tuple[pd.Series, dict[str, int]]:
    """Contributors and days both get a side: random contributors first, then in turn the days
    most of whose rows are test contributors', and the contributors most of whose rows are on test
    days, each time as many as make ``test_share`` of the rows, until nothing changes. A row whose
    contributor and day are on different sides is dropped."""
    rng = np.random.default_rng(seed)
    people, _ = pd.factorize(frame[person])
    days, _ = pd.factorize(frame[day])
    target = test_share * len(frame)
    person_rows, day_rows = np.bincount(people), np.bincount(days)
    tiebreak_people, tiebreak_days = rng.random(len(person_rows)), rng.random(len(day_rows))

    def pick(rows: np.ndarray, affinity: np.ndarray, tiebreak: np.ndarray) -> np.ndarray:
        order = np.lexsort((tiebreak, -affinity))
        chosen = np.zeros(len(rows), bool)
        enough = np.searchsorted(np.cumsum(rows[order]), target)  # the first prefix that reaches it
        chosen[order[: min(enough + 1, len(rows) - 1)]] = True  # at least one left to train on
        return chosen

    person_test = pick(person_rows, np.zeros(len(person_rows)), tiebreak_people)
    day_test = np.zeros(len(day_rows), bool)
    for _ in range(20):
        new_days = pick(day_rows, np.bincount(days, weights=person_test[people]) / day_rows, tiebreak_days)
        new_people = pick(person_rows, np.bincount(people, weights=new_days[days]) / person_rows, tiebreak_people)
        if (new_days == day_test).all() and (new_people == person_test).all():
            break
        day_test, person_test = new_days, new_people
    row_person, row_day = person_test[people], day_test[days]
    keep = row_person == row_day
    side = pd.Series(np.where(row_person, TEST, TRAIN), index=frame.index)[keep]
    return side, {"contributor and day on different sides": int((~keep).sum())} if not keep.all() else {}


def _clean(frame: pd.DataFrame, side: pd.Series, person: str, day: str) -> tuple[pd.Series, dict[str, int]]:
    dropped: dict[str, int] = {}
    side = _one_side_each(frame, side, person, "contributor on both sides", dropped)
    return _one_side_each(frame, side, day, "day on both sides", dropped), dropped


def _latest_days(frame: pd.DataFrame, person: str, day: str, test_share: float) -> tuple[pd.Series, dict[str, int]]:
    """The fewest latest days whose rows, once contributors seen before are dropped, make
    ``test_share`` of the kept rows (all but the first day at most)."""
    days = sorted(frame[day].unique())
    if len(days) < 2:
        return pd.Series(TRAIN, index=frame.index), {}

    def attempt(k: int) -> tuple[pd.Series, dict[str, int]]:
        side = pd.Series(np.where(frame[day] >= days[len(days) - k], TEST, TRAIN), index=frame.index)
        return _clean(frame, side, person, day)

    def enough(result: tuple[pd.Series, dict[str, int]]) -> bool:
        return bool((result[0] == TEST).sum() >= test_share * len(result[0]))

    low, high = 1, len(days) - 1  # the share grows (about) with k: the fewest days that reach it
    best = attempt(high)
    while low < high:
        middle = (low + high) // 2
        result = attempt(middle)
        if enough(result):
            high, best = middle, result
        else:
            low = middle + 1
    return best  # the result for ``high``


def _one_side_each(frame: pd.DataFrame, side: pd.Series, key: str, reason: str, dropped: dict[str, int]) -> pd.Series:
    """Rows of a ``key`` value found on both sides, dropped from the side where it has fewer
    (from the test side on a tie: the training part stays whole where it can)."""
    codes, _ = pd.factorize(frame.loc[side.index, key])
    is_test = (side == TEST).to_numpy()
    tests = np.bincount(codes, weights=is_test, minlength=codes.max() + 1)
    trains = np.bincount(codes, weights=~is_test, minlength=codes.max() + 1)
    both = (tests > 0) & (trains > 0)
    if not both.any():
        return side
    test_loses = both & (trains >= tests)
    train_loses = both & ~test_loses
    drop = np.where(is_test, test_loses[codes], train_loses[codes])
    dropped[reason] = dropped.get(reason, 0) + int(drop.sum())
    return side[~drop]
