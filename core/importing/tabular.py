"""CSV sources: any CSV with a mapping file, and iNaturalist's CSV export (a built-in mapping)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from core.importing.mapping import Column, Mapping, SourceError
from core.importing.rows import Converter, SourceRow

INAT_SIGNATURE = frozenset({"id", "observed_on_string", "observed_on", "time_observed_at", "user_id",
                            "latitude", "longitude"})
"""Columns every iNaturalist CSV export has (what recognises one)."""

INAT_MAPPING = Mapping(
    source="inat",
    id=Column(column=["id"]),
    # time_observed_at is UTC ("2020-05-01 17:23:00 UTC"); a date alone is read in the project's zone
    observed_at=Column(column=["time_observed_at", "observed_on"]),
    # private_* are in the export of one's own observations only; the public ones may be obscured
    lat=Column(column=["private_latitude", "latitude"]),
    lon=Column(column=["private_longitude", "longitude"]),
    accuracy=Column(column=["positional_accuracy", "public_positional_accuracy"]),
    # iNaturalist: no licence means all rights reserved, never the project's default
    licence=Column(column=["license"], value="all-rights-reserved"),
    location_privacy=Column(column=["geoprivacy"], values={"open": "open", "obscured": "obscured",
                                                           "private": "private"}),
    user_id=Column(column=["user_id"]),
    user_name=Column(column=["user_name", "user_login"]),
    fields={
        "scientific_name": Column(column=["scientific_name"]),
        "common_name": Column(column=["common_name"]),
        "taxon_id": Column(column=["taxon_id"], type="integer"),
        "iconic_taxon_name": Column(column=["iconic_taxon_name"]),
        "species_guess": Column(column=["species_guess"]),
        "note": Column(column=["description"]),
        "place": Column(column=["place_guess"]),
        "source_url": Column(column=["url"]),
        "source_quality_grade": Column(column=["quality_grade"]),
        "captive": Column(column=["captive_cultivated"], type="boolean"),
    },
    media=[Column(column=["image_url"]), Column(column=["sound_url"])],
    media_separator=",",
)


def sniff_header(path: Path, encoding: str = "utf-8-sig", delimiter: str | None = None) -> tuple[list[str], str]:
    """The header of a CSV file and its delimiter (found from the first lines when not given)."""
    try:
        with path.open(encoding=encoding, newline="") as fh:
            sample = fh.read(64 * 1024)
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path.name}: not {encoding} text ({exc.reason} at byte {exc.start}); set 'encoding' "
                          "in the mapping") from None
    except OSError as exc:
        raise SourceError(f"{path.name}: {exc.strerror}") from None
    if not sample.strip():
        raise SourceError(f"{path.name}: the file is empty")
    if delimiter is None:
        first = sample.splitlines()[0]
        counts = {d: first.count(d) for d in (",", ";", "\t", "|")}
        delimiter = max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","
    header = next(csv.reader(io.StringIO(sample), delimiter=delimiter))
    return [name.strip() for name in header], delimiter


def is_inat_export(header: list[str]) -> bool:
    return INAT_SIGNATURE <= set(header)


class CsvSource:
    """Rows of a CSV file through a mapping. ``row`` numbers are spreadsheet rows (header: 1)."""

    def __init__(self, path: Path, mapping: Mapping, converter: Converter, format: str = "csv", *,
                 user: Mapping | None = None):
        self.format = format
        self.path = path
        self.mapping = mapping
        self.converter = converter
        self.header, self.delimiter = sniff_header(path, mapping.encoding, mapping.delimiter)
        duplicates = sorted({name for name in self.header if self.header.count(name) > 1 and name})
        if duplicates:
            raise SourceError(f"{path.name}: the header names {', '.join(map(repr, duplicates))} more than once")
        check_columns(path.name, mapping, self.header, user)
        with path.open("rb") as fh:
            self.total: int | None = max(0, sum(1 for _ in fh) - 1)  # lines: a fair guess of the rows

    def rows(self) -> Iterator[SourceRow]:
        with self.path.open(encoding=self.mapping.encoding, newline="") as fh:
            reader = csv.reader(fh, delimiter=self.delimiter)
            width = len(self.header)
            number = 1
            try:
                next(reader, None)
                header, convert = self.header, self.converter.convert
                for number, values in enumerate(reader, start=2):
                    if not "".join(values).strip():
                        continue  # a blank line
                    if len(values) < width:
                        values += [""] * (width - len(values))
                    yield convert(dict(zip(header, values)), number)
            except csv.Error as exc:  # a cell past the csv module's limit, a NUL byte...
                raise SourceError(f"{self.path.name}: row {number + 1} cannot be read as CSV ({exc}); fix it and run "
                                  "again (rows stored so far are not stored twice)") from None
            except UnicodeDecodeError as exc:
                raise SourceError(f"{self.path.name}: after row {number}, bytes that are not {self.mapping.encoding} "
                                  f"({exc.reason}); set 'encoding' in the mapping and run again") from None

    def member(self, name: str) -> bytes | None:
        return None

    def close(self) -> None:
        pass


_ESSENTIAL = ("id", "observed_at", "date", "lat", "lon")


def _labelled(mapping: Mapping, names: tuple[str, ...] | None = None) -> dict[str, Column]:
    out: dict[str, Column] = {}
    for name in names or tuple(Mapping.model_fields):
        entry = getattr(mapping, name)
        if isinstance(entry, dict):
            out.update({f"{name}.{k}": v for k, v in entry.items()})
        elif isinstance(entry, list):
            out.update({f"{name}[{i}]": v for i, v in enumerate(entry)})
        elif isinstance(entry, Column):
            out[name] = entry
    return out


def check_columns(where: str, mapping: Mapping, header: list[str], user: Mapping | None) -> None:
    """Each entry of the user's mapping file, and each essential entry, must find one of its columns
    in ``header`` (a built-in mapping's other entries may miss: exports leave columns out)."""
    present = set(header)
    wanted = {**_labelled(mapping, _ESSENTIAL), **(_labelled(user) if user is not None else {})}
    missing = [f"{label} ({' or '.join(map(repr, column.column))})" for label, column in wanted.items()
               if column.column and not present & set(column.column)]
    if missing:
        raise SourceError(f"{where}: the mapping names columns the file does not have: {'; '.join(missing)}. "
                          f"Its header: {', '.join(header)}")
