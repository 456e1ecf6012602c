"""The local source: this engine's database, as staff or as the public sees it."""

from __future__ import annotations

from typing import Any, Mapping

import pandas as pd
from sqlalchemy import select

from core.engine import Engine


class LocalSource:
    """Reads frames from this engine's database (``frames.local``)."""

    def __init__(self, settings: Any = None, *, engine: Engine | None = None, public: bool = False) -> None:
        if engine is None:
            from core.cli import start_engine

            engine = start_engine(settings, inline=True)
        self.engine = engine
        self.public = public

    @property
    def staff(self) -> bool:
        return not self.public

    def describe(self) -> str:
        return f"local {self.engine.db.url.render_as_string(hide_password=True)}, {'public' if self.public else 'staff'}"

    def cache_key(self) -> str:
        """What a cached frame was read from, as whom."""
        return f"local|{self.engine.db.url.render_as_string(hide_password=True)}|{'public' if self.public else 'staff'}"

    def observations(self, project: str, params: Mapping[str, str]) -> pd.DataFrame:
        from plugins.analysis.frames.local import read_observations

        return read_observations(self.engine, project, params, public=self.public)

    def media(self, project: str, params: Mapping[str, str]) -> pd.DataFrame:
        from plugins.analysis.frames.related import read_media

        return read_media(self.engine, project, params, public=self.public)

    def identifications(self, project: str, params: Mapping[str, str]) -> pd.DataFrame:
        from plugins.analysis.frames.related import read_identifications

        return read_identifications(self.engine, project, params, public=self.public)

    def visible_ids(self, project: str, params: Mapping[str, str]) -> list[int]:
        """The ids the caller may see now under ``params`` (a refresh drops the others)."""
        from plugins.analysis.frames.local import visible_ids

        return visible_ids(self.engine, project, params, public=self.public)

    def timezone(self, project: str) -> str:
        """The project's time zone (its local days)."""
        from core.lifecycle import get_project

        return get_project(self.engine, project).timezone

    def display_names(self, project: str) -> dict[int, str] | None:
        """Account id -> display name, for staff (None for the public: pseudonymous ids only)."""
        if self.public:
            return None
        from core.db.models import Account

        accounts = Account.__table__
        with self.engine.readers() as session:
            return {i: n for i, n in session.execute(select(accounts.c.id, accounts.c.display_name))}
