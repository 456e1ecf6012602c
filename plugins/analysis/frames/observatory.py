"""``Observatory``: a project's data as pandas frames, from this engine's database or any engine's API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

import pandas as pd

from core.filters import FilterError

__all__ = ["FilterError", "Observatory"]


def filter_texts(filters: Mapping[str, Any] | None, keywords: Mapping[str, Any]) -> dict[str, str]:
    """The filters as the API's query parameters: name -> text (datetimes in ISO 8601 with their
    offset, booleans as true/false); None values left out. ``filters`` holds names that are no
    Python keyword (``{"field.count>": 3}`` or ``{"field.count": "gte:3"}``)."""
    out: dict[str, str] = {}
    for name, value in {**(filters or {}), **keywords}.items():
        if value is None:
            continue
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise FilterError(f"filter {name!r}: give a datetime with a time zone (e.g. tz=timezone.utc)",
                                  "invalid_filter_value")
            text = value.isoformat()
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        out[name] = text
    return out


class Observatory:
    """A source of a project's data as pandas DataFrames.

    ``Observatory.local()`` reads this engine's database as an operator sees it (``public=True``:
    as the public does); ``Observatory("https://host", token=...)`` reads any engine over its HTTP
    API as that token's account sees it. Both give the same frames (docs/analysis.md)."""

    def __init__(self, url: str | None = None, token: str | None = None, *, progress: bool | None = None,
                 cache_dir: str | None = None, cache: bool = True, timeout: float = 60.0,
                 retries: int = 6, overlap_s: float = 60.0, _source: Any = None) -> None:
        if _source is None:
            if not url:
                raise ValueError("give the engine's URL (Observatory('https://host')), or use Observatory.local()")
            from plugins.analysis.frames.remote import RemoteSource

            _source = RemoteSource(url, token, progress=progress, timeout=timeout, retries=retries)
        self.source = _source
        self.cache_dir = cache_dir
        self.cache = cache
        self.overlap_s = overlap_s
        """How far before the cache's newest change a refresh asks again (changes still committing)."""

    @classmethod
    def local(cls, settings: Any = None, *, engine: Any = None, public: bool = False,
              cache_dir: str | None = None, cache: bool = True, overlap_s: float = 60.0) -> "Observatory":
        """This engine's database (``settings``: the engine's, read from the environment when None;
        ``engine``: an engine already started), as staff see it, or as the public when ``public``."""
        from plugins.analysis.frames.source import LocalSource

        return cls(_source=LocalSource(settings, engine=engine, public=public), cache_dir=cache_dir, cache=cache,
                   overlap_s=overlap_s)

    def observations(self, project: str, filters: Mapping[str, Any] | None = None, *, refresh: bool = True,
                     **keywords: Any) -> pd.DataFrame:
        """One row per observation of ``project`` the caller may see, sorted by id; filters as the
        API's (``kind="photo"``, ``since=...``, ``filters={"field.count>": 3}``). Cached on disk
        and brought up to date by ``updated_since`` (``refresh=False``: the cache as it is)."""
        params = filter_texts(filters, keywords)
        if not self.cache:
            return self.source.observations(project, params)
        from plugins.analysis.frames.cache import cached_observations

        return cached_observations(self.source, project, params, self.cache_dir, refresh=refresh,
                                   overlap_s=self.overlap_s)

    def media(self, project: str, filters: Mapping[str, Any] | None = None, **keywords: Any) -> pd.DataFrame:
        """One row per medium of the observations ``observations`` gives (same filters):
        observation_id, media_id, url (the API's path of the file, to join to the engine's address),
        content_type, licence, attribution (how open data credits it; <NA> for media that are no
        open data: unpublished observations, projects that are not public). Not cached."""
        return self.source.media(project, filter_texts(filters, keywords))

    def identifications(self, project: str, filters: Mapping[str, Any] | None = None,
                        **keywords: Any) -> pd.DataFrame:
        """Every identification (current or not) of the observations ``observations`` gives:
        observation_id, identification_id, taxon_id, taxon_name, category, current, created_at,
        identifier_id (the identifier's account id for staff, <NA> otherwise). Not cached."""
        return self.source.identifications(project, filter_texts(filters, keywords))

    def contributors(self, project: str, filters: Mapping[str, Any] | None = None, **keywords: Any) -> pd.DataFrame:
        """One row per contributor (pseudonymous account id): n_observations, first_at, last_at,
        active_days (local days in the project's time zone); display_name for staff reading locally."""
        frame = self.observations(project, filters, **keywords)
        from plugins.analysis.frames.contributors import contributors_frame

        return contributors_frame(frame, self.source.display_names(project), self.source.timezone(project))

    def __repr__(self) -> str:
        return f"Observatory({self.source.describe()})"
