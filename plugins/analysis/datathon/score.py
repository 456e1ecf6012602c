"""The scores of a submission against the organiser's labels.

* ``top1``: share of test rows whose first label is right;
* ``top5``: share whose right label is among the (up to five) labels given;
* ``macro_f1``: the F1 score (harmonic mean of precision and recall) of each class of the test
  part, averaged with equal weight per class, so rare classes count as much as common ones;
* ``per_class_recall``: for each class of the test part, the share of its rows labelled right;
* ``ece`` (expected calibration error, only when scores are given): rows are put in ten bins of
  equal width by the score of their first label; ECE is the mean, weighted by the bins' sizes,
  of |accuracy - mean score| per bin. 0 is perfectly calibrated: of the rows a model gives 0.8,
  80% are right.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

ECE_BINS = 10


def score(predictions: pd.DataFrame, truth: pd.Series) -> dict[str, Any]:
    """Scores of ``predictions`` (indexed by test id: ``label_1``..``label_5``, ``score``; see
    ``predictions.read_predictions``) against ``truth`` (test id -> right label)."""
    predictions = predictions.reindex(truth.index)
    first = predictions["label_1"].astype("string")
    hit1 = (first == truth.astype("string")).fillna(False).to_numpy(bool)
    ranked = [c for c in predictions.columns if c.startswith("label_")]
    hit5 = np.zeros(len(truth), bool)
    for column in ranked:
        hit5 |= (predictions[column].astype("string") == truth.astype("string")).fillna(False).to_numpy(bool)
    classes = sorted(truth.unique())
    recall, f1 = {}, []
    for label in classes:
        actual = (truth == label).to_numpy(bool)
        predicted = (first == label).fillna(False).to_numpy(bool)
        tp = int((actual & predicted).sum())
        rec = tp / int(actual.sum())
        prec = tp / int(predicted.sum()) if predicted.any() else 0.0
        recall[label] = round(rec, 4)
        f1.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    result: dict[str, Any] = {
        "rows": len(truth),
        "top1": round(float(hit1.mean()), 4),
        "top5": round(float(hit5.mean()), 4),
        "macro_f1": round(float(np.mean(f1)), 4),
        "ece": None,
        "per_class_recall": recall,
    }
    confidence = predictions["score"].astype("Float64")
    given = confidence.notna().to_numpy(bool)
    if given.any():
        result["ece"] = round(expected_calibration_error(confidence[given].to_numpy(float), hit1[given]), 4)
        result["scored_rows"] = int(given.sum())
    return result


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE over ``bins`` equal-width bins of ``confidence`` (a score of 1.0 falls in the last)."""
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.sum() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total / len(confidence))
