"""Darwin Core checklists: a CSV or tab-separated file with Darwin Core Taxon columns (GBIF's
``Taxon.tsv`` as it is), or a Darwin Core Archive (zip) whose core is Taxon, with its
VernacularName extension as common names.

Columns read (any case; full term URIs or ``dwc:`` prefixes too): ``scientificName`` (needed),
``taxonID``, ``parentNameUsageID``, ``acceptedNameUsageID``, ``taxonomicStatus``, ``taxonRank``,
``canonicalName`` (GBIF), ``scientificNameAuthorship``, ``kingdom`` ... ``genus``,
``vernacularName`` with ``language``, ``datasetID``. A synonym (its status says so, or its
``acceptedNameUsageID`` is another taxon) becomes a scientific name of its accepted taxon.
"""

from __future__ import annotations

import csv
import io
import re
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Iterator
from xml.etree import ElementTree

from core.errors import EngineError
from core.taxonomy.load import SCIENTIFIC, Entry, ExtraName, NameIn, Report, Skipped, load_entries
from core.taxonomy.names import CLASSIFICATION_RANKS, clean_name, lexicon_of, rank_of

if TYPE_CHECKING:
    from core.engine import Engine

GBIF_BACKBONE = "d7dddbf4-2cf0-4f39-9b2a-bb099caae36c"
"""The GBIF Backbone Taxonomy's dataset key: its taxonIDs are GBIF keys."""
TAXON_ROW_TYPE = "Taxon"
VERNACULAR_ROW_TYPE = "VernacularName"
_GBIF_KEY_COLUMNS = ("gbifkey", "gbif_key", "taxonkey", "gbifid")
_INFRASPECIFIC = re.compile(r"\b(var|subsp|ssp|f|forma)\.?\s", re.IGNORECASE)

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


class ChecklistError(EngineError):
    """The file cannot be read as a checklist at all (nothing was loaded)."""

    code = "invalid_checklist"
    http_status = 422


def term(name: str) -> str:
    """A column's Darwin Core term, lower case: ``http://rs.tdwg.org/dwc/terms/taxonID``,
    ``dwc:taxonID`` and ``taxonID`` are all ``taxonid``."""
    return re.split(r"[/#:]", name.strip())[-1].lower()


@dataclass
class Table:
    """One data file: how to read it and which column is which term."""

    name: str
    delimiter: str
    quoted: bool
    header_lines: int
    columns: dict[str, int]
    id_column: int | None = None
    defaults: dict[str, str] = field(default_factory=dict)
    encoding: str = "utf-8"


@dataclass
class Read:
    entries: list[Entry] = field(default_factory=list)
    extra: list[ExtraName] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def rows(table: Table, stream: IO[str]) -> Iterator[tuple[int, dict[str, str] | None, str | None]]:
    """(line, values by term, None) per record; (line, None, why) for a line that cannot be read."""
    reader = csv.reader(stream, delimiter=table.delimiter, quoting=csv.QUOTE_MINIMAL if table.quoted else csv.QUOTE_NONE,
                        strict=False)
    width = max([*table.columns.values(), table.id_column if table.id_column is not None else -1]) + 1
    expected = None
    for number, values in enumerate(reader, start=1):
        line = reader.line_num
        if number <= table.header_lines:
            expected = len(values)
            continue
        if not values or values == [""]:
            continue
        if (expected is not None and len(values) != expected) or len(values) < width:
            yield line, None, f"has {len(values)} fields, the header has {expected or width}"
            continue
        got = {k: values[i].strip() for k, i in table.columns.items()}
        for k, v in table.defaults.items():
            if not got.get(k):
                got[k] = v
        if table.id_column is not None:
            got.setdefault("id", values[table.id_column].strip())
        yield line, got, None


def _entry(values: dict[str, str], line: int, gbif: bool, out: Read, file: str | None) -> None:
    get = values.get
    sid = get("taxonid") or get("id") or None
    raw = clean_name(get("scientificname"))
    name = clean_name(get("canonicalname"))
    author = clean_name(get("scientificnameauthorship"))
    if not name:
        name = raw[: -len(author)].strip() if author and raw.endswith(author) and raw != author else raw
    if not name:
        out.skipped.append(Skipped("no scientificName", line, file))
        return
    status = (get("taxonomicstatus") or "").lower()
    accepted = get("acceptednameusageid") or None
    if "synonym" in status or status == "misapplied" or (accepted and accepted != sid):
        if not accepted:
            out.skipped.append(Skipped(f"{name}: a synonym without acceptedNameUsageID", line, file))
        else:
            out.extra.append(ExtraName(accepted, NameIn(name, SCIENTIFIC), line, file))
        return
    rank = get("taxonrank") or None
    words = name.split()
    if not rank and len(words) in (2, 3):
        rank = "species" if len(words) == 2 else ("variety" if " var." in name else "subspecies")
    classification = {}
    for higher in CLASSIFICATION_RANKS:
        value = get(higher)
        if value and (value := clean_name(value)):
            classification[higher] = value
    parent = get("parentnameusageid") or None
    level = rank_of(rank)
    if parent is None and "genus" not in classification and level in ("species", "subspecies", "variety", "form") \
            and len(words) >= 2 and not _INFRASPECIFIC.match(words[0] + " "):
        classification["genus"] = words[0]
    names = []
    vernacular = clean_name(get("vernacularname"))
    if vernacular:
        names.append(NameIn(vernacular, lexicon_of(get("language"))))
    gbif_key = None
    for column in _GBIF_KEY_COLUMNS:
        if (get(column) or "").isdigit():
            gbif_key = int(get(column) or 0)
            break
    if gbif_key is None and sid and sid.isdigit() and (gbif or get("datasetid") == GBIF_BACKBONE):
        gbif_key = int(sid)
    out.entries.append(Entry(name, rank, sid, parent, classification, names, gbif_key, line, file))


def read_core(table: Table, stream: IO[str], gbif: bool, file: str | None = None) -> Read:
    if "scientificname" not in table.columns and "scientificname" not in table.defaults:
        raise ChecklistError(f"{table.name}: no scientificName column (found: "
                             f"{', '.join(sorted(table.columns)) or 'nothing'}); a Darwin Core checklist needs one")
    out = Read()
    for line, values, problem in rows(table, stream):
        if values is None:
            out.skipped.append(Skipped(problem or "cannot be read", line, file))
        else:
            _entry(values, line, gbif, out, file)
    return out


def read_vernacular(table: Table, stream: IO[str], out: Read) -> None:
    for line, values, problem in rows(table, stream):
        if values is None:
            out.skipped.append(Skipped(problem or "cannot be read", line, table.name))
            continue
        name, core_id = clean_name(values.get("vernacularname")), values.get("id") or values.get("taxonid")
        if not name or not core_id:
            out.skipped.append(Skipped("no vernacularName or no taxon id", line, table.name))
            continue
        preferred = (values.get("ispreferredname") or "").lower() in ("true", "1", "yes", "t")
        out.extra.append(ExtraName(core_id, NameIn(name, lexicon_of(values.get("language")), preferred), line,
                                   table.name))


def _text_table(path: Path) -> tuple[Table, IO[str]]:
    try:
        stream = path.open(encoding="utf-8-sig", newline="")
        header = stream.readline()
    except UnicodeDecodeError:
        raise ChecklistError(f"{path}: not UTF-8 text; save the checklist as UTF-8") from None
    except OSError as exc:
        raise ChecklistError(f"{path}: cannot be read: {exc.strerror}") from None
    if not header.strip():
        stream.close()
        raise ChecklistError(f"{path}: empty; a checklist starts with a header line (taxonID, scientificName, ...)")
    delimiter = "\t" if "\t" in header else (";" if header.count(";") > header.count(",") else ",")
    names = next(csv.reader([header], delimiter=delimiter, quoting=csv.QUOTE_MINIMAL if delimiter != "\t" else csv.QUOTE_NONE))
    columns: dict[str, int] = {}
    for index, name in enumerate(names):
        columns.setdefault(term(name), index)
    stream.seek(0)
    return Table(path.name, delimiter, delimiter != "\t", 1, columns), stream


def read_text(path: Path, gbif: bool) -> Read:
    table, stream = _text_table(path)
    with stream:
        try:
            return read_core(table, stream, gbif)
        except UnicodeDecodeError:
            raise ChecklistError(f"{path}: not UTF-8 text; save the checklist as UTF-8") from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _unescape(value: str | None, default: str) -> str:
    if value is None:
        return default
    return value.replace("\\t", "\t").replace("\\n", "\n").replace("\\r", "\r")


def _meta_table(element: ElementTree.Element, path: Path) -> Table:
    location = next((e.text for e in element.iter() if _local(e.tag) == "location" and e.text), None)
    if not location:
        raise ChecklistError(f"{path}: meta.xml names no data file for {element.get('rowType')}")
    columns: dict[str, int] = {}
    defaults: dict[str, str] = {}
    id_column = None
    for child in element:
        tag = _local(child.tag)
        if tag in ("id", "coreid") and child.get("index") is not None:
            id_column = int(child.get("index") or 0)
        elif tag == "field" and child.get("term"):
            if child.get("index") is not None:
                columns.setdefault(term(child.get("term") or ""), int(child.get("index") or 0))
            elif child.get("default") is not None:
                defaults[term(child.get("term") or "")] = child.get("default") or ""
    enclosed = _unescape(element.get("fieldsEnclosedBy"), '"')
    return Table(location.strip(), _unescape(element.get("fieldsTerminatedBy"), ","), bool(enclosed),
                 int(element.get("ignoreHeaderLines") or 0), columns, id_column, defaults,
                 element.get("encoding") or "utf-8")


def read_archive(path: Path, gbif: bool) -> Read:
    """A Darwin Core Archive whose core is Taxon; its VernacularName extension as common names."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ChecklistError(f"{path}: not a readable zip file: {exc}") from None
    with archive:
        members = {Path(n).name.lower(): n for n in archive.namelist()}
        if "meta.xml" not in members:
            raise ChecklistError(f"{path}: a zip without meta.xml is not a Darwin Core Archive")
        try:
            meta = ElementTree.fromstring(archive.read(members["meta.xml"]))
        except ElementTree.ParseError as exc:
            raise ChecklistError(f"{path}: meta.xml is not well-formed XML: {exc}") from None
        core = next((e for e in meta if _local(e.tag) == "core"), None)
        row_type = (core.get("rowType") or "") if core is not None else ""
        if core is None or term(row_type) != TAXON_ROW_TYPE.lower():
            raise ChecklistError(f"{path}: a Darwin Core Archive whose core is "
                                 f"{term(row_type) or 'missing'!r}, not Taxon; a checklist's core is Taxon")

        def open_table(table: Table) -> IO[str]:
            name = members.get(Path(table.name).name.lower())
            if name is None:
                raise ChecklistError(f"{path}: meta.xml names {table.name}, which is not in the archive")
            return io.TextIOWrapper(archive.open(name), encoding=table.encoding, newline="")

        table = _meta_table(core, path)
        try:
            with open_table(table) as stream:
                out = read_core(table, stream, gbif, table.name)
            for extension in (e for e in meta if _local(e.tag) == "extension"):
                if term(extension.get("rowType") or "") == VERNACULAR_ROW_TYPE.lower():
                    vernacular = _meta_table(extension, path)
                    with open_table(vernacular) as stream:
                        read_vernacular(vernacular, stream, out)
        except UnicodeDecodeError:
            raise ChecklistError(f"{path}: a data file is not in the encoding meta.xml says") from None
    return out


def default_source(path: Path) -> str:
    """The source name of a checklist given without one: its file name without extension."""
    return (path.stem or "checklist")[:64]


def import_checklist(engine: Engine, path: str | Path, source: str | None = None, dry_run: bool = False) -> Report:
    """Load a Darwin Core checklist (CSV/TSV, or a DwC-A zip with a Taxon core) as ``source``
    (default: the file's name), idempotent: taxa are found again by their taxonID. Raises
    ChecklistError when the file cannot be read as a checklist; bad records are skipped and
    listed in the report with their line numbers. GBIF keys: a ``taxonKey``/``gbifKey`` column,
    or the taxonIDs themselves for the GBIF Backbone (its ``datasetID``, or a source named
    ``gbif...``)."""
    path = Path(path)
    if not path.exists():
        raise ChecklistError(f"{path}: no such file")
    if not path.is_file():
        raise ChecklistError(f"{path}: not a file")
    source = (source or default_source(path)).strip()
    if not source or len(source) > 64:
        raise ChecklistError("the source name must be 1 to 64 characters")
    gbif = source.lower().startswith("gbif")
    read = read_archive(path, gbif) if zipfile.is_zipfile(path) else read_text(path, gbif)
    return load_entries(engine, read.entries, source, dry_run=dry_run, extra_names=read.extra, skipped=read.skipped)
