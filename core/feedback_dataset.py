"""People's corrections of a service's results as a labelled data set (issue 17 item 3):
``observatory feedback dataset --service species_id --out DIR``.

Each published observation whose result someone disagreed with, naming the right taxon, gives
its photos (cleaned of location and personal metadata: ``MediaStore.open_public``) under
``DIR/photos`` and a row per photo of ``DIR/labels.csv``: ``path,label`` first (what species_id's
``observatory models evaluate --dataset DIR/labels.csv`` reads), then the taxon id, the votes
for it, the observation, project, licence, rights holder and the recorder's name only where they
agreed to be named in open data (``core.consent`` attribution). Where people disagree on the
right taxon, the most named one wins (ties: the lowest taxon id).
"""

from __future__ import annotations

import csv
import mimetypes
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import select

from core.consent import ATTRIBUTION, agreed
from core.db.models import Account, Observation, ObservationMedia, Taxon
from core.db.session import transaction
from core.engine import Engine
from core.feedback import check_service, iter_corrections
from core.media import MediaNotPublic

COLUMNS = ["path", "label", "taxon_id", "votes", "observation_id", "project", "licence", "rights_holder",
           "recorded_by"]


def _labels(engine: Engine, service: str, project: str | None) -> dict[int, tuple[int, int]]:
    """Observation id -> (the most named correct taxon, how many named it)."""
    votes: dict[int, Counter[int]] = defaultdict(Counter)
    for row in iter_corrections(engine, service, project):
        votes[row["observation_id"]][row["taxon_id"]] += 1
    return {obs: min(counted.items(), key=lambda kv: (-kv[1], kv[0])) for obs, counted in votes.items()}


def write_dataset(engine: Engine, service: str, out: Path, project: str | None = None) -> dict[str, Any]:
    """Write the labelled data set of ``service``'s corrections under ``out``; returns counts
    (observations, photos, skipped photos that could not be cleaned)."""
    check_service(engine, service)
    labels = _labels(engine, service, project)
    photos_dir = out / "photos"
    photos_dir.mkdir(parents=True, exist_ok=True)
    written = skipped = 0
    named: dict[str, set[int]] = {}
    with transaction(engine.readers) as session, (out / "labels.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        observations = session.scalars(select(Observation).where(Observation.id.in_(list(labels)),
                                                                 Observation.status == "published")
                                       .order_by(Observation.id)) if labels else []
        for obs in observations:
            context = engine.registry.project(obs.project)
            if not context.public:
                continue
            taxon_id, votes = labels[obs.id]
            taxon = session.get(Taxon, taxon_id)
            if taxon is None:
                continue
            if obs.project not in named:
                named[obs.project] = agreed(engine, obs.project, ATTRIBUTION)
            recorder = None
            if obs.contributor_id is not None and obs.contributor_id in named[obs.project]:
                recorder = session.scalar(select(Account.display_name).where(Account.id == obs.contributor_id))
            publisher = (context.dataset.publisher or {}).get("name")
            rights = context.dataset.rights_holder or recorder or publisher or context.name
            for media in session.scalars(select(ObservationMedia).where(ObservationMedia.observation_id == obs.id)
                                         .order_by(ObservationMedia.position)):
                if not media.content_type.startswith("image/"):
                    continue
                try:
                    data = engine.media.open_public(media.sha256, media.content_type)
                except MediaNotPublic:
                    skipped += 1
                    continue
                name = f"{obs.id}-{media.position}{mimetypes.guess_extension(media.content_type) or ''}"
                (photos_dir / name).write_bytes(data)
                writer.writerow([f"photos/{name}", taxon.scientific_name, taxon_id, votes, obs.id, obs.project,
                                 obs.licence or context.licence, rights or "", recorder or ""])
                written += 1
    return {"service": service, "observations": len(labels), "photos": written, "skipped": skipped,
            "labels": str(out / "labels.csv")}
