"""Media of imported rows: files named in the source, found inside the archive or in the media
folder (``--media DIR``: by the path the source gives, else by file name). A URL is not fetched
(no network at run time): the row is kept without it and the report says so."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from core.lifecycle import Upload
from core.types import Problem

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class MediaFinder:
    def __init__(self, folder: Path | None, member: Callable[[str], bytes | None], *, archive: bool = False):
        self.folder = folder.resolve() if folder is not None else None
        self.shown = folder  # as the user named it
        self.member = member
        self.archive = archive
        self._by_name: dict[str, Path] | None = None

    def uploads(self, names: list[str]) -> tuple[list[Upload], list[Problem]]:
        """The files of one row, and a problem per name: a warning for a URL, an error for a file
        that is not found (the row is then refused: a second run with the file stores it)."""
        uploads, problems = [], []
        for i, name in enumerate(names):
            if _URL.match(name):
                problems.append(Problem(("media", i), f"{name} is a URL; media are not fetched (no network at run "
                                        "time): the row is kept without it", "media_url_not_fetched", "warning"))
                continue
            data = self.member(name) or self._from_folder(name)
            if data is None:
                problems.append(Problem(("media", i), f"the media file {name!r} {self._where()}", "media_not_found"))
                continue
            uploads.append(Upload(data, Path(name.replace("\\", "/")).name, None))
        return uploads, problems

    def _where(self) -> str:
        if self.archive and self.folder:
            return f"is neither in the archive nor in {self.shown}"
        if self.archive:
            return "is not in the archive (a folder of media files may be given with --media DIR)"
        if self.folder:
            return f"is not in {self.shown}"
        return "cannot be found: give the folder of the media files with --media DIR"

    def _from_folder(self, name: str) -> bytes | None:
        if self.folder is None:
            return None
        path = (self.folder / name.replace("\\", "/")).resolve()
        if path.is_relative_to(self.folder) and path.is_file():
            return path.read_bytes()
        if self._by_name is None:
            self._by_name = {}
            for found in sorted(self.folder.rglob("*")):
                if found.is_file():
                    self._by_name.setdefault(found.name, found)
        found = self._by_name.get(Path(name.replace("\\", "/")).name)
        return found.read_bytes() if found is not None else None
