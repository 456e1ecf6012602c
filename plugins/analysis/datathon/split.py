"""Split labelled rows into a training and a test part so that no person and no day is on both
sides: a model cannot score by recognising a contributor's camera, garden or habits, nor the
weather of a day, that it saw in training.

Two ways to start, then the same clean-up:

* ``contributor+time`` (default): contributors, in a random order fixed by the seed, go to the
  test part until it holds ``test_share`` of the rows; the rest train.
* ``time``: the latest days go to the test part, as few as make ``test_share`` of the rows
  once the clean-up below is done (a test for a model used on what comes next).

Clean-up: a contributor with rows on both sides keeps only the side where they have more rows
(``time`` only: the other way cannot make one), then a day with rows on both sides keeps only the
side with more rows that day. Dropping rows never puts anyone or any day on a second side, so
the result holds both promises. Test rows of a class the training part lacks are dropped too (no
model could learn it). Every dropped row is counted by reason.
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
        side, dropped = _clean(frame, _by_contributor(frame, person, test_share, seed), person, day)
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


def _by_contributor(frame: pd.DataFrame, person: str, test_share: float, seed: int) -> pd.Series:
    counts = frame.groupby(person, sort=True).size()
    order = np.random.default_rng(seed).permutation(len(counts))
    target, taken, test_people = test_share * len(frame), 0, set()
    for position in order:
        if taken >= target:
            break
        test_people.add(counts.index[position])
        taken += int(counts.iloc[position])
    if len(test_people) == len(counts) and len(counts) > 1:  # leave someone to train on
        test_people.discard(counts.index[order[len(order) - 1]])
    return pd.Series(np.where(frame[person].isin(test_people), TEST, TRAIN), index=frame.index)


def _clean(frame: pd.DataFrame, side: pd.Series, person: str, day: str) -> tuple[pd.Series, dict[str, int]]:
    dropped: dict[str, int] = {}
    side = _one_side_each(frame, side, person, "contributor on both sides", dropped)
    return _one_side_each(frame, side, day, "day on both sides", dropped), dropped


def _latest_days(frame: pd.DataFrame, person: str, day: str, test_share: float) -> tuple[pd.Series, dict[str, int]]:
    """The fewest latest days whose rows, once contributors seen before are dropped, make
    ``test_share`` of the kept rows (all but the first day at most)."""
    days = sorted(frame[day].unique())
    best: tuple[pd.Series, dict[str, int]] | None = None
    for k in range(1, len(days)):
        first_test_day = days[len(days) - k]
        side = pd.Series(np.where(frame[day] >= first_test_day, TEST, TRAIN), index=frame.index)
        best = _clean(frame, side, person, day)
        if (best[0] == TEST).sum() >= test_share * len(best[0]):
            break
    return best if best is not None else (pd.Series(TRAIN, index=frame.index), {})


def _one_side_each(frame: pd.DataFrame, side: pd.Series, key: str, reason: str, dropped: dict[str, int]) -> pd.Series:
    """Rows of a ``key`` value found on both sides, dropped from the side where it has fewer
    (from the test side on a tie: the training part stays whole where it can)."""
    keys = frame.loc[side.index, key]
    table = pd.crosstab(keys, side)
    for column in (TRAIN, TEST):
        if column not in table:
            table[column] = 0
    both = table[(table[TRAIN] > 0) & (table[TEST] > 0)]
    if both.empty:
        return side
    losing = pd.Series(np.where(both[TRAIN] >= both[TEST], TEST, TRAIN), index=both.index)
    drop = keys.isin(losing.index) & (side == keys.map(losing))
    dropped[reason] = dropped.get(reason, 0) + int(drop.sum())
    return side[~drop]
