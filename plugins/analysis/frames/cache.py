"""Frames kept on disk between calls (Parquet), brought up to date by ``updated_since``.

A cached frame is keyed by its source (database or URL, and who reads it), project and filters.
A refresh asks only for observations changed since the newest ``updated_at`` the cache holds (less
``overlap_s``, for changes still being committed when the cache was written), replaces those rows,
adds new ones, and drops the ids the caller may no longer see (trashed, unpublished or erased
observations, for a caller who sees published ones only)."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from plugins.analysis.frames.columns import normalise

DEFAULT_DIR = Path("~/.cache/observatory-analysis")
OVERLAP_S = 60.0
"""How far before the cache's newest change a refresh asks again from."""


def cache_folder(cache_dir: str | os.PathLike[str] | None) -> Path:
    """``cache_dir``, else ``$OBSERVATORY_ANALYSIS_CACHE``, else ~/.cache/observatory-analysis."""
    chosen = cache_dir or os.environ.get("OBSERVATORY_ANALYSIS_CACHE") or DEFAULT_DIR
    return Path(chosen).expanduser()


def cache_path(folder: Path, source_key: str, project: str, params: Mapping[str, str]) -> Path:
    """The Parquet file of one source, project and set of filters."""
    key = json.dumps([source_key, project, sorted(params.items())])
    return folder / f"{project}-{hashlib.sha256(key.encode()).hexdigest()[:24]}.parquet"


def cached_observations(source: Any, project: str, params: Mapping[str, str], cache_dir: Any, *,
                        refresh: bool = True, overlap_s: float = OVERLAP_S) -> pd.DataFrame:
    """The observations frame from the cache, refreshed from ``source`` (read whole the first time)."""
    path = cache_path(cache_folder(cache_dir), source.cache_key(), project, params)
    if not path.exists():
        return _store(path, source.observations(project, params))
    cached = pd.read_parquet(path)
    if not refresh:
        return cached
    if not len(cached):
        return _store(path, source.observations(project, params))
    since = cached["updated_at"].max() - timedelta(seconds=overlap_s)
    asked = dict(params)
    given = params.get("updated_since")
    if given is None or pd.Timestamp(given) < since:
        asked["updated_since"] = since.isoformat()
    changed = source.observations(project, asked)
    visible = source.visible_ids(project, params)
    kept = cached[~cached["id"].isin(changed["id"])]
    merged = pd.concat([kept, changed], ignore_index=True) if len(changed) else kept
    if visible is not None:
        merged = merged[merged["id"].isin(visible)]
    merged = normalise(merged.sort_values("id", kind="stable"))
    return _store(path, _columns_like(merged, changed))


def _columns_like(frame: pd.DataFrame, fresh: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with ``fresh``'s columns (a kind's schema may have gained a field since)."""
    if not len(fresh.columns) or list(frame.columns) == list(fresh.columns):
        return frame
    out = frame.reindex(columns=fresh.columns)
    for name in fresh.columns:
        if out[name].dtype != fresh[name].dtype:
            out[name] = out[name].astype(fresh[name].dtype)
    return out


def _store(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    frame.to_parquet(partial, index=False)
    partial.replace(path)  # a reader never sees half a file
    return frame
