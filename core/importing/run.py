"""An import run: find the format, read the rows, check them (dry run) or store them in batches
through ``core.lifecycle.submit_many``, and say what became of each row."""

from __future__ import annotations

import csv
import gc
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Protocol

from core import lifecycle
from core.engine import Engine
from core.importing.dwca import DWCA_MAPPING, DwcaSource, is_archive
from core.importing.geojson import GEOJSON_MAPPING, GeoJsonSource, looks_like_geojson
from core.importing.mapping import Mapping, SourceError, load_mapping
from core.importing.media_files import MediaFinder
from core.importing.people import People, pseudonym_key
from core.importing.rows import Converter, SourceRow
from core.importing.tabular import INAT_MAPPING, CsvSource, is_inat_export, sniff_header
from core.projects import project_kinds
from core.types import Problem, ProjectContext

FORMATS = ("csv", "geojson", "dwca", "inat")
REPORT_COLUMNS = ("row", "source_id", "field", "column", "problem", "code", "outcome")


class Source(Protocol):
    format: str
    total: int | None
    converter: Converter

    def rows(self) -> Iterator[SourceRow]: ...

    def member(self, name: str) -> bytes | None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ReportLine:
    """One problem of one row: ``outcome`` is ``refused`` (the row was not stored) or ``warning``
    (it was, without what the problem names)."""

    row: int
    source_id: str
    field: str
    column: str
    problem: str
    code: str
    outcome: str


@dataclass
class ImportSummary:
    format: str
    source: str
    dry_run: bool
    rows: int = 0
    stored: int = 0
    """Dry run: the rows that would be stored."""
    duplicates: int = 0
    """Rows stored by an earlier run (the same source id and content)."""
    refused: int = 0
    warnings: int = 0
    accounts_made: int = 0
    lines: list[ReportLine] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every row stored or already there."""
        return self.refused == 0

    def text(self) -> str:
        verb = "would be stored" if self.dry_run else "stored"
        out = (f"{self.rows} rows ({self.format}): {self.stored} {verb}, {self.duplicates} already stored, "
               f"{self.refused} refused, {self.warnings} warnings")
        if self.accounts_made:
            plural = "s" if self.accounts_made != 1 else ""
            out += f"; {self.accounts_made} account{plural} made for people who consented"
        return out + (" (dry run: nothing stored)" if self.dry_run else "")


def detect_format(path: Path) -> str:
    """The format of ``path``: a Darwin Core Archive (a zip or folder with meta.xml), GeoJSON (by
    its extension or its start), an iNaturalist export (by its header), else a CSV."""
    if is_archive(path):
        return "dwca"
    if path.is_dir():
        raise SourceError(f"{path}: a folder without meta.xml is not a Darwin Core Archive")
    if zipfile.is_zipfile(path):
        raise SourceError(f"{path.name}: a zip without meta.xml is not a Darwin Core Archive")
    if path.suffix.lower() == ".geojson" or looks_like_geojson(path):
        return "geojson"
    header, _ = sniff_header(path)
    return "inat" if is_inat_export(header) else "csv"


def open_source(engine: Engine, project: ProjectContext, path: Path, fmt: str, mapping_file: Path | None) -> Source:
    """The rows of ``path`` read as ``fmt``, through the format's mapping and the user's."""
    user = load_mapping(mapping_file) if mapping_file is not None else None
    kinds = {t.name: t for t in project_kinds(engine, project)}
    if fmt == "csv":
        if user is None:
            raise SourceError(f"{path.name}: a CSV needs a mapping file (--mapping FILE) naming its columns; "
                              "see docs/importing.md", code="import_mapping_missing")
        return CsvSource(path, user, Converter(user, "csv", kinds), user=user)
    builtin = {"inat": INAT_MAPPING, "geojson": GEOJSON_MAPPING, "dwca": DWCA_MAPPING}[fmt]
    mapping: Mapping = user.over(builtin) if user is not None else builtin
    converter = Converter(mapping, fmt, kinds)
    if fmt == "inat":
        return CsvSource(path, mapping, converter, "inat", user=user or Mapping())
    if fmt == "geojson":
        return GeoJsonSource(path, mapping, converter)
    return DwcaSource(path, mapping, converter)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while one batch is read, checked and stored.

    A batch is some ten thousand objects that live until it is stored; collections during it walk
    them again and again and move them to the oldest generation, whose collections then walk the
    whole process (a sixth of an import's time). Reference counting still frees them as soon as
    the batch is done; whatever a batch leaves in cycles is collected once the collector is back."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def batched(rows: Iterator[SourceRow], size: int) -> Iterator[list[SourceRow]]:
    while chunk := list(islice(rows, size)):
        yield chunk


def import_file(
    engine: Engine,
    project_slug: str,
    path: Path,
    *,
    fmt: str | None = None,
    mapping: Path | None = None,
    media_dir: Path | None = None,
    dry_run: bool = False,
    batch_size: int = 2000,
    progress: Callable[[int, int | None], None] | None = None,
    pseudonym_key_setting: str | None = None,
    actor: str = "import",
) -> ImportSummary:
    """Import ``path`` into a project and say what became of every row.

    A dry run checks every row as a real run does (the engine's and the plugins' checks, and
    whether its source id is stored already) and stores nothing, accounts included. A real run
    stores the valid rows ``batch_size`` at a time, each batch in one transaction, and queues
    their enrichments; run again, it stores nothing twice (the source id is the client id).
    ``progress`` is called after each batch with its number of rows and the number of rows the
    source is thought to hold (None when not known). SourceError when the file
    or the mapping cannot be read at all.
    """
    project = lifecycle.get_project(engine, project_slug)
    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path}: no such file")
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise SourceError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    if media_dir is not None and not Path(media_dir).is_dir():
        raise SourceError(f"{media_dir}: not a folder (--media names the folder of the media files)")
    source = open_source(engine, project, path, fmt, mapping)
    try:
        summary = ImportSummary(fmt, source.converter.prefix, dry_run)
        people = None if dry_run else People(engine, project, summary.source,
                                             pseudonym_key(engine.settings.data_dir,
                                                           pseudonym_key_setting or engine.settings.import_pseudonym_key))
        finder = MediaFinder(Path(media_dir) if media_dir is not None else None, source.member,
                             archive=fmt == "dwca")
        if progress is not None:
            progress(0, source.total)
        chunks = batched(source.rows(), max(1, batch_size))
        while True:
            with collector_paused():
                chunk = next(chunks, None)
                if chunk is None:
                    break
                _one_batch(engine, project, chunk, finder, people, summary)
            if progress is not None:
                progress(len(chunk), source.total)
        if people is not None:
            summary.accounts_made = people.made
        summary.lines.sort(key=lambda line: line.row)  # a row's lines stay in the order found
        return summary
    finally:
        source.close()


def _one_batch(engine: Engine, project: ProjectContext, chunk: list[SourceRow], finder: MediaFinder,
               people: People | None, summary: ImportSummary) -> None:
    summary.rows += len(chunk)
    ready: list[tuple[SourceRow, list[lifecycle.Upload]]] = []
    for row in chunk:
        if not row.media and not row.problems:  # nearly every row
            ready.append((row, []))
            continue
        uploads, media_problems = finder.uploads(row.media) if row.media else ([], [])
        problems = [*row.problems, *(p for p in media_problems if p.severity == "error")]
        for warning in (p for p in media_problems if p.severity == "warning"):
            summary.warnings += 1
            summary.lines.append(_line(row, warning, "warning"))
        if problems:
            _refuse(summary, row, problems)
        else:
            ready.append((row, uploads))
    if people is None:
        _check_batch(engine, project, ready, summary)
        return
    rows = [row for row, _ in ready]
    results = lifecycle.submit_many(
        engine, project.slug, [(row.draft, uploads) for row, uploads in ready], people.contributors(rows),
        actor=f"{summary.source}:{summary.format}", source_contributors=[people.pseudonym(row) for row in rows])
    for (row, _), result in zip(ready, results):
        if result.problems:
            _refuse(summary, row, list(result.problems))
        elif result.created:
            summary.stored += 1
        else:
            summary.duplicates += 1


def _check_batch(engine: Engine, project: ProjectContext, ready: list[tuple[SourceRow, list[lifecycle.Upload]]],
                 summary: ImportSummary) -> None:
    """Dry run: every check of submit, and the client ids stored already (same content or not)."""
    valid, refused = lifecycle.validate_many(engine, project.slug, [(row.draft, uploads, None) for row, uploads in ready])
    for position, problems in refused.items():
        _refuse(summary, ready[position][0], problems)
    digests = [(ready[position][0], lifecycle.content_hash(parsed, [m.sha256 for m in draft.media], draft.observed_at))
               for position, parsed, draft, _checked in valid]
    found = lifecycle.stored_client_ids(engine, project.slug, [row.draft["client_id"] for row, _ in digests])
    stored = {client_id: digest for client_id, (_id, digest, _contributor) in found.items()}
    for row, digest in digests:
        found = stored.get(row.draft["client_id"])
        if found is None:
            summary.stored += 1
        elif found == digest:
            summary.duplicates += 1
        else:
            conflict = lifecycle.client_id_conflict(row.draft["client_id"])
            _refuse(summary, row, [Problem(("client_id",), conflict.message, conflict.code)])


def _refuse(summary: ImportSummary, row: SourceRow, problems: list[Problem]) -> None:
    summary.refused += 1
    summary.lines += [_line(row, p, "refused") for p in problems]


def _line(row: SourceRow, problem: Problem, outcome: str) -> ReportLine:
    return ReportLine(row.row, row.source_id or "", ".".join(map(str, problem.path)), row.column_of(problem.path),
                      problem.message, problem.code, outcome)


def write_report(summary: ImportSummary, path: Path) -> None:
    """The report as CSV: one line per problem (row, source_id, field, column, problem, code, outcome)."""
    with Path(path).open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(REPORT_COLUMNS)
        for line in summary.lines:
            writer.writerow([line.row, line.source_id, line.field, line.column, line.problem, line.code, line.outcome])
