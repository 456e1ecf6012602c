"""The motion detector and the tracker on their own: frames made from real photos (synth.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from plugins.video_stream.detect import MotionDetector, Region, var_threshold, work_size
from plugins.video_stream.tracks import Tracker, iou
from tests.plugins.video_stream.synth import read_frames, write_video


def test_sensitivity_maps_to_mog2_thresholds() -> None:
    values = [var_threshold(s / 10) for s in range(11)]
    assert values == sorted(values, reverse=True)
    assert values[0] == 64 and round(values[-1]) == 6 and 16 < var_threshold(0.5) < 24
    assert var_threshold(-1) == 64 and var_threshold(2) == values[-1]
    assert work_size(1920, 1080, 320) == (320, 180) and work_size(200, 100, 320) == (200, 100)


def test_a_passing_cat_is_found_where_it_is(tmp_path: Path) -> None:
    path = tmp_path / "cat.mp4"
    truth = write_video(path, seconds=5, size=(640, 360), passes=[(1, 3, "cat", "ltr")])
    frames = read_frames(path)
    detector = MotionDetector(width=640, height=360, sample_fps=10)
    boxes = truth["passes"][0]["boxes"]
    found = {}
    for index, frame in enumerate(frames):
        regions = detector.detect(frame)
        if regions:
            found[index] = regions
    assert set(found) <= set(boxes)                                  # nothing before or after it
    inside = [i for i, b in boxes.items() if b[0] > 0.01 and b[0] + b[2] < 0.99]  # wholly in view
    assert inside and all(len(found.get(i, [])) == 1 for i in inside)
    assert all(iou(found[i][0].bbox, boxes[i]) > 0.8 for i in inside)
    assert all(0 < r.fill <= 1 for rs in found.values() for r in rs)
    assert all(found[i][0].area > 0.05 for i in inside)             # a 0.27 x 0.4 photo, mostly moving


def test_a_light_change_and_a_shake_are_recognised(tmp_path: Path) -> None:
    path = tmp_path / "nuisance.mp4"
    write_video(path, seconds=6, noise=4.0, light_change_at=2.0, light_factor=0.5, shake_at=[(4.0, 1.0)])
    detector = MotionDetector(width=320, height=240, sample_fps=10)
    why, found = [], []
    for frame in read_frames(path):
        found.append(detector.detect(frame))
        why.append(detector.skipped)
    assert why[0] == "start" and why[20] == "light"          # the light changed at frame 20
    assert found[:40] == [[]] * 40                             # nothing before the shake
    assert set(why[31:40]) == {""} and detector.shaken >= 4    # looked at; shaken frames put back
    assert found[51:] == [[]] * len(found[51:])                # nothing after it
    # the shake, in this dark and noisy picture, leaves a few pieces of gravel, in place: no event
    from plugins.video_stream.pipeline import DetectionSettings
    from tests.plugins.video_stream.test_pipeline import run

    assert run(path, DetectionSettings(sample_fps=10))[0] == []


def test_the_region_of_interest_limits_what_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "roi.mp4"
    write_video(path, seconds=4, sprite_height=0.3, passes=[(1, 2, "cat", "ltr", 0.25)])
    frames = read_frames(path)
    everywhere = MotionDetector(width=320, height=240, sample_fps=10)
    below = MotionDetector(width=320, height=240, sample_fps=10, roi=(0.0, 0.5, 1.0, 0.5))
    assert sum(len(everywhere.detect(f)) for f in frames) > 10
    assert sum(len(below.detect(f)) for f in frames) == 0


def region(x: float, y: float, w: float = 0.1, h: float = 0.1) -> Region:
    return Region((x, y, w, h), w * h * 0.8, 0.8)


def test_tracks_join_pieces_bridge_gaps_and_end() -> None:
    tracker = Tracker(max_gap_s=1.0)
    t = 0.0
    ended = []
    for step in range(10):                     # moving right 0.05 a sample, missing at steps 4 and 5
        t = step * 0.2
        regions = [] if step in (4, 5) else [region(0.1 + 0.05 * step, 0.4)]
        if step == 7:                          # and in two pieces once
            regions = [region(0.45, 0.4, 0.05), region(0.51, 0.4, 0.04)]
        ended += tracker.update(step * 2, t, regions)
    assert ended == []
    for step in range(10, 17):
        ended += tracker.update(step * 2, step * 0.2, [])
    assert len(ended) == 1 and len(ended[0].tracks) == 1
    track = ended[0].tracks[0]
    assert len(track.sightings) == 8 and tracker.counts(track)
    assert track.sightings[5].bbox == [0.45, 0.4, 0.1, 0.1]   # the two pieces as one box
    state = tracker.state()
    assert state["tracks"] == [] and state["next_track"] == 2


def test_something_swinging_in_place_does_not_count() -> None:
    tracker = Tracker()
    for step in range(12):
        tracker.update(step, step * 0.5, [region(0.5 + 0.02 * np.sin(step * 2.0), 0.3, 0.03, 0.3)])
    (group,) = tracker.finish()
    assert len(group.tracks) == 1 and not tracker.counts(group.tracks[0])
