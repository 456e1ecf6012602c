"""Evaluate a model on a labelled set of photos: accuracy, per-label precision and recall,
latency, a confusion matrix (PNG, drawn with OpenCV) and a JSON report.

A data set is a folder with one sub-folder per label (``cats/Felis catus/1.jpg``), or a CSV file
of ``path,label`` rows (paths relative to the CSV; a ``path,label`` header is optional).

A data set label names a model class (``espresso``) or a taxon (``Felis catus``), compared
without case and with ``_`` read as a space. A prediction is right when the model's top class
(top-1), or one of its five top classes (top-5), is one of the classes the label names. For the
confusion matrix and precision, the top class is read back as the data set label that names it,
or ``(other)``.
"""

from __future__ import annotations

import csv
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from plugins.species_id.inference import ImageError, LoadedModel, decode, run_batch

OTHER = "(other)"


class EvaluationError(ValueError):
    """The data set cannot be used; the message says why."""


@dataclass(frozen=True)
class Sample:
    path: Path
    label: str


def _norm(text: str) -> str:
    return " ".join(text.replace("_", " ").split()).casefold()


def load_dataset(path: Path) -> list[Sample]:
    path = Path(path)
    if path.is_file():
        samples = []
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for number, row in enumerate(csv.reader(handle), start=1):
                if not row or not "".join(row).strip():
                    continue
                if number == 1 and [c.strip().lower() for c in row[:2]] == ["path", "label"]:
                    continue
                if len(row) < 2 or not row[0].strip() or not row[1].strip():
                    raise EvaluationError(f"{path}: line {number}: expected 'path,label', got {row!r}")
                file = Path(row[0].strip())
                samples.append(Sample(file if file.is_absolute() else path.parent / file, row[1].strip()))
    elif path.is_dir():
        samples = [
            Sample(file, folder.name)
            for folder in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
            for file in sorted(folder.rglob("*"))
            if file.is_file() and not file.name.startswith(".")
        ]
    else:
        raise EvaluationError(f"{path}: no such folder or CSV file")
    if not samples:
        raise EvaluationError(f"{path}: no photos found (one folder per label, or a CSV of path,label)")
    return samples


def classes_of(model: LoadedModel, labels: list[str]) -> dict[str, set[int]]:
    """The model classes each data set label names; raise EvaluationError for a label it lacks."""
    by_name: dict[str, set[int]] = {}
    for known in model.labels.labels:
        for text in filter(None, (known.name, known.scientific_name)):
            by_name.setdefault(_norm(text), set()).add(known.index)
    found, missing = {}, []
    for label in labels:
        classes = by_name.get(_norm(label))
        if classes:
            found[label] = classes
        else:
            missing.append(label)
    if missing:
        raise EvaluationError(
            f"model {model.spec.name!r} has no class or taxon named {', '.join(map(repr, missing))}; "
            "name each folder (or CSV label) after one of the model's labels or scientific names"
        )
    return found


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


def evaluate(model: LoadedModel, samples: list[Sample], *, batch_size: int = 16,
             advance: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Run ``model`` over ``samples``; the report (JSON-able) with metrics and latency."""
    labels = sorted({s.label for s in samples})
    classes = classes_of(model, labels)
    columns = labels + [OTHER]
    column_of = {label: i for i, label in enumerate(labels)}
    confusion = np.zeros((len(labels), len(columns)), np.int64)
    top1 = top5 = 0
    decode_ms, preprocess_ms, inference_ms, per_image_ms, errors, predictions = [], [], [], [], [], []
    pre = model.spec.preprocessing

    def flush(batch: list[tuple[Sample, np.ndarray, float]]) -> None:
        nonlocal top1, top5
        if not batch:
            return
        tensor = np.empty((len(batch), *model.input_shape), np.float32)
        for i, (_, pixels, _) in enumerate(batch):
            started = time.perf_counter()
            model.normaliser(pixels, tensor[i])
            preprocess_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        probs = run_batch(model, tensor)
        share = (time.perf_counter() - started) * 1000 / len(batch)
        for i, (sample, _, spent) in enumerate(batch):
            inference_ms.append(share)
            per_image_ms.append(spent + preprocess_ms[-len(batch) + i] + share)
            order = np.argsort(-probs[i])[:5]
            right = classes[sample.label]
            top1 += int(order[0]) in right
            top5 += any(int(c) in right for c in order)
            predicted = next((label for label in labels if int(order[0]) in classes[label]), OTHER)
            confusion[column_of[sample.label], columns.index(predicted)] += 1
            predictions.append({"path": str(sample.path), "label": sample.label, "predicted": predicted,
                                "top_class": model.labels.labels[int(order[0])].name,
                                "score": round(float(probs[i][order[0]]), 6)})
        if advance:
            advance(len(batch))

    pending: list[tuple[Sample, np.ndarray, float]] = []
    for sample in samples:
        started = time.perf_counter()
        try:
            pixels = decode(sample.path.read_bytes(), min_side=pre.resize, name=str(sample.path))
        except (OSError, ImageError) as exc:
            errors.append({"path": str(sample.path), "label": sample.label, "error": str(exc)})
            if advance:
                advance(1)
            continue
        spent = (time.perf_counter() - started) * 1000
        decode_ms.append(spent)
        pending.append((sample, pixels, spent))
        if len(pending) == batch_size:
            flush(pending)
            pending = []
    flush(pending)

    evaluated = len(predictions)
    if not evaluated:
        raise EvaluationError("none of the photos could be read: " + "; ".join(e["error"] for e in errors[:3]))
    predicted_as = confusion.sum(axis=0)
    per_label = {}
    for label, row in zip(labels, confusion):
        hits = int(row[column_of[label]])
        support = int(row.sum())
        per_label[label] = {
            "support": support,
            "precision": round(hits / predicted_as[column_of[label]], 4) if predicted_as[column_of[label]] else 0.0,
            "recall": round(hits / support, 4) if support else 0.0,
        }
    spec = model.spec
    return {
        "model": {"name": spec.name, "version": spec.version, "licence": spec.licence},
        "images": evaluated,
        "unreadable": errors,
        "labels": labels,
        "top1": round(top1 / evaluated, 4),
        "top5": round(top5 / evaluated, 4),
        "top1_hits": top1,
        "top5_hits": top5,
        "per_label": per_label,
        "confusion": {"rows": labels, "columns": columns, "matrix": confusion.tolist()},
        "latency_ms": {
            "mean": round(statistics.fmean(per_image_ms), 2),
            "p50": round(_percentile(per_image_ms, 50), 2),
            "p95": round(_percentile(per_image_ms, 95), 2),
            "decode": round(statistics.fmean(decode_ms), 2),
            "preprocess": round(statistics.fmean(preprocess_ms), 2),
            "inference": round(statistics.fmean(inference_ms), 2),
            "batch_size": batch_size,
        },
        "predictions": predictions,
    }


# --------------------------------------------------------------------------------------------
# The confusion matrix as a PNG
# --------------------------------------------------------------------------------------------


def _short(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."  # Hershey fonts are ASCII only


def confusion_png(report: dict[str, Any]) -> bytes:
    """The confusion matrix, each cell shaded by its share of the row (recall), with counts."""
    import cv2

    rows = [_short(r) for r in report["confusion"]["rows"]]
    columns = [_short(c) for c in report["confusion"]["columns"]]
    matrix = np.asarray(report["confusion"]["matrix"], np.int64)
    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1
    cell = 46

    def width(text: str) -> int:
        return cv2.getTextSize(text, font, scale, thick)[0][0]

    model = report["model"]
    title = f"{model['name']} {model['version']}: top-1 {report['top1']:.3f}, top-5 {report['top5']:.3f}"
    caption = "rows: true label; columns: predicted; shade: share of the row"
    left = max(width(r) for r in rows) + 24
    top = max(width(c) for c in columns) + 64
    canvas_w = max(left + cell * len(columns) + 24, width(title) + 24, width(caption) + 24)
    canvas = np.full((top + cell * len(rows) + 24, canvas_w, 3), 255, np.uint8)
    cv2.putText(canvas, title, (8, 20), font, scale, (0, 0, 0), thick, cv2.LINE_AA)
    cv2.putText(canvas, caption, (8, 40), font, scale, (90, 90, 90), thick, cv2.LINE_AA)
    totals = matrix.sum(axis=1, keepdims=True).clip(min=1)
    for r, label in enumerate(rows):
        y = top + r * cell
        cv2.putText(canvas, label, (left - 12 - width(label), y + cell // 2 + 5), font, scale, (0, 0, 0), thick,
                    cv2.LINE_AA)
        for c in range(len(columns)):
            x = left + c * cell
            share = matrix[r, c] / totals[r, 0]
            shade = (255 - share * (255 - np.array([140, 60, 20]))).astype(int).tolist()  # white -> dark blue (BGR)
            cv2.rectangle(canvas, (x, y), (x + cell - 1, y + cell - 1), shade, -1)
            cv2.rectangle(canvas, (x, y), (x + cell - 1, y + cell - 1), (200, 200, 200), 1)
            text = str(int(matrix[r, c]))
            colour = (255, 255, 255) if share > 0.5 else (0, 0, 0)
            cv2.putText(canvas, text, (x + (cell - width(text)) // 2, y + cell // 2 + 5), font, scale, colour, thick,
                        cv2.LINE_AA)
    for c, label in enumerate(columns):  # column labels, written sideways
        strip = np.full((cell, width(label) + 8, 3), 255, np.uint8)
        cv2.putText(strip, label, (4, cell // 2 + 5), font, scale, (0, 0, 0), thick, cv2.LINE_AA)
        upright = cv2.rotate(strip, cv2.ROTATE_90_COUNTERCLOCKWISE)
        x, h = left + c * cell, upright.shape[0]
        canvas[top - 4 - h: top - 4, x: x + cell] = upright
    ok, buf = cv2.imencode(".png", canvas)
    if not ok:
        raise RuntimeError("OpenCV could not encode the confusion matrix")
    return buf.tobytes()


def rank_reports(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Best first: top-1 accuracy, then top-5, then the lower mean latency."""
    return sorted(reports, key=lambda r: (-r["top1"], -r["top5"], r["latency_ms"]["mean"]))


# --------------------------------------------------------------------------------------------
# A datathon's test part (observatory datathon create): the model scored as participants are
# --------------------------------------------------------------------------------------------


def _probabilities(model: LoadedModel, paths: list[Path | None], batch_size: int,
                   advance: Callable[[int], None] | None) -> list[np.ndarray | None]:
    """The model's class probabilities for each photo (None where there is none or it cannot be read)."""
    out: list[np.ndarray | None] = [None] * len(paths)
    pending: list[tuple[int, np.ndarray]] = []

    def flush() -> None:
        if pending:
            tensor = np.empty((len(pending), *model.input_shape), np.float32)
            for i, (_, pixels) in enumerate(pending):
                model.normaliser(pixels, tensor[i])
            for (position, _), probs in zip(pending, run_batch(model, tensor)):
                out[position] = probs
            if advance:
                advance(len(pending))
            pending.clear()

    for position, path in enumerate(paths):
        try:
            if path is None:
                raise OSError("no photo")
            pending.append((position, decode(path.read_bytes(), min_side=model.spec.preprocessing.resize,
                                             name=str(path))))
        except (OSError, ImageError):
            if advance:
                advance(1)
            continue
        if len(pending) == batch_size:
            flush()
    flush()
    return out


def datathon_predictions(model: LoadedModel, root: Path, *, batch_size: int = 16,
                         advance: Callable[[int], None] | None = None) -> tuple[Any, list[str], int]:
    """The model's predictions for a datathon's test part, in the participants' format (a frame
    indexed by test id: label_1..label_5 among the datathon's classes, best first, and the first
    one's probability as score); the classes the model cannot name; the rows without a readable
    photo (they get no label and count as wrong)."""
    import pandas as pd

    from plugins.analysis.datathon import layout
    from plugins.analysis.datathon.predictions import MAX_LABELS, predictions_frame

    try:
        classes = list(layout.read_settings(root)["classes"])
        test = pd.read_csv(layout.participants(root) / layout.TEST_CSV, dtype="string", keep_default_na=False)
    except (layout.DatathonError, OSError) as exc:
        raise EvaluationError(str(exc)) from None
    named: dict[int, list[str]] = {}
    for known in model.labels.labels:
        for label in classes:
            if _norm(label) in {_norm(t) for t in (known.name, known.scientific_name) if t}:
                named.setdefault(known.index, []).append(label)
    unknown = sorted(set(classes) - {label for labels in named.values() for label in labels})
    if len(unknown) == len(classes):
        raise EvaluationError(f"model {model.spec.name!r} has no class or taxon named as any of the datathon's "
                              f"classes ({', '.join(map(repr, classes[:5]))}...)")
    folder = layout.participants(root)
    paths = [folder / first if (first := media.split(";")[0]) and not first.startswith(("http:", "https:")) else None
             for media in test["media"]]
    rows: dict[str, dict[str, object]] = {}
    unread = 0
    for row_id, probs in zip(test["id"], _probabilities(model, paths, batch_size, advance)):
        if probs is None:
            unread += 1
            continue
        labels: list[str] = []
        score = None
        for index in np.argsort(-probs):
            for label in named.get(int(index), []):
                if label not in labels:
                    score = float(probs[index]) if score is None else score
                    labels.append(label)
            if len(labels) >= MAX_LABELS:
                break
        rows[row_id] = {**{f"label_{i + 1}": label for i, label in enumerate(labels[:MAX_LABELS])},
                        "score": None if score is None else min(1.0, max(0.0, round(score, 6)))}
    return predictions_frame(list(test["id"]), rows), unknown, unread
