"""The dHashes of a project's photos, kept in memory by each process and refreshed with what changed.

The near-duplicate check compares a new photo with every earlier photo of its project. Reading
them all from the enrichments on every check costs a scan that grows with the project (0.6 s a
check at 100,000 photos on SQLite), so each process keeps the project's hashes in numpy arrays
and, before a check, reads only the enrichments that ended since its last read. A check is then
a vectorised Hamming distance over the arrays, and a look-up of the few observations within the
distance (to leave out those trashed since, or being identified again).

Rows are found by ``Enrichment.finished_at`` (a partial index covers those that ended). Each
read goes back ``OVERLAP`` before the newest end seen, for rows stamped by another machine's
clock or committed late; the check reads at most once every ``REFRESH_EVERY_S`` (so a busy
project's checks share one read: a photo whose identification ended within that second may be
missed by a check made in it); and the whole project is read again every ``FULL_RELOAD_S``,
which also drops what was replaced.
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.db.models import Enrichment, Observation
from core.db.session import transaction
from plugins.species_id import photo
from plugins.species_id.catalogue import SERVICE

OVERLAP = timedelta(seconds=30)
REFRESH_EVERY_S = 1.0
FULL_RELOAD_S = 30 * 60.0


@dataclass(frozen=True)
class Match:
    observation_id: int
    position: int  # the photo's place in its observation
    distance: int  # bits of 64 that differ
    status: str = field(default="", compare=False)  # the observation's status when the match was read


def _hashes_of(value: Any) -> list[str]:
    if isinstance(value, str):  # some drivers hand back JSON text
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return [h if isinstance(h, str) and len(h) == 16 else "" for h in value or []]


class ProjectHashes:
    """One project's photo hashes: (observation id, position, dHash) in parallel arrays."""

    def __init__(self, sessions: sessionmaker[Session], project: str):
        self.sessions, self.project = sessions, project
        self._lock = threading.Lock()
        self._clear()

    def _clear(self) -> None:
        self._obs = np.empty(0, np.int64)
        self._pos = np.empty(0, np.int32)
        self._val = np.empty(0, np.uint64)
        self._live = np.empty(0, bool)
        self._rows: dict[int, tuple[datetime, list[int]]] = {}  # observation -> (stamp, its indices)
        self._newest: datetime | None = None
        self._loaded_at = 0.0
        self.refreshed_at = 0.0

    def __len__(self) -> int:
        return int(self._live.sum())

    def refresh(self) -> int:
        """Read what changed since the last read (everything, the first time); rows read."""
        with self._lock:
            if self._newest is None or time.monotonic() - self._loaded_at > FULL_RELOAD_S:
                self._clear()
                self._loaded_at = time.monotonic()
                since = None
            else:
                since = self._newest - OVERLAP
            query = (
                select(Enrichment.observation_id, Enrichment.finished_at, Enrichment.result["dhashes"])
                .join(Observation, Observation.id == Enrichment.observation_id)
                .where(Observation.project == self.project, Enrichment.plugin == SERVICE,
                       Enrichment.status == "done")
            )
            if since is not None:
                query = query.where(Enrichment.finished_at >= since)
            self.refreshed_at = time.monotonic()
            with transaction(self.sessions) as session:
                rows = session.execute(query).all()
            self._add(rows)
            return len(rows)

    def _add(self, rows: list[Any]) -> None:
        obs, pos, val = [], [], []
        start = len(self._obs)
        for obs_id, stamp, hashes in rows:
            known = self._rows.get(obs_id)
            if known is not None:
                if known[0] == stamp:  # read again through the overlap, unchanged
                    continue
                self._live[known[1]] = False  # enriched again: its photos may have changed
            indices = []
            for position, value in enumerate(_hashes_of(hashes)):
                if value:
                    indices.append(start + len(obs))
                    obs.append(obs_id)
                    pos.append(position)
                    val.append(int(value, 16))
            self._rows[obs_id] = (stamp, indices)
            if stamp is not None and (self._newest is None or stamp > self._newest):
                self._newest = stamp  # (a done row without an end time is read by full reads only)
        if obs:
            self._obs = np.concatenate([self._obs, np.array(obs, np.int64)])
            self._pos = np.concatenate([self._pos, np.array(pos, np.int32)])
            self._val = np.concatenate([self._val, np.array(val, np.uint64)])
            self._live = np.concatenate([self._live, np.ones(len(obs), bool)])

    def nearest(self, value: str, before_id: int, max_distance: int) -> Match | None:
        """The nearest photo within ``max_distance`` bits, of an observation stored before
        ``before_id`` that is not trashed and whose identification is done; None if there is none."""
        with self._lock:
            if not len(self._val):
                return None
            distances = photo.popcount(self._val ^ np.uint64(int(value, 16)))
            near = np.flatnonzero(self._live & (self._obs < before_id) & (distances <= max_distance))
            if not len(near):
                return None
            near = near[np.lexsort((self._obs[near], distances[near]))]  # nearest first, then oldest
            found = [(Match(int(self._obs[i]), int(self._pos[i]), int(distances[i])), int(self._val[i]))
                     for i in near[:200]]
        current = self._current_hashes({match.observation_id for match, _ in found})
        for match, value in found:
            status, hashes = current.get(match.observation_id, ("", []))
            if match.position < len(hashes) and hashes[match.position] and int(hashes[match.position], 16) == value:
                return replace(match, status=status)
        return None

    def _current_hashes(self, ids: set[int]) -> dict[int, tuple[str, list[str]]]:
        """The status and photo hashes, now, of those of ``ids`` that are not trashed and whose
        species_id enrichment is done (what the arrays hold may have changed since they were read)."""
        query = (
            select(Observation.id, Observation.status, Enrichment.result["dhashes"])
            .join(Enrichment, Enrichment.observation_id == Observation.id)
            .where(Observation.id.in_(ids), Observation.status != "trashed", Enrichment.plugin == SERVICE,
                   Enrichment.status == "done")
        )
        with transaction(self.sessions) as session:
            return {obs_id: (status, _hashes_of(hashes)) for obs_id, status, hashes in session.execute(query)}


_lock = threading.Lock()
_indexes: dict[tuple[int, str], tuple[weakref.ref[Any], ProjectHashes]] = {}


def project_index(sessions: sessionmaker[Session], project: str) -> ProjectHashes:
    """This process's index of ``project`` on the database of ``sessions``, brought up to date
    unless it was within the last ``REFRESH_EVERY_S``."""
    key = (id(sessions), project)
    with _lock:
        found = _indexes.get(key)
        if found is None or found[0]() is not sessions:
            if len(_indexes) > 256:  # engines started again and again (tests) leave old ones behind
                _indexes.clear()
            found = _indexes[key] = (weakref.ref(sessions), ProjectHashes(sessions, project))
    index = found[1]
    if time.monotonic() - index.refreshed_at >= REFRESH_EVERY_S:
        index.refresh()
    return index
