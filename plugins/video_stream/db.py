"""The video_stream service's own tables, on their own metadata; ``create_tables`` makes the
missing ones at start-up (on SQLite and PostgreSQL alike; the engine's migrations do not know
them). Names follow Camtrap DP where it names the thing (deployments)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (JSON, Boolean, Column, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text,
                        UniqueConstraint, false)

from core.db.models import Account, Observation, UTCDateTime

metadata = MetaData()

# a camera at a place over a period (Camtrap DP's deployment)
deployments = Table(
    "video_deployments", metadata,
    Column("id", Integer, primary_key=True),
    Column("project", String(64), nullable=False, index=True),
    Column("deployment_id", String(100), nullable=False),  # Camtrap DP deploymentID, unique per project
    Column("location_name", String(200), nullable=True),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("start", UTCDateTime, nullable=True),
    Column("end", UTCDateTime, nullable=True),
    Column("camera_model", String(200), nullable=True),
    Column("camera_height_m", Float, nullable=True),
    Column("bait", Boolean, nullable=True),
    Column("habitat", String(200), nullable=True),
    Column("created_by", Integer, ForeignKey(Account.id, ondelete="SET NULL"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("project", "deployment_id", name="uq_video_deployment"),
)

# one video (a file, an upload or a stream) processed for a project and a deployment
jobs = Table(
    "video_jobs", metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("project", String(64), nullable=False, index=True),
    Column("deployment", Integer, ForeignKey(deployments.c.id), nullable=False),
    Column("source_kind", String(16), nullable=False),  # upload, path, url, stream
    Column("source", Text, nullable=False),              # a path the worker reads, or the URL
    Column("filename", String(255), nullable=True),      # an upload's name as sent
    Column("settings", JSON, nullable=False),            # the job's settings, defaults filled in
    Column("state", String(16), nullable=False),         # queued, running, done, failed, cancelled
    Column("cancel_requested", Boolean, nullable=False, server_default=false()),
    Column("video", JSON, nullable=True),                # fps, width, height, frames, duration_s, start_time
    Column("frames_total", Integer, nullable=True),      # frames to sample (None: a stream)
    Column("frames_done", Integer, nullable=False, server_default="0"),
    Column("fps", Float, nullable=True),                 # frames processed per second, lately
    Column("checkpoint", JSON, nullable=True),           # where a resumed job starts (pipeline state)
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("lease_token", String(36), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("gaps", JSON, nullable=True),                 # a stream's outages: [{start, end, reason}]
    Column("error", Text, nullable=True),
    Column("error_code", String(64), nullable=True),
    Column("outputs", JSON, nullable=True),              # output name -> file (under the job's folder)
    Column("created_by", Integer, ForeignKey(Account.id, ondelete="SET NULL"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_video_job_state", "state", "lease_until"),
)

# one animal (or person, or vehicle) passing: a tracked region, classified
events = Table(
    "video_events", metadata,
    Column("id", Integer, primary_key=True),
    Column("job", Integer, ForeignKey(jobs.c.id, ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),              # 1, 2, ... within the job
    Column("start_frame", Integer, nullable=False),
    Column("end_frame", Integer, nullable=False),
    Column("start_s", Float, nullable=False),            # offsets in the video
    Column("end_s", Float, nullable=False),
    Column("start_time", UTCDateTime, nullable=True),    # absolute, when the video's start is known
    Column("end_time", UTCDateTime, nullable=True),
    Column("category", String(16), nullable=False),      # animal, human, vehicle (MegaDetector's)
    Column("top_k", JSON, nullable=False),               # [{label, scientific_name, taxon_id, score}]
    Column("count", Integer, nullable=False),
    Column("boxes", JSON, nullable=False),               # [{frame, t, bbox: [x, y, w, h] relative, conf}]
    Column("keyframes", JSON, nullable=False),           # [{frame, t, file}] under the job's folder
    Column("observation_id", Integer, ForeignKey(Observation.id, ondelete="SET NULL"), nullable=True),
    UniqueConstraint("job", "seq", name="uq_video_event_seq"),
)


def create_tables(engine: Any) -> None:
    """Create the service's tables that do not exist yet (idempotent, safe in every process)."""
    metadata.create_all(engine.db, checkfirst=True)
