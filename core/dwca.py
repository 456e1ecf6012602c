"""Darwin Core Archives for GBIF: a project's observations as an Occurrence core with the Simple
Multimedia extension for photos, described by ``meta.xml`` and ``eml.xml``.

The archive is a zip written to a non-seekable stream (``zipfile`` then writes data descriptors),
so it streams in bounded memory: observations are read ``EXPORT_BATCH`` at a time as for CSV
(``core.export.pages``), occurrence rows go straight into the zip, media rows are spooled to a
temporary file (disk, not memory) and copied in after them, and ``eml.xml`` comes last, once the
licences of the rows are known.

Rules (docs/data-publishers.md says them to users):

- **basisOfRecord**: ``fields.basis_of_record`` when it is ``HumanObservation`` or
  ``MachineObservation``; else the kind's schema flag ``x-basis-of-record`` (a plugin whose kind
  is made by a machine, e.g. tracks from a camera trap, declares ``MachineObservation``); else
  ``HumanObservation``.
- **scientificName / taxonRank**: the first text among the fields ``scientific_name``,
  ``scientificName``, ``species``, ``taxon`` (rank from ``taxon_rank`` / ``taxonRank``); else the
  ``species_id`` enrichment's top suggestion when it was accepted: outcome ``identified`` and no
  ``low_confidence`` flag (its score reached the project's ``min_score``); its rank and kingdom
  go with it, and ``identificationRemarks`` names the model. Else empty.
- **places**: as the public sees them (``core.privacy``), in every scope: an archive is made to be
  published. Generalised places say so (``informationWithheld``, ``dataGeneralizations``); a
  private one has no coordinates and ``informationWithheld`` says why.
- **recordedBy**: the contributor's display name, only when their newest answer to the consent
  choice ``attribution`` is yes (``core.consent``). Never an account id or an e-mail.
- **rightsHolder**: the dataset's ``rights_holder``; else the recorder's name where they agreed to
  be named; else the publisher's name.
- **license**: the observation's licence as a URI; ``gbif_only`` keeps CC0, CC BY and CC BY-NC
  records only. ``eml.xml`` states the most restrictive GBIF licence among the rows (CC BY-NC over
  CC BY over CC0), or the project's licence when no row carries one.
"""

from __future__ import annotations

import io
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, BinaryIO, Iterator
from zoneinfo import ZoneInfo

from sqlalchemy import select, type_coerce

from core.consent import ATTRIBUTION, agreed
from core.db.models import Account
from core.engine import Engine
from core.errors import Conflict
from core.export import (FIELDS_TEXT, OBS, PRIVACY, RAW, ExportOptions, ExportRecord, Page, RowCount, as_utc,
                         audited, is_sqlite_time, iso_utc, pages, parsed, shown_place_columns)
from core.licences import licence_uri
from core.privacy import public_digits
from core.projects import project_kinds
from core.types import ProjectContext

DWC = "http://rs.tdwg.org/dwc/terms/"
DC = "http://purl.org/dc/terms/"
OCCURRENCE_ROW_TYPE = DWC + "Occurrence"
MULTIMEDIA_ROW_TYPE = "http://rs.gbif.org/terms/1.0/Multimedia"

OCCURRENCE_TERMS: tuple[tuple[str, str], ...] = (
    ("occurrenceID", DWC), ("basisOfRecord", DWC), ("occurrenceStatus", DWC), ("eventDate", DWC),
    ("decimalLatitude", DWC), ("decimalLongitude", DWC), ("geodeticDatum", DWC),
    ("coordinateUncertaintyInMeters", DWC), ("informationWithheld", DWC), ("dataGeneralizations", DWC),
    ("scientificName", DWC), ("taxonRank", DWC), ("kingdom", DWC), ("identificationRemarks", DWC),
    ("recordedBy", DWC), ("license", DC), ("rightsHolder", DC), ("modified", DC),
    ("institutionCode", DWC), ("collectionCode", DWC), ("datasetName", DWC), ("catalogNumber", DWC),
)
"""The Occurrence core's columns, in order (occurrenceID is also the row's id)."""
MULTIMEDIA_TERMS: tuple[tuple[str, str], ...] = (
    ("type", DC), ("format", DC), ("identifier", DC), ("references", DC), ("created", DC),
    ("license", DC), ("rightsHolder", DC),
)
"""The Simple Multimedia extension's columns after ``coreid``."""

BASES_OF_RECORD = ("HumanObservation", "MachineObservation")
BASIS_FIELD = "basis_of_record"
BASIS_SCHEMA_FLAG = "x-basis-of-record"
NAME_FIELDS = ("scientific_name", "scientificName", "species", "taxon")
RANK_FIELDS = ("taxon_rank", "taxonRank")
SPECIES_SERVICE = "species_id"
GBIF_ORDER = ("CC0-1.0", "CC-BY-4.0", "CC-BY-NC-4.0")
"""GBIF's licences from the least to the most restrictive."""
LICENCE_TITLES = {
    "CC0-1.0": "Public Domain (CC0 1.0)",
    "CC-BY-4.0": "Creative Commons Attribution (CC-BY) 4.0 License",
    "CC-BY-NC-4.0": "Creative Commons Attribution Non Commercial (CC-BY-NC) 4.0 License",
}
FLUSH_BYTES = 64 * 1024
NUMBERS_KEPT = 100_000


class DatasetIncomplete(Conflict):
    """The project's dataset metadata lacks what GBIF needs; the message names each registry key."""

    code = "dataset_incomplete"


# -- eml.xml --------------------------------------------------------------------------------------


def missing_dataset_keys(project: ProjectContext) -> list[str]:
    """The registry.yaml keys GBIF needs that ``project`` leaves empty (a title falls back to the
    project's name)."""
    where = f"projects[{project.slug}]"
    dataset = project.dataset
    missing = []
    if not (project.description or "").strip():
        missing.append(f"{where}.description")
    if not dataset.publisher or not str(dataset.publisher.get("name") or "").strip():
        missing.append(f"{where}.dataset.publisher")
    if not dataset.contacts:
        missing.append(f"{where}.dataset.contacts")
    if not dataset.creators:
        missing.append(f"{where}.dataset.creators")
    return missing


def check_dataset(project: ProjectContext) -> None:
    """Raise DatasetIncomplete (409) naming every key GBIF needs that registry.yaml leaves empty."""
    missing = missing_dataset_keys(project)
    if missing:
        raise DatasetIncomplete(
            f"project {project.slug!r}: a Darwin Core Archive for GBIF needs {', '.join(missing)} in registry.yaml "
            "(description: the dataset's abstract; publisher, contacts and creators: each a name, with email, "
            "organisation and url where known)")


def _party(parent: ET.Element, tag: str, person: dict[str, Any], *, organisation_only: bool = False,
           role: str | None = None) -> None:
    element = ET.SubElement(parent, tag)
    name = str(person.get("name") or "").strip()
    organisation = person.get("organisation")
    if organisation_only and not organisation:
        organisation, name = name, ""
    if name:
        ET.SubElement(ET.SubElement(element, "individualName"), "surName").text = name
    if organisation:
        ET.SubElement(element, "organizationName").text = str(organisation)
    if person.get("email"):
        ET.SubElement(element, "electronicMailAddress").text = str(person["email"])
    if person.get("url"):
        ET.SubElement(element, "onlineUrl").text = str(person["url"])
    if role:
        ET.SubElement(element, "role").text = role


def dataset_licence(project: ProjectContext, licences: set[str]) -> str:
    """The licence ``eml.xml`` states: the most restrictive GBIF licence among the rows' licences,
    or the project's licence when none of them is one."""
    found = [licence for licence in GBIF_ORDER if licence in licences]
    return found[-1] if found else project.licence


def eml_xml(project: ProjectContext, base_url: str, licence: str, today: date | None = None) -> bytes:
    """The dataset's metadata in GBIF's EML profile (check_dataset first)."""
    dataset = project.dataset
    today = today or date.today()
    ET.register_namespace("eml", "eml://ecoinformatics.org/eml-2.1.1")
    root = ET.Element("{eml://ecoinformatics.org/eml-2.1.1}eml", {
        "packageId": f"{base_url}/api/v1/projects/{project.slug}/export/dwca",
        "system": "http://gbif.org", "scope": "system",
        "{http://www.w3.org/XML/1998/namespace}lang": dataset.language or "en",
    })
    ds = ET.SubElement(root, "dataset")
    ET.SubElement(ds, "alternateIdentifier").text = f"{base_url}/api/v1/projects/{project.slug}"
    ET.SubElement(ds, "title", {"{http://www.w3.org/XML/1998/namespace}lang": dataset.language or "en"}).text = (
        dataset.title or project.name)
    for creator in dataset.creators:
        _party(ds, "creator", creator)
    publisher = dataset.publisher or {}
    _party(ds, "metadataProvider", publisher, organisation_only=True)
    _party(ds, "associatedParty", publisher, organisation_only=True, role="publisher")
    ET.SubElement(ds, "pubDate").text = today.isoformat()
    ET.SubElement(ds, "language").text = dataset.language or "en"
    ET.SubElement(ET.SubElement(ds, "abstract"), "para").text = project.description
    para = ET.SubElement(ET.SubElement(ds, "intellectualRights"), "para")
    uri = licence_uri(licence)
    if uri:
        para.text = "This work is licensed under a "
        link = ET.SubElement(para, "ulink", {"url": uri})
        title = ET.SubElement(link, "citetitle")
        title.text = LICENCE_TITLES.get(licence, licence)
    else:
        para.text = f"All rights reserved ({licence})."
    for contact in dataset.contacts:
        _party(ds, "contact", contact)
    gbif = ET.SubElement(ET.SubElement(ET.SubElement(root, "additionalMetadata"), "metadata"), "gbif")
    ET.SubElement(gbif, "dateStamp").text = today.isoformat()
    if dataset.citation:
        ET.SubElement(gbif, "citation").text = dataset.citation
    ET.indent(root)
    if uri:  # a sentence, not a tree: no indentation inside it
        link.text, title.tail, link.tail = None, None, "."
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


# -- meta.xml -------------------------------------------------------------------------------------


def meta_xml() -> bytes:
    """The archive descriptor: which file holds which terms."""
    ns = "http://rs.tdwg.org/dwc/text/"
    ET.register_namespace("", ns)
    root = ET.Element(f"{{{ns}}}archive", {"metadata": "eml.xml"})
    attributes = {"encoding": "UTF-8", "fieldsTerminatedBy": "\\t", "linesTerminatedBy": "\\n",
                  "fieldsEnclosedBy": "", "ignoreHeaderLines": "1"}
    core = ET.SubElement(root, f"{{{ns}}}core", {**attributes, "rowType": OCCURRENCE_ROW_TYPE})
    ET.SubElement(ET.SubElement(core, f"{{{ns}}}files"), f"{{{ns}}}location").text = "occurrence.txt"
    ET.SubElement(core, f"{{{ns}}}id", {"index": "0"})
    for index, (term, namespace) in enumerate(OCCURRENCE_TERMS):
        ET.SubElement(core, f"{{{ns}}}field", {"index": str(index), "term": namespace + term})
    extension = ET.SubElement(root, f"{{{ns}}}extension", {**attributes, "rowType": MULTIMEDIA_ROW_TYPE})
    ET.SubElement(ET.SubElement(extension, f"{{{ns}}}files"), f"{{{ns}}}location").text = "multimedia.txt"
    ET.SubElement(extension, f"{{{ns}}}coreid", {"index": "0"})
    for index, (term, namespace) in enumerate(MULTIMEDIA_TERMS, start=1):
        ET.SubElement(extension, f"{{{ns}}}field", {"index": str(index), "term": namespace + term})
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


# -- the rules ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Taxon:
    name: str
    rank: str | None = None
    kingdom: str | None = None
    remarks: str | None = None


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def taxon_of(record: ExportRecord) -> Taxon | None:
    """scientificName, taxonRank and kingdom where known (the module's rule)."""
    return _taxon(record.fields, record.enrichments, record.flags)


def _named(fields: dict[str, Any]) -> tuple[str, str] | None:
    """The first name among the fields (``NAME_FIELDS``) and the first rank (empty: none)."""
    get = fields.get
    for key in NAME_FIELDS:
        name = get(key)
        if isinstance(name, str) and (name := name.strip()):
            for key in RANK_FIELDS:
                rank = get(key)
                if isinstance(rank, str) and (rank := rank.strip()):
                    return name, rank
            return name, ""
    return None


def _taxon(fields: dict[str, Any], enrichments: dict[str, Any], flags: list[tuple[str, str]]) -> Taxon | None:
    named = _named(fields)
    if named is not None:
        return Taxon(named[0], named[1] or None)
    result = enrichments.get(SPECIES_SERVICE) or {}
    best = result.get("best")
    if result.get("outcome") != "identified" or not isinstance(best, dict) or not _text(best.get("scientific_name")):
        return None
    if (SPECIES_SERVICE, "low_confidence") in flags:
        return None
    model = result.get("model") or {}
    score = best.get("score")
    remarks = (f"suggested by the {SPECIES_SERVICE} model {model.get('name', '?')} {model.get('version', '')}".rstrip()
               + (f" (score {score:.2f})" if isinstance(score, (int, float)) else ""))
    return Taxon(best["scientific_name"].strip(), _text(best.get("rank")), _text(best.get("kingdom")), remarks)


_NO_TAXON = ("", "", "", "")


def _taxon_cells(fields: dict[str, Any], enrichments: dict[str, Any] | None,
                 flags: list[tuple[str, str]]) -> tuple[str, str, str, str]:
    """scientificName, taxonRank, kingdom and identificationRemarks of a row (``taxon_of``)."""
    named = _named(fields)
    if named is not None:
        return named[0], named[1], "", ""
    taxon = _taxon(fields, enrichments, flags) if enrichments else None
    return _NO_TAXON if taxon is None else (taxon.name, taxon.rank or "", taxon.kingdom or "", taxon.remarks or "")


def basis_of_record(record: ExportRecord, kind_flags: dict[str, str]) -> str:
    """HumanObservation, or MachineObservation where the observation or its kind says so."""
    return _basis(record.fields, record.kind, kind_flags)


def _basis(fields: dict[str, Any], kind: str | None, kind_flags: dict[str, str]) -> str:
    value = fields.get(BASIS_FIELD)
    if value in BASES_OF_RECORD:
        return str(value)
    return kind_flags.get(kind or "", "HumanObservation")


def _kind_flags(engine: Engine, project: ProjectContext) -> dict[str, str]:
    flags = {}
    for kind in project_kinds(engine, project):
        value = (kind.schema or {}).get(BASIS_SCHEMA_FLAG)
        if value in BASES_OF_RECORD:
            flags[kind.name] = value
    return flags


def _number(value: float) -> str:
    """A coordinate or an uncertainty: the shortest text that reads back as the same double, without
    a trailing ``.0`` (41 for 41.0)."""
    text = repr(float(value))
    if text.endswith(".0") and -1e15 < value < 1e15:
        return "0" if value == 0 else text[:-2]
    return text


class _Numbers(dict[float, str]):
    """``_number`` of each value seen, kept (up to ``NUMBERS_KEPT`` of them)."""

    def __missing__(self, value: float) -> str:
        if len(self) >= NUMBERS_KEPT:
            self.clear()
        self[value] = text = _number(value)
        return text


_LAST_MICROSECOND = timedelta(minutes=59, seconds=59, microseconds=999_999)


class _Shifts(dict[str, "tuple[timedelta, str] | None"]):
    """A UTC hour (``2026-05-01 07``) -> the project's time zone's offset all through it and that
    offset as ISO 8601 writes it (``+02:00``); None for an hour in which the offset changes (and
    for an hour that cannot be read)."""

    def __init__(self, zone: ZoneInfo) -> None:
        super().__init__()
        self.zone = zone

    def __missing__(self, hour: str) -> tuple[timedelta, str] | None:
        if len(self) >= NUMBERS_KEPT:
            self.clear()
        shift = None
        try:  # the offsets at the hour's first and last microsecond (added in UTC, not on the wall clock)
            utc = datetime.fromisoformat(hour + ":00:00+00:00")
            start, end = utc.astimezone(self.zone), (utc + _LAST_MICROSECOND).astimezone(self.zone)
        except (ValueError, OverflowError):
            start = end = None
        if start is not None and end is not None:
            offset = start.utcoffset()
            if offset is not None and end.utcoffset() == offset:
                shift = (offset, start.isoformat()[19:])
        self[hour] = shift
        return shift


def _clean(value: Any) -> str:
    """A cell of a tab-separated file without quotes: no tab, no line break."""
    if value is None:
        return ""
    text = str(value)
    if "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\r\n", " ").replace("\t", " ").replace("\n", " ").replace("\r", " ")
    return text


# -- the archive ----------------------------------------------------------------------------------


class _Pipe(io.RawIOBase):
    """What zipfile writes into: kept until drained (tell works, seek does not: a stream)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._size += len(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    @property
    def pending(self) -> int:
        return self._size

    def drain(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        self._size = 0
        return out


def _names_of_consenting(engine: Engine, project: ProjectContext) -> dict[int, str]:
    """Display names of the accounts that agreed to be named as recorders in this project."""
    ids = sorted(agreed(engine, project.slug, ATTRIBUTION))
    names: dict[int, str] = {}
    with engine.readers() as session:
        for start in range(0, len(ids), 500):
            for account_id, name in session.execute(
                    select(Account.id, Account.display_name).where(Account.id.in_(ids[start:start + 500]))):
                if name and name.strip():
                    names[account_id] = name.strip()
    return names


def _line(values: list[Any]) -> bytes:
    """One row of a tab-separated file; cells are cleaned only when the row needs it."""
    cells = ["" if v is None else v if type(v) is str else str(v) for v in values]
    line = "\t".join(cells)
    if line.count("\t") != len(cells) - 1 or "\n" in line or "\r" in line:
        line = "\t".join(_clean(v) for v in cells)
    return (line + "\n").encode("utf-8")


_OCCURRENCE_COLUMNS = len(OCCURRENCE_TERMS)


def _occurrence_select(project: ProjectContext) -> tuple[Any, ...]:
    """What an occurrence row reads: id, kind, observed_at, the place as the public sees it
    (``core.export.shown_place_columns``: lat, lon, location_generalised, uncertainty), location
    privacy, fields' JSON text, licence, contributor (for ``recordedBy`` only) and updated_at."""
    lat, lon, _, generalised, uncertainty = shown_place_columns(project, public=True)
    return (OBS.c.id, OBS.c.kind, type_coerce(OBS.c.observed_at, RAW), lat, lon, generalised, uncertainty,
            PRIVACY, FIELDS_TEXT, OBS.c.licence, OBS.c.contributor_id,
            type_coerce(OBS.c.updated_at, RAW))


def _place_cells(project: ProjectContext) -> tuple[tuple[str, ...], dict[str, tuple[str, str]]]:
    """The six place cells of a withheld place (decimalLatitude to dataGeneralizations), and the
    informationWithheld and dataGeneralizations of a generalised one by its privacy."""
    withheld = ("location withheld at the contributor's request (location privacy: private)", "")
    generalised = {}
    for privacy in ("open", "obscured"):
        digits = public_digits(project, privacy)
        why = "at the contributor's request" if privacy == "obscured" else "by the project"
        places = "place" if digits == 1 else "places"
        generalised[privacy] = (f"exact coordinates withheld {why}",
                                f"coordinates rounded to {digits} decimal {places} of a degree")
    return ("", "", "", "", *withheld), generalised


class _Occurrences:
    """The occurrence and multimedia rows of one archive: what every row needs, worked out once."""

    def __init__(self, engine: Engine, project: ProjectContext) -> None:
        self.project = project
        self.zone = ZoneInfo(project.timezone)
        self.kind_flags = _kind_flags(engine, project)
        self.names = _names_of_consenting(engine, project)
        dataset = project.dataset
        publisher = (dataset.publisher or {})
        self.publisher_name = str(publisher.get("organisation") or publisher.get("name") or project.name)
        self.rights = _clean(dataset.rights_holder) if dataset.rights_holder else None
        self.tail = "\t".join(_clean(v) for v in (self.publisher_name, project.slug, dataset.title or project.name))
        self.withheld, self.generalised = _place_cells(project)
        self.prefix = f"{engine.settings.base_url}/api/v1/observations/"
        self.uris: dict[Any, str] = {}
        """A stored licence (None: the project's) -> its URI."""
        self.licences: set[str] = set()
        """The licences of the rows written (eml.xml states the most restrictive)."""
        self.numbers = _Numbers()
        self.shifts = _Shifts(self.zone)

    def licence_uri(self, stored: str | None) -> str:
        found = self.uris.get(stored)
        if found is None:
            licence = stored or self.project.licence
            self.licences.add(licence)
            self.uris[stored] = found = licence_uri(licence)
        return found

    def rights_holder(self, contributor_id: int | None) -> tuple[str | None, str]:
        """recordedBy (None: not named) and rightsHolder of a row."""
        recorder = self.names.get(contributor_id) if contributor_id is not None else None
        return recorder, self.rights or recorder or self.publisher_name

    def event_date(self, observed_at: Any) -> str:
        """eventDate: the time in the project's time zone, with its offset. A time as SQLite keeps
        it is shifted by its hour's offset, worked out once per hour (``_Shifts``)."""
        if is_sqlite_time(observed_at):
            shift = self.shifts[observed_at[:13]]
            if shift is not None:
                return (datetime.fromisoformat(observed_at) + shift[0]).isoformat() + shift[1]
        return as_utc(observed_at).astimezone(self.zone).isoformat()

    def text(self, page: Page) -> bytes:
        """The page's occurrence rows, each line ended by a newline; a page whose text has a tab or
        a line break too many (in a name, say) is made again with each cell cleaned."""
        lines = self.lines(page, clean=False)
        text = "\n".join(lines)
        if text.count("\t") != (_OCCURRENCE_COLUMNS - 1) * len(lines) or text.count("\n") != len(lines) - 1 or \
                "\r" in text:
            text = "\n".join(self.lines(page, clean=True))
        return (text + "\n").encode("utf-8")

    def lines(self, page: Page, clean: bool) -> list[str]:
        """The page's occurrence rows as lines (no newline); ``clean``: each cell without tabs or
        line breaks."""
        enrichments, flags, kind_flags, numbers = page.enrichments, page.flags, self.kind_flags, self.numbers
        withheld, generalised, prefix, tail = self.withheld, self.generalised, self.prefix, self.tail
        lines: list[str] = []
        append = lines.append
        for (obs_id, kind, observed_at, lat, lon, shown_generalised, uncertainty, privacy, _, stored_licence,
             contributor_id, updated), fields in zip(page.rows, parsed(page.rows, 8)):
            recorder, rights_holder = self.rights_holder(contributor_id)
            if lat is None:
                place = withheld
            else:  # places on a grid repeat: each number is written once (numbers keeps them)
                place = (numbers[lat], numbers[lon], "WGS84", "" if uncertainty is None else numbers[uncertainty],
                         *(generalised[privacy] if shown_generalised == "true" else ("", "")))
            cells = (prefix + str(obs_id), _basis(fields, kind, kind_flags), "present", self.event_date(observed_at),
                     *place, *_taxon_cells(fields, enrichments.get(obs_id), flags.get(obs_id, ())), recorder or "",
                     self.licence_uri(stored_licence), rights_holder, iso_utc(updated))
            append("\t".join(map(_clean, cells) if clean else cells) + "\t" + tail + "\t" + str(obs_id))
        return lines

    def media_lines(self, page: Page) -> bytes:
        """The page's rows of the Simple Multimedia extension: one per image."""
        media = page.media
        lines = []
        for (obs_id, _, observed_at, *_, stored_licence, contributor_id, _) in page.rows:
            images = [item for item in media.get(obs_id, ()) if item.content_type.startswith("image/")]
            if not images:
                continue
            occurrence_id, created = self.prefix + str(obs_id), self.event_date(observed_at)
            licence, rights_holder = self.licence_uri(stored_licence), self.rights_holder(contributor_id)[1]
            lines += [_line([occurrence_id, "StillImage", item.content_type, f"{occurrence_id}/media/{item.id}",
                             occurrence_id, created, licence, rights_holder]) for item in images]
        return b"".join(lines)


def _archive_chunks(engine: Engine, project: ProjectContext, options: ExportOptions,
                    counter: RowCount) -> Iterator[bytes]:
    occurrences = _Occurrences(engine, project)
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED) as archive, \
            tempfile.TemporaryFile() as spool:
        spool.write(_line(["coreid", *(term for term, _ in MULTIMEDIA_TERMS)]))
        with archive.open("occurrence.txt", "w", force_zip64=True) as core:
            core.write(_line([term for term, _ in OCCURRENCE_TERMS]))
            # an archive is made to be published: places as the public sees them, in every scope
            for page in pages(engine, project, options, _occurrence_select(project)):
                core.write(occurrences.text(page))
                if page.media:
                    spool.write(occurrences.media_lines(page))
                counter.rows += len(page.rows)
                if pipe.pending >= FLUSH_BYTES:
                    yield pipe.drain()
        spool.seek(0)
        with archive.open("multimedia.txt", "w", force_zip64=True) as extension:
            while block := spool.read(FLUSH_BYTES):
                extension.write(block)
                if pipe.pending >= FLUSH_BYTES:
                    yield pipe.drain()
        archive.writestr("meta.xml", meta_xml())
        base = engine.settings.base_url
        archive.writestr("eml.xml", eml_xml(project, base, dataset_licence(project, occurrences.licences)))
    yield pipe.drain()


def archive(engine: Engine, project: ProjectContext, options: ExportOptions | None = None) -> Iterator[bytes]:
    """The Darwin Core Archive of ``project`` as chunks of a zip. Raises DatasetIncomplete at once
    (before any byte) when registry.yaml lacks what GBIF needs; a staff archive (``scope="all"``:
    unpublished observations too) is audited as exports are."""
    options = options or ExportOptions()
    check_dataset(project)
    counter = RowCount()
    chunks = _archive_chunks(engine, project, options, counter)
    if options.public:
        return chunks
    return audited(engine, project, "dwca", options, chunks, counter)


def write_archive(engine: Engine, project: ProjectContext, out: BinaryIO,
                  options: ExportOptions | None = None) -> None:
    """Write the archive to ``out`` (a file or a stream)."""
    for chunk in archive(engine, project, options):
        out.write(chunk)


__all__ = ["DatasetIncomplete", "archive", "basis_of_record", "check_dataset", "eml_xml", "meta_xml",
           "missing_dataset_keys", "taxon_of", "write_archive"]
