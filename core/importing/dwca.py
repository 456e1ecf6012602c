"""Darwin Core Archives (a zip, or its folder, with meta.xml): an Occurrence core, read with
python-dwca-reader, and the Simple Multimedia (or Audubon Core) extension for media.

Terms are named by their short names (``eventDate``, not the full URI) in a mapping file. The
built-in mapping: occurrenceID (or the core id) is the source id; eventDate (with eventTime when
the date has no time) the time; decimalLatitude/decimalLongitude and
coordinateUncertaintyInMeters the place; license the licence; recordedByID (or recordedBy) the
person, recordedBy their name; scientificName, taxonRank, vernacularName, individualCount,
occurrenceRemarks, locality and basisOfRecord fields (``scientific_name``, ``taxon_rank``,
``vernacular_name``, ``count``, ``note``, ``locality``, ``basis_of_record``). A media row's
identifier (or accessURI) is a file of the archive, a file of ``--media``, or a URL.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.importing.mapping import Column, Mapping, SourceError
from core.importing.rows import Converter, SourceRow

OCCURRENCE = "http://rs.tdwg.org/dwc/terms/Occurrence"
MEDIA_ROWTYPES = ("http://rs.gbif.org/terms/1.0/Multimedia", "http://rs.tdwg.org/ac/terms/Multimedia")
MEDIA_TERMS = ("identifier", "accessURI")

DWCA_MAPPING = Mapping(
    source="dwca",
    id=Column(column=["occurrenceID", "id"]),
    date=Column(column=["eventDate"]),
    time=Column(column=["eventTime"]),
    lat=Column(column=["decimalLatitude"]),
    lon=Column(column=["decimalLongitude"]),
    accuracy=Column(column=["coordinateUncertaintyInMeters"]),
    licence=Column(column=["license"]),
    user_id=Column(column=["recordedByID", "recordedBy"]),
    user_name=Column(column=["recordedBy"]),
    fields={
        "scientific_name": Column(column=["scientificName"]),
        "taxon_rank": Column(column=["taxonRank"]),
        "vernacular_name": Column(column=["vernacularName"]),
        "count": Column(column=["individualCount"], type="integer"),
        "note": Column(column=["occurrenceRemarks"]),
        "locality": Column(column=["locality"]),
        "basis_of_record": Column(column=["basisOfRecord"]),
    },
)


def short(term: str) -> str:
    """``http://rs.tdwg.org/dwc/terms/eventDate`` -> ``eventDate``."""
    return term.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]


def is_archive(path: Path) -> bool:
    if path.is_dir():
        return (path / "meta.xml").is_file()
    try:
        with zipfile.ZipFile(path) as archive:
            return any(short(name) == "meta.xml" for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


class DwcaSource:
    """The core's occurrences in file order; ``row`` is the record's number from 1."""

    def __init__(self, path: Path, mapping: Mapping, converter: Converter):
        from dwca.read import DwCAReader

        self.format = "dwca"
        self.converter = converter
        try:
            self.reader = DwCAReader(str(path))
        except Exception as exc:  # noqa: BLE001 (the reader raises many kinds; each means "not readable")
            raise SourceError(f"{path.name}: not a readable Darwin Core Archive "
                              f"({type(exc).__name__}: {exc})") from None
        core = self.reader.descriptor.core.type if self.reader.descriptor else None
        if core != OCCURRENCE:
            self.reader.close()
            raise SourceError(f"{path.name}: the archive's core is {core or 'not described'}; only an Occurrence core "
                              f"({OCCURRENCE}) is imported")
        self.root = Path(self.reader.absolute_temporary_path("")).resolve()
        self.total: int | None = None

    def rows(self) -> Iterator[SourceRow]:
        for number, core in enumerate(self.reader, start=1):
            record: dict[str, Any] = {short(term): value for term, value in core.data.items()}
            if core.id is not None and "id" not in record:
                record["id"] = core.id
            media = []
            for extension in core.extensions:
                if extension.rowtype in MEDIA_ROWTYPES:
                    data = {short(term): value for term, value in extension.data.items()}
                    name = next((data[t].strip() for t in MEDIA_TERMS if (data.get(t) or "").strip()), None)
                    if name:
                        media.append(name)
            yield self.converter.convert(record, number, media=media)

    def member(self, name: str) -> bytes | None:
        """A file inside the archive (never outside it)."""
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            return None
        return path.read_bytes()

    def close(self) -> None:
        self.reader.close()
