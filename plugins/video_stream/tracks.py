"""Moving regions followed across sampled frames, so that one animal passing once is one event.

* A **track** is one individual: each sampled frame, every open track is matched to at most one
  region, greedily by overlap (IoU) with where the track should be by now (its last box moved by
  its velocity), else by the distance between centres (up to the size of the track's box, or
  ``REACH_PER_S`` of the frame for each second since it was seen, for a region of about its
  size: fast or small animals at a low sampling rate). A region next to a box already matched this frame is the same
  animal in pieces and is merged into it.
* A track ends when it has not been seen for ``max_gap_s`` (an animal behind a bush for a
  moment stays one track), when it should by now be out of the picture (it walked out: the
  next one coming in is another), or after ``max_event_s`` (a stream's animal that never leaves is cut
  into events of bounded length and memory).
* A **group** is the tracks that appeared next to one another in the same frame: animals
  passing together are one event, whose count is the most of its tracks seen in one frame.
* A track **counts** when it was seen in at least ``min_hits`` sampled frames and its box (as a
  whole, not growing or shrinking) travelled at least ``min_travel`` of its size (2.5 times that when seen only twice or for under
  a second), and, if it
  came back towards where it started, at least its own size: a swaying branch, glint or flicker
  oscillates in place and does neither.
* Each track keeps its ``keep`` best frames (the largest, clearest, whole views) as candidates
  for keyframes and for the classifier's crops; the images are held by the pipeline.

Everything here is plain data (``state``/``from_state``) so that a job can be checkpointed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from plugins.video_stream.detect import Region

Box = list[float]  # [x, y, w, h] relative to the frame
BRIEF_S = 1.0      # a track seen for less than this must travel further to count
REACH_PER_S = 0.3  # a track reaches a region of its size this far (share of the frame) a second


@dataclass
class Sighting:
    frame: int
    t: float
    bbox: Box
    conf: float


@dataclass
class Candidate:
    frame: int
    t: float
    bbox: Box
    score: float


@dataclass
class Track:
    id: int
    group: int
    sightings: list[Sighting] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    open: bool = True

    @property
    def last(self) -> Sighting:
        return self.sightings[-1]

    def predicted(self, t: float) -> Box:
        """Where the track's box should be at ``t``: its last box moved at its recent velocity
        (over its last three sightings; with fewer, where it was last seen: two jittery views of
        a branch must not send it flying)."""
        last = self.last
        if len(self.sightings) < 3:
            return list(last.bbox)
        prev = self.sightings[-3]
        dt = max(1e-6, last.t - prev.t)
        vx = (_cx(last.bbox) - _cx(prev.bbox)) / dt
        vy = (_cy(last.bbox) - _cy(prev.bbox)) / dt
        ahead = t - last.t
        x, y, w, h = last.bbox
        return [x + vx * ahead, y + vy * ahead, w, h]

    def travel(self) -> float:
        """How far the track went from where it was first seen (its box moved as a whole: see
        ``shift``), in units of the mean box size."""
        first = self.sightings[0].bbox
        return max(shift(first, s.bbox) for s in self.sightings) / self.size()

    def net(self) -> float:
        """How far the box is from where it was first seen (mean box sizes)."""
        return shift(self.sightings[0].bbox, self.last.bbox) / self.size()

    def size(self) -> float:
        return max(sum(math.hypot(s.bbox[2], s.bbox[3]) for s in self.sightings) / len(self.sightings), 1e-6)


@dataclass
class Group:
    id: int
    tracks: list[Track]


def _edge_shift(a0: float, a1: float, b0: float, b1: float) -> float:
    """How far an interval moved as a whole along one axis: where both its ends moved the same
    way, the smaller move; where they moved apart or together (a box growing or shrinking,
    as the parts of a swaying bush seen moving change), nothing. An end on the frame's border
    says nothing (the thing goes on beyond it): then the other end's move."""
    keep0 = a0 > 0.005 and b0 > 0.005
    keep1 = a1 < 0.995 and b1 < 0.995
    d0, d1 = b0 - a0, b1 - a1
    if keep0 and keep1:
        return min(abs(d0), abs(d1)) if d0 * d1 > 0 else 0.0
    if keep0:
        return abs(d0)
    if keep1:
        return abs(d1)
    return 0.0


def shift(a: Sequence[float], b: Sequence[float]) -> float:
    """How far box ``b`` is from box ``a``, counting only movement of the box as a whole."""
    return math.hypot(_edge_shift(a[0], a[0] + a[2], b[0], b[0] + b[2]),
                      _edge_shift(a[1], a[1] + a[3], b[1], b[1] + b[3]))


def _cx(b: Sequence[float]) -> float:
    return b[0] + b[2] / 2


def _cy(b: Sequence[float]) -> float:
    return b[1] + b[3] / 2


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _union(a: Sequence[float], b: Sequence[float]) -> Box:
    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
    x1, y1 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
    return [x0, y0, x1 - x0, y1 - y0]


def _outside(b: Sequence[float]) -> bool:
    """Whether a box lies wholly outside the frame."""
    return b[0] >= 1.0 or b[1] >= 1.0 or b[0] + b[2] <= 0.0 or b[1] + b[3] <= 0.0


def _near(a: Sequence[float], b: Sequence[float], margin: float) -> bool:
    """Whether the boxes touch once ``a`` is grown by ``margin`` of its size on each side."""
    mx, my = a[2] * margin, a[3] * margin
    return (a[0] - mx <= b[0] + b[2] and b[0] <= a[0] + a[2] + mx
            and a[1] - my <= b[1] + b[3] and b[1] <= a[1] + a[3] + my)


def view_score(bbox: Sequence[float], fill: float) -> float:
    """How good a view a box is: its area and how much of it moved, halved when it touches the
    frame's edge (the animal is partly out of the picture)."""
    x, y, w, h = bbox
    edge = x <= 0.005 or y <= 0.005 or x + w >= 0.995 or y + h >= 0.995
    return w * h * (0.5 + 0.5 * fill) * (0.5 if edge else 1.0)


class Tracker:
    """Tracks and groups over the sampled frames of one video (see the module)."""

    def __init__(self, *, max_gap_s: float = 2.0, min_hits: int = 2, min_travel: float = 0.2,
                 keep: int = 3, max_event_s: float = 600.0):
        self.max_gap_s = max_gap_s
        self.min_hits = min_hits
        self.min_travel = min_travel
        self.keep = keep
        self.max_event_s = max_event_s
        self.tracks: list[Track] = []     # open ones, and closed ones of groups still open
        self.next_track = 1
        self.next_group = 1

    # -- the work ---------------------------------------------------------------------------

    def update(self, frame: int, t: float, regions: Sequence[Region]) -> list[Group]:
        """Add a sampled frame's regions; return the groups that ended with it (every track
        closed), oldest first."""
        live = [tr for tr in self.tracks if tr.open]
        pairs = []
        for ti, tr in enumerate(live):
            guess = tr.predicted(t)
            if _outside(guess):          # it walked out of the picture: it has left
                continue
            reach = max(math.hypot(guess[2], guess[3]), REACH_PER_S * (t - tr.last.t), 1e-6)
            for ri, reg in enumerate(regions):
                overlap = iou(guess, reg.bbox)
                dist = math.hypot(_cx(guess) - _cx(reg.bbox), _cy(guess) - _cy(reg.bbox))
                ratio = (reg.bbox[2] * reg.bbox[3]) / max(guess[2] * guess[3], 1e-9)
                if overlap > 0.05:
                    pairs.append((1.0 + overlap, ti, ri))
                elif dist < reach and 0.25 <= ratio <= 4.0:   # not overlapping: as large, and near
                    pairs.append((1.0 - dist / reach, ti, ri))
        pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
        matched: dict[int, int] = {}      # region -> live track
        used: set[int] = set()
        for _, ti, ri in pairs:
            if ti in used or ri in matched:
                continue
            used.add(ti)
            matched[ri] = ti
        boxes: dict[int, tuple[Box, float, float]] = {}   # live track -> (box, conf, fill) this frame
        for ri, ti in matched.items():
            reg = regions[ri]
            boxes[ti] = (list(reg.bbox), reg.fill, reg.area)
        for ri, reg in enumerate(regions):
            if ri in matched:
                continue
            near = next((ti for ti, (box, _, _) in boxes.items() if _near(box, reg.bbox, 0.25)), None)
            if near is not None:                       # a piece of an animal already matched
                box, fill, area = boxes[near]
                boxes[near] = (_union(box, reg.bbox), fill, area + reg.area)
                continue
            group = self._group_near(reg.bbox, [(live[ti], box) for ti, (box, _, _) in boxes.items()])
            tr = Track(self.next_track, group if group is not None else self.next_group)
            if group is None:
                self.next_group += 1
            self.next_track += 1
            self.tracks.append(tr)
            live.append(tr)
            boxes[len(live) - 1] = (list(reg.bbox), reg.fill, reg.area)
        for ti, (box, fill, area) in boxes.items():
            tr = live[ti]
            b = [round(v, 5) for v in box]
            fill_here = min(1.0, area / max(box[2] * box[3], 1e-9))
            tr.sightings.append(Sighting(frame, round(t, 4), b, round(fill_here, 3)))
            self._offer(tr, Candidate(frame, round(t, 4), b, round(view_score(b, fill_here), 7)))
        for tr in live:
            if tr.open and (t - tr.last.t > self.max_gap_s or tr.last.t - tr.sightings[0].t >= self.max_event_s
                            or (tr.last.frame != frame and _outside(tr.predicted(t)))):
                tr.open = False
        return self._ended()

    def finish(self) -> list[Group]:
        """Close every track: the video ended."""
        for tr in self.tracks:
            tr.open = False
        return self._ended()

    def _offer(self, tr: Track, cand: Candidate) -> None:
        tr.candidates.append(cand)
        tr.candidates.sort(key=lambda c: (-c.score, c.frame))
        del tr.candidates[self.keep:]

    def _group_near(self, bbox: Sequence[float], current: list[tuple[Track, Box]]) -> int | None:
        """The group of a track seen in this frame near ``bbox`` (within half the larger box's
        size), if any: animals that pass together are seen together."""
        for tr, box in current:
            big = box if box[2] * box[3] >= bbox[2] * bbox[3] else bbox
            small = bbox if big is box else box
            if _near(big, small, 0.5):
                return tr.group
        return None

    def _ended(self) -> list[Group]:
        groups: dict[int, list[Track]] = {}
        for tr in self.tracks:
            groups.setdefault(tr.group, []).append(tr)
        ended = [Group(g, trs) for g, trs in groups.items() if not any(tr.open for tr in trs)]
        if ended:
            gone = {g.id for g in ended}
            self.tracks = [tr for tr in self.tracks if tr.group not in gone]
        ended.sort(key=lambda g: (min(tr.sightings[0].frame for tr in g.tracks), g.id))
        return ended

    # -- what makes an event ----------------------------------------------------------------

    def counts(self, tr: Track) -> bool:
        """Whether a track is an animal (or person) going somewhere, not noise or a branch: seen
        ``min_hits`` times and gone ``min_travel`` of its size from where it was first seen
        (seen only twice or for less than BRIEF_S, 2.5 times as far: a branch moves a little
        one way for half its swing, and two views cannot show an oscillation); one that
        came back towards where it started (a branch swinging, the two edges of a swaying bush
        taken for one thing) must have gone at least its own size."""
        hits = len(tr.sightings)
        if hits < self.min_hits:
            return False
        travel = tr.travel()
        brief = hits <= 2 or tr.last.t - tr.sightings[0].t < BRIEF_S
        if travel < self.min_travel * (2.5 if brief else 1.0):
            return False
        return travel >= 1.0 or tr.net() >= 0.5 * travel

    def candidate_frames(self) -> set[int]:
        """The frames whose images the open groups' candidates need."""
        return {c.frame for tr in self.tracks for c in tr.candidates}

    # -- checkpoints ------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {"next_track": self.next_track, "next_group": self.next_group,
                "tracks": [asdict(tr) for tr in self.tracks]}

    def restore(self, state: dict[str, Any]) -> None:
        self.next_track = int(state["next_track"])
        self.next_group = int(state["next_group"])
        self.tracks = [Track(int(d["id"]), int(d["group"]), [Sighting(**s) for s in d["sightings"]],
                             [Candidate(**c) for c in d["candidates"]], bool(d["open"]))
                       for d in state["tracks"]]
