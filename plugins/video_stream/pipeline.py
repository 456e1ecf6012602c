"""From sampled frames to events: detection (``detect.py``), tracking (``tracks.py``), people
(``people.py``) and classification (``classify.py``), checkpointable.

    pipe = Pipeline(DetectionSettings.of(project_settings), source.info, classifier)
    for frame in source.frames(sample_fps=pipe.settings.sample_fps):
        store(pipe.feed(frame))            # the events that ended with this frame
        if time_to_save: save(pipe.checkpoint())
    store(pipe.finish())

**Events.** A group of tracks (one animal, or animals passing together) becomes an event when
it ends, if at least one of its tracks counts (seen in ``min_hits`` samples and travelled; see
tracks.py). Its best views (largest, clearest, whole) give up to ``keyframes`` keyframes and the
crops that are looked at: a face in a crop (people.py) makes it ``human`` (never classified);
otherwise species_id's model ranks the crops together (mean score per class), and an event
whose best class is a vehicle is a ``vehicle``, else an ``animal`` with the organisms among its
top-k (possibly none: an unknown moving thing). With ``classes_of_interest``, animal events
none of whose top-k is one of them (scientific name or label, any case) are dropped; humans
and vehicles are always kept. Empty stretches give nothing.

**Checkpoints.** ``checkpoint()`` is plain JSON: the tracker (open tracks, their boxes and best
views' frame numbers), the next event's ``seq``, the samples seen, ``next_frame`` (the first
frame not yet processed) and ``read_from``, the frame a resumed job must start reading at.
MOG2's background model cannot be saved, so a resumed pipeline re-learns it: frames from
``warm_from`` (``warmup_s`` before ``next_frame``) up to ``next_frame`` go through the detector
again without being tracked; frames before that are only looked at for the open tracks' best
views, whose images a checkpoint cannot hold (``read_from`` is early enough for them). Frames
before ``next_frame`` never give an event again, so nothing is doubled. The source must sample
on the same frames as before (frame ``i`` sampled or not whatever ``start_frame`` was).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from plugins.video_stream import people
from plugins.video_stream.classify import Classifier, combine
from plugins.video_stream.detect import MotionDetector
from plugins.video_stream.tracks import Group, Tracker

CHECKPOINT_VERSION = 1
CROP_MARGIN = 0.1      # crops for the classifier reach this share of the box beyond it on each side

# ImageNet classes (species_id's default model) that make an event a vehicle
VEHICLES = frozenset({
    "ambulance", "beach wagon", "cab", "convertible", "garbage truck", "go-kart", "jeep", "limousine",
    "minivan", "Model T", "moped", "motor scooter", "mountain bike", "moving van", "passenger car", "pickup",
    "police van", "race car", "recreational vehicle", "school bus", "snowmobile", "sports car", "tow truck",
    "tractor", "trailer truck", "trolleybus", "bicycle-built-for-two", "tricycle", "forklift", "fire engine",
    "half track", "minibus", "amphibian", "golfcart", "harvester", "motorboat", "speedboat", "canoe",
})


@dataclass(frozen=True)
class DetectionSettings:
    """What detection is tuned by. The first seven are the project's settings (registry.yaml);
    the others are for tests, the benchmark and operators."""

    sample_fps: float = 2.0
    roi: tuple[float, float, float, float] | None = None
    min_area: float = 0.002
    sensitivity: float = 0.5
    top_k: int = 3
    classes_of_interest: tuple[str, ...] = ()
    model: str | None = None
    work_width: int = 320          # frames are looked at this wide
    history_s: float = 30.0        # the background model's memory
    warmup_s: float = 30.0         # background re-learnt over this much video when a job resumes
    max_gap_s: float = 2.0         # a track unseen this long has ended
    min_hits: int = 2              # samples a track must be seen in
    min_travel: float = 0.2        # how far it must go (share of its size)
    max_event_s: float = 600.0     # longer presences are cut into several events
    keyframes: int = 3             # best views kept per event

    @classmethod
    def of(cls, settings: dict[str, Any]) -> "DetectionSettings":
        """From a project's video_stream settings (unknown keys ignored, None: the default)."""
        known = {k: v for k, v in settings.items() if k in cls.__dataclass_fields__ and v is not None}
        if "roi" in known:
            known["roi"] = tuple(float(v) for v in known["roi"])
        if "classes_of_interest" in known:
            known["classes_of_interest"] = tuple(str(v) for v in known["classes_of_interest"])
        return cls(**known)


@dataclass
class Event:
    """One pass: a track (or tracks passing together), classified."""

    seq: int
    start_frame: int
    end_frame: int
    start_s: float
    end_s: float
    category: str                      # animal, human, vehicle
    top_k: list[dict[str, Any]]        # [{label, scientific_name, taxon_id, score}]; [] for humans
    count: int                         # most individuals seen at once
    boxes: list[dict[str, Any]]        # [{frame, t, bbox: [x, y, w, h] relative, conf}]
    keyframes: list[tuple[int, float, np.ndarray]] = field(default_factory=list)


@dataclass
class _Pending:
    group: Group
    counting: list[Any]
    crops: list[np.ndarray]
    keyframes: list[tuple[int, float, np.ndarray]]
    human: bool = False


class Pipeline:
    """Sampled frames in, events out (see the module)."""

    def __init__(self, settings: DetectionSettings, info: Any, classify: Classifier,
                 checkpoint: dict[str, Any] | None = None,
                 is_human: Callable[[Sequence[np.ndarray]], bool] = people.is_human):
        self.settings = settings
        self.info = info
        self.classify = classify
        self.is_human = is_human
        self.detector = MotionDetector(
            width=int(info.width), height=int(info.height), sample_fps=settings.sample_fps,
            sensitivity=settings.sensitivity, min_area=settings.min_area, roi=settings.roi,
            work_width=settings.work_width, history_s=settings.history_s)
        self.tracker = Tracker(max_gap_s=settings.max_gap_s, min_hits=settings.min_hits,
                               min_travel=settings.min_travel, keep=settings.keyframes,
                               max_event_s=settings.max_event_s)
        self.frames_seen = 0
        self.next_seq = 1
        self.next_frame = 0
        self._warm_from = 0
        self._wanted: set[int] = set()
        self._images: dict[int, np.ndarray] = {}
        if checkpoint:
            if int(checkpoint.get("version", 0)) != CHECKPOINT_VERSION:
                raise ValueError(f"checkpoint version {checkpoint.get('version')!r} is not {CHECKPOINT_VERSION}")
            self.tracker.restore(checkpoint["tracker"])
            self.frames_seen = int(checkpoint["frames_seen"])
            self.next_seq = int(checkpoint["next_seq"])
            self.next_frame = int(checkpoint["next_frame"])
            self._warm_from = int(checkpoint["warm_from"])
            self._wanted = self.tracker.candidate_frames()

    # -- frames in, events out ----------------------------------------------------------------

    def feed(self, frame: Any) -> list[Event]:
        """Process one sampled frame; the events that ended with it."""
        if frame.index < self.next_frame:      # resuming: re-learn the background, fetch best views
            if frame.index >= self._warm_from:
                self.detector.detect(frame.image)
            if frame.index in self._wanted:
                self._images[frame.index] = frame.image
            return []
        regions = self.detector.detect(frame.image)
        self.frames_seen += 1
        self.next_frame = frame.index + 1
        ended = self.tracker.update(frame.index, frame.t, regions)
        if frame.index in self.tracker.candidate_frames():
            self._images[frame.index] = frame.image
        events = self._events(ended) if ended else []
        if ended:
            self._drop_unused_images()
        return events

    def finish(self) -> list[Event]:
        """The events still open at the end of the video."""
        events = self._events(self.tracker.finish())
        self._images.clear()
        return events

    def checkpoint(self) -> dict[str, Any]:
        """Plain JSON that ``Pipeline(..., checkpoint=)`` resumes from (see the module); the
        source is then read from ``checkpoint["read_from"]``."""
        warm = int(round(self.settings.warmup_s * float(self.info.fps or self.settings.sample_fps)))
        warm_from = max(0, self.next_frame - warm)
        read_from = min([warm_from, *self.tracker.candidate_frames()])
        return {"version": CHECKPOINT_VERSION, "next_frame": self.next_frame, "read_from": read_from,
                "warm_from": warm_from, "frames_seen": self.frames_seen, "next_seq": self.next_seq,
                "tracker": self.tracker.state(), "detector": self.detector.state()}

    # -- events ---------------------------------------------------------------------------------

    def _drop_unused_images(self) -> None:
        keep = self.tracker.candidate_frames()
        for index in [i for i in self._images if i not in keep]:
            del self._images[index]

    def _crop(self, image: np.ndarray, bbox: Sequence[float]) -> np.ndarray:
        h, w = image.shape[:2]
        x, y, bw, bh = bbox
        mx, my = bw * CROP_MARGIN, bh * CROP_MARGIN
        x0, y0 = max(0, int((x - mx) * w)), max(0, int((y - my) * h))
        x1, y1 = min(w, int(np.ceil((x + bw + mx) * w))), min(h, int(np.ceil((y + bh + my) * h)))
        return image[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]

    def _pending(self, group: Group) -> _Pending | None:
        counting = [tr for tr in group.tracks if self.tracker.counts(tr)]
        if not counting:
            return None
        best = sorted(((c, tr) for tr in counting for c in tr.candidates), key=lambda p: (-p[0].score, p[0].frame))
        crops, keyframes, seen = [], [], set()
        for cand, _ in best[: self.settings.keyframes]:
            image = self._images.get(cand.frame)
            if image is None:
                continue
            crops.append(self._crop(image, cand.bbox))
            if cand.frame not in seen:
                seen.add(cand.frame)
                keyframes.append((cand.frame, cand.t, image))
        return _Pending(group, counting, crops, keyframes)

    def _events(self, groups: list[Group]) -> list[Event]:
        pending = [p for p in (self._pending(g) for g in groups) if p is not None]
        for p in pending:
            p.human = bool(p.crops) and self.is_human(p.crops)
        asked = [p for p in pending if not p.human and p.crops]
        rows = self.classify([c for p in asked for c in p.crops]) if asked else []
        ranked: dict[int, list[dict[str, Any]]] = {}
        at = 0
        for p in asked:
            ranked[id(p)] = combine(rows[at: at + len(p.crops)], max(self.settings.top_k, 1) + 1)
            at += len(p.crops)
        events = []
        for p in pending:
            category, top = self._category(p.human, ranked.get(id(p), []))
            if category == "animal" and self.settings.classes_of_interest and not self._of_interest(top):
                continue
            events.append(self._event(p, category, top))
        return events

    def _category(self, human: bool, top: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
        if human:
            return "human", []
        if top and top[0].get("scientific_name") is None and top[0].get("label") in VEHICLES:
            return "vehicle", []
        return "animal", [s for s in top if s.get("scientific_name")][: self.settings.top_k]

    def _of_interest(self, top: list[dict[str, Any]]) -> bool:
        wanted = {c.casefold() for c in self.settings.classes_of_interest}
        return any((s.get("scientific_name") or "").casefold() in wanted or (s.get("label") or "").casefold() in wanted
                   for s in top)

    def _event(self, p: _Pending, category: str, top: list[dict[str, Any]]) -> Event:
        sightings = sorted((s for tr in p.counting for s in tr.sightings), key=lambda s: (s.frame, s.bbox))
        per_frame: dict[int, int] = {}
        for s in sightings:
            per_frame[s.frame] = per_frame.get(s.frame, 0) + 1
        first, last = sightings[0], sightings[-1]
        event = Event(self.next_seq, first.frame, last.frame, first.t, last.t, category, top,
                      max(per_frame.values()),
                      [{"frame": s.frame, "t": s.t, "bbox": list(s.bbox), "conf": s.conf} for s in sightings],
                      sorted(p.keyframes, key=lambda k: k[0]))
        self.next_seq += 1
        return event
