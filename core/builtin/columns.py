"""The engine's own export columns, declared through the same hook as a plugin's."""

from __future__ import annotations

from core.hookspecs import hookimpl
from core.types import ExportColumn, ProjectContext


@hookimpl
def export_columns(project: ProjectContext) -> list[ExportColumn]:
    return [
        ExportColumn("media_count", lambda o: len(o.media), "number of media files"),
    ]
