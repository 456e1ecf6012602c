"""species_id's real model on the pipeline's crops (an engine with species_id, its default
model built once per session by the conftest), and the people detectors on real photos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from plugins.video_stream import people
from plugins.video_stream.classify import combine, species_classifier
from plugins.video_stream.pipeline import DetectionSettings
from tests.plugins.video_stream.synth import photo, write_video
from tests.plugins.video_stream.test_pipeline import run


def test_the_cat_passing_is_felis_catus_with_its_taxon(engine: Any, tmp_path: Path) -> None:
    from core.taxonomy import ids_by_name, load_defaults

    path = tmp_path / "cat.mp4"
    write_video(path, seconds=6, size=(640, 360), passes=[(1, 3, "cat", "rtl")])
    # no taxonomy yet: the suggestion has no taxon
    events, _ = run(path, DetectionSettings(sample_fps=2), classify=species_classifier(engine, {}))
    assert events[0].top_k[0]["scientific_name"] == "Felis catus" and events[0].top_k[0]["taxon_id"] is None
    load_defaults(engine)  # species_id's label file as the engine's taxa
    classify = species_classifier(engine, {"top_k": 3})
    events, _ = run(path, DetectionSettings(sample_fps=2, top_k=3), classify=classify)
    assert len(events) == 1
    top = events[0].top_k
    assert events[0].category == "animal" and 1 <= len(top) <= 3
    assert top[0]["scientific_name"] == "Felis catus" and top[0]["label"] == "Felis catus"
    assert top[0]["score"] > 0.3 and top == sorted(top, key=lambda s: -s["score"])
    assert top[0]["taxon_id"] == ids_by_name(engine, ["Felis catus"])["Felis catus"]


def test_crops_are_ranked_in_one_batch_and_things_are_not_taxa(engine: Any) -> None:
    classify = species_classifier(engine, {"top_k": 2})
    cat = photo("cat")
    mug = photo("coffee")
    rows = classify([cat, mug, cv2.flip(cat, 1)])
    assert len(rows) == 3
    assert rows[0][0]["scientific_name"] == rows[2][0]["scientific_name"] == "Felis catus"
    assert len(rows[0]) <= 2
    # a cup of coffee is no organism: its one class is named, with no scientific name or taxon
    assert rows[1] == [] or (rows[1][0]["scientific_name"] is None and rows[1][0]["taxon_id"] is None)
    assert classify([]) == []


def test_an_unknown_model_is_refused(engine: Any) -> None:
    with pytest.raises(Exception, match="no-such-model"):
        species_classifier(engine, {"model": "no-such-model"})


def test_combine_averages_over_the_crops() -> None:
    cat = {"label": "Felis catus", "scientific_name": "Felis catus", "taxon_id": 1}
    lynx = {"label": "lynx", "scientific_name": "Lynx lynx", "taxon_id": 2}
    rows = [[{**cat, "score": 0.6}, {**lynx, "score": 0.3}], [{**lynx, "score": 0.9}], []]
    assert combine(rows, 5) == [{**lynx, "score": 0.4}, {**cat, "score": 0.2}]
    assert combine(rows, 1) == [{**lynx, "score": 0.4}]
    assert combine([], 3) == []


def test_faces_are_found_on_people_not_on_the_cat_or_the_mug() -> None:
    for size in (96, 140, 300):
        person, cat, mug = (cv2.resize(p, (int(p.shape[1] * size / p.shape[0]), size), interpolation=cv2.INTER_AREA)
                            for p in (photo("person"), photo("cat"), photo("coffee")))
        assert people.is_human([person]), size
        assert not people.is_human([cat]) and not people.is_human([mug]), size
    grass = np.full((120, 120, 3), (40, 120, 60), np.uint8)
    assert people.find_faces(grass) == [] and people.find_faces(grass[:5, :5]) == []
    assert "skimage LBP face cascade" in people.detectors()
