"""video_stream: the detection pipeline against plain OpenCV, on a 720p and a 1080p video, in the
same run.

    python bench/video_stream.py [--seconds 12] [--fps 25] [--rounds 3] [--sizes 720p,1080p]
                                 [--window-s 3600] [--json PATH]

For each size, a video is written first (``tests/plugins/video_stream/synth.py``: scikit-image's
cat, astronaut and mug crossing grass and gravel, with sensor noise and a swaying branch, MP4
``mp4v``, ``--seconds`` at ``--fps``). Then, alternating in each of ``--rounds`` rounds (each
figure the median), frames per second over the whole video of:

- **decode**: ``cv2.VideoCapture.read`` of every frame (the limit);
- **decode + MOG2**: plain ``cv2.createBackgroundSubtractorMOG2`` (no shadows) on every decoded
  frame at full size, as one would write it;
- **decode + MOG2 at work size**: the same on a copy reduced to the pipeline's working width
  (320 pixels), the pipeline's own background step alone;
- **job, every frame sampled**: ``source.open_video`` + ``Pipeline.feed`` for every frame with
  species_id's real model classifying the events' crops and the face detectors looking at
  them (what a job does, but storing).

Targets: the job at least 0.8 of decode + MOG2 at work size (the stricter baseline; the ratio to
full-size MOG2 is printed too). Then:

- **a job at the default sampling** (2 frames a second; the source grabs the frames between
  samples without converting them) against the video's duration: times faster than real time;
- **a stream window**: ``--window-s`` seconds of a 2 fps stream of 1080p frames through one
  Pipeline (the video's sampled frames, cycled, at increasing frame numbers and times), events
  classified and dropped as the runner stores them: the process's resident memory at the
  start, its peak during the window (sampled every 50 frames), and the growth; plus
  tracemalloc's peak of Python and NumPy allocations. Target: growth under 256 MB.

The engine (species_id's model) runs on a temporary SQLite database and data folder.

    python bench/video_stream.py --tradeoff

prints instead the trade-off between missed animals and kept empty frames on four small test
videos (320 x 240 at 10 fps, 68 s in all: passes of a cat, a small far-away cat, a fast one, a
slow one and a person, with noise, swaying leaves, a light change and camera shake; one
video with nuisances only), for sensitivity x min_area x sample_fps, motion only (no
classifier): passes missed (no event covers the pass), events with no animal in them, and the
sampled frames that show nothing but that an event keeps, as a share of those frames.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402

from bench.species_id import start_engine  # noqa: E402

RATIO_TARGET = 0.8
GROWTH_TARGET_MB = 256
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}
MAX_PIXELS = 3840 * 2160


def write(folder: Path, size: tuple[int, int], seconds: float, fps: float) -> tuple[Path, dict[str, Any]]:
    from tests.plugins.video_stream.synth import write_video

    path = folder / f"bench-{size[1]}p.mp4"
    span = seconds / 4
    truth = write_video(path, seconds=seconds, fps=fps, size=size, noise=2.0, swaying=(0.05, 0.05, 0.15, 0.3),
                        passes=[(span * 0.3, span * 0.6, "cat", "ltr"), (span * 1.3, span * 0.6, "person", "rtl"),
                                (span * 2.3, span * 0.6, "coffee", "down"), (span * 3.3, span * 0.6, "cat", "up")])
    return path, truth


def decode(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def decode_mog2(path: Path, work_width: int | None = None) -> int:
    cap = cv2.VideoCapture(str(path))
    model = cv2.createBackgroundSubtractorMOG2(detectShadows=False)
    size = None
    n = 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        if work_width:
            if size is None:
                h, w = img.shape[:2]
                size = (work_width, round(h * work_width / w))
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        model.apply(img)
        n += 1
    cap.release()
    return n


def job(path: Path, classify: Any, sample_fps: float, counts: dict[str, int] | None = None) -> int:
    from plugins.video_stream.pipeline import DetectionSettings, Pipeline
    from plugins.video_stream.source import open_video

    with open_video(path, max_pixels=MAX_PIXELS) as source:
        pipe = Pipeline(DetectionSettings(sample_fps=sample_fps), source.info, classify)
        events = []
        for frame in source.frames(sample_fps=sample_fps):
            events += pipe.feed(frame)
        events += pipe.finish()
    if counts is not None:
        counts["events"] = len(events)
        counts["categories"] = ",".join(e.category for e in events)  # type: ignore[assignment]
    return pipe.frames_seen


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    n = fn()
    return time.perf_counter() - started, n


def compare(path: Path, classify: Any, fps: float, rounds: int) -> dict[str, Any]:
    runs: dict[str, list[float]] = {"decode": [], "mog2_full": [], "mog2_work": [], "job_all": []}
    frames: dict[str, int] = {}
    counts: dict[str, int] = {}
    steps: dict[str, Callable[[], int]] = {
        "decode": lambda: decode(path),
        "mog2_full": lambda: decode_mog2(path),
        "mog2_work": lambda: decode_mog2(path, 320),
        "job_all": lambda: job(path, classify, fps, counts),
    }
    for _ in range(rounds):
        for name, step in steps.items():
            seconds, n = timed(step)
            runs[name].append(n / seconds)
            frames[name] = n
    rates = {name: statistics.median(values) for name, values in runs.items()}
    return {"frames": frames, "fps": {k: round(v, 1) for k, v in rates.items()},
            "ratio_work": round(rates["job_all"] / rates["mog2_work"], 3),
            "ratio_full": round(rates["job_all"] / rates["mog2_full"], 3),
            "ratio_decode": round(rates["job_all"] / rates["decode"], 3), "events": counts}


def realtime(path: Path, classify: Any, duration_s: float, rounds: int) -> dict[str, Any]:
    times = [timed(lambda: job(path, classify, 2.0))[0] for _ in range(rounds)]
    seconds = statistics.median(times)
    return {"seconds": round(seconds, 3), "duration_s": duration_s, "times_real_time": round(duration_s / seconds, 1)}


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def window(path: Path, classify: Any, window_s: float) -> dict[str, Any]:
    """``window_s`` of a 2 fps stream through one Pipeline, from the video's samples cycled."""
    from types import SimpleNamespace

    from plugins.video_stream.pipeline import DetectionSettings, Pipeline
    from plugins.video_stream.source import Frame, open_video

    with open_video(path, max_pixels=MAX_PIXELS) as source:
        info = source.info
        samples = [f.image for f in source.frames(sample_fps=2.0)]
    stream = SimpleNamespace(fps=info.fps, width=info.width, height=info.height, frame_count=None)
    step = info.fps / 2.0
    total = int(window_s * 2)
    tracemalloc.start()
    start_rss = peak_rss = rss_mb()
    pipe = Pipeline(DetectionSettings(sample_fps=2.0), stream, classify)
    events = 0
    started = time.perf_counter()
    for k in range(total):
        index = round(k * step)
        image = samples[k % len(samples)].copy()   # a new frame each time, as a stream decodes it
        events += len(pipe.feed(Frame(index, index / info.fps, image)))
        if k % 50 == 0:
            peak_rss = max(peak_rss, rss_mb())
    events += len(pipe.finish())
    peak_rss = max(peak_rss, rss_mb())
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"window_s": window_s, "samples": total, "events": events, "seconds": round(time.perf_counter() - started, 1),
            "rss_start_mb": round(start_rss, 1), "rss_peak_mb": round(peak_rss, 1),
            "growth_mb": round(peak_rss - start_rss, 1), "tracemalloc_peak_mb": round(traced_peak / 2 ** 20, 1)}


TRADEOFF_VIDEOS = [
    dict(seconds=20, passes=[(2, 3, "cat", "ltr"), (8, 3, "person", "rtl"), (14, 2.5, "cat", "down")],
         noise=3.0, light_change_at=11.0, swaying=(0.04, 0.04, 0.2, 0.3), shake_at=[(6.0, 1.0)]),
    dict(seconds=16, sprite_height=0.1, passes=[(2, 4, "cat", "ltr", 0.75), (9, 4, "cat", "rtl", 0.7)],
         noise=4.0, swaying=(0.6, 0.05, 0.3, 0.35), sway_px=8),
    dict(seconds=18, sprite_height=0.3, passes=[(2, 0.8, "cat", "ltr"), (6, 7, "cat", "rtl", 0.45)],
         noise=3.0, light_change_at=15.0, light_factor=1.4, shake_at=[(4.0, 1.0)]),
    dict(seconds=14, noise=5.0, light_change_at=5.0, light_factor=1.5, swaying=(0.6, 0.1, 0.3, 0.4), sway_px=8,
         shake_at=[(9.0, 1.5)], shake_px=5),
]


def tradeoff(folder: Path) -> list[dict[str, Any]]:
    """Missed passes and kept empty frames for a grid of settings (see the module)."""
    from plugins.video_stream.classify import unclassified
    from plugins.video_stream.pipeline import DetectionSettings, Pipeline
    from tests.plugins.video_stream.synth import info_of, is_sampled, sampled_frames, write_video

    videos = []
    for n, spec in enumerate(TRADEOFF_VIDEOS):
        path = folder / f"tradeoff-{n}.mp4"
        truth = write_video(path, seed=n, **spec)  # type: ignore[arg-type]
        frames = [(i, img) for i, img in enumerate(_frames(path))]
        videos.append((path, truth, frames))
    rows = []
    for sample_fps in (1.0, 2.0, 5.0):
        for sensitivity in (0.2, 0.5, 0.8):
            for min_area in (0.0005, 0.002, 0.01):
                settings = DetectionSettings(sample_fps=sample_fps, sensitivity=sensitivity, min_area=min_area)
                planted = missed = false_events = empty = kept_empty = 0
                for path, truth, frames in videos:
                    pipe = Pipeline(settings, info_of(path), unclassified, is_human=lambda crops: False)
                    events = []
                    for frame in sampled_frames(path, sample_fps):
                        events += pipe.feed(frame)
                    events += pipe.finish()
                    shown = {f for p in truth["passes"] for f in p["boxes"]}
                    for p in truth["passes"]:
                        planted += 1
                        if not any(e.start_frame <= p["end_frame"] and p["start_frame"] <= e.end_frame
                                   and any(b["frame"] in p["boxes"] for b in e.boxes) for e in events):
                            missed += 1
                    false_events += sum(1 for e in events if not any(b["frame"] in shown for b in e.boxes))
                    samples = [i for i in range(truth["frames"]) if is_sampled(i, truth["fps"], sample_fps)]
                    nothing = [i for i in samples if i not in shown]
                    empty += len(nothing)
                    kept_empty += sum(1 for i in nothing if any(e.start_frame <= i <= e.end_frame for e in events))
                rows.append({"sample_fps": sample_fps, "sensitivity": sensitivity, "min_area": min_area,
                             "planted": planted, "missed": missed, "false_events": false_events,
                             "empty_samples": empty, "kept_empty": kept_empty,
                             "kept_empty_share": round(kept_empty / max(empty, 1), 3)})
    return rows


def _frames(path: Path) -> Any:
    cap = cv2.VideoCapture(str(path))
    while True:
        ok, img = cap.read()
        if not ok:
            break
        yield img
    cap.release()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="length of each test video")
    parser.add_argument("--fps", type=float, default=25.0, help="its frame rate")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="720p,1080p", help="from " + ",".join(SIZES))
    parser.add_argument("--window-s", type=float, default=3600.0, help="the stream window (0: skip)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--tradeoff", action="store_true", help="print the missed/empty trade-off table only")
    args = parser.parse_args()
    if args.tradeoff:
        with tempfile.TemporaryDirectory(prefix="bench-video-") as tmp:
            rows = tradeoff(Path(tmp))
        print("sample_fps | sensitivity | min_area | passes missed | events with no animal | "
              "empty samples kept")
        for r in rows:
            print(f"{r['sample_fps']:10g} | {r['sensitivity']:11g} | {r['min_area']:8g} | "
                  f"{r['missed']:>3} of {r['planted']:<3}    | {r['false_events']:>21} | "
                  f"{r['kept_empty']:>4} of {r['empty_samples']} ({100 * r['kept_empty_share']:.1f} %)")
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2))
        return 0
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]

    with tempfile.TemporaryDirectory(prefix="bench-video-") as tmp:
        folder = Path(tmp)
        engine = start_engine(folder, 16, 0)
        try:
            from plugins.video_stream import people
            from plugins.video_stream.classify import species_classifier

            classify = species_classifier(engine, {})
            print(f"video_stream bench: {platform.machine()}, {os.cpu_count()} CPUs, OpenCV {cv2.__version__} "
                  f"({cv2.getNumThreads()} threads), people: {', '.join(people.detectors())}; "
                  f"videos {args.seconds:g} s at {args.fps:g} fps, median of {args.rounds} rounds")
            results: dict[str, Any] = {"cpus": os.cpu_count(), "opencv": cv2.__version__, "sizes": {}}
            ok = True
            last = None
            for name in sizes:
                started = time.perf_counter()
                path, truth = write(folder, SIZES[name], args.seconds, args.fps)
                written = time.perf_counter() - started
                c = compare(path, classify, args.fps, args.rounds)
                r = realtime(path, classify, truth["seconds"], args.rounds)
                results["sizes"][name] = {"compare": c, "realtime": r, "written_s": round(written, 1)}
                f = c["fps"]
                verdict = "ok" if c["ratio_work"] >= RATIO_TARGET else "UNDER TARGET"
                ok = ok and c["ratio_work"] >= RATIO_TARGET
                print(f"\n{name} ({SIZES[name][0]} x {SIZES[name][1]}, {c['frames']['decode']} frames, "
                      f"{len(truth['passes'])} passes planted; written in {written:.1f} s)")
                print(f"   decode:                        {f['decode']:8.1f} frames/s")
                print(f"   decode + MOG2 (full size):     {f['mog2_full']:8.1f} frames/s")
                print(f"   decode + MOG2 (320 wide):      {f['mog2_work']:8.1f} frames/s")
                print(f"   job, every frame sampled:      {f['job_all']:8.1f} frames/s "
                      f"({c['events'].get('events')} events: {c['events'].get('categories')})")
                print(f"   ratio to MOG2 at 320 wide {c['ratio_work']:.3f} (target >= {RATIO_TARGET}): {verdict}; "
                      f"to full-size MOG2 {c['ratio_full']:.3f}; to decoding {c['ratio_decode']:.3f}")
                print(f"   job at 2 frames/s: {r['seconds']:.2f} s for {r['duration_s']:.1f} s of video, "
                      f"{r['times_real_time']:.1f} times real time")
                last = path
            if args.window_s > 0 and last is not None:
                w = window(last, classify, args.window_s)
                results["window"] = w
                verdict = "ok" if w["growth_mb"] < GROWTH_TARGET_MB else "OVER TARGET"
                ok = ok and w["growth_mb"] < GROWTH_TARGET_MB
                print(f"\nstream window: {w['window_s']:g} s at 2 frames/s ({w['samples']} frames of {sizes[-1]}, "
                      f"{w['events']} events) in {w['seconds']:.1f} s")
                print(f"   resident memory {w['rss_start_mb']:.0f} MB at the start, peak {w['rss_peak_mb']:.0f} MB: "
                      f"growth {w['growth_mb']:.1f} MB (target < {GROWTH_TARGET_MB}): {verdict}; "
                      f"tracemalloc peak {w['tracemalloc_peak_mb']:.1f} MB")
            if args.json:
                args.json.write_text(json.dumps(results, indent=2))
            return 0 if ok else 1
        finally:
            engine.close()


if __name__ == "__main__":
    sys.exit(main())
