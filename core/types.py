"""The values that cross the line between the engine and its plugins.

Plugins see these plain dataclasses, never the database models, so the storage can change
without breaking a plugin (the same reason llm passes a ``register`` callback).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

Severity = Literal["info", "warning", "error"]
Grade = Literal["casual", "needs_id", "research"]
ModerationStatus = Literal["pending", "published", "unpublished", "trashed"]
MODERATION_STATUSES: tuple[str, ...] = ("pending", "published", "unpublished", "trashed")
GRADES: tuple[str, ...] = ("casual", "needs_id", "research")
DoctorLevel = Literal["ok", "warning", "problem"]


@dataclass(frozen=True)
class Location:
    lat: float
    lon: float
    accuracy_m: float | None = None


@dataclass(frozen=True)
class MediaFile:
    """One media file of a draft or an observation, stored by content."""

    sha256: str
    content_type: str
    size: int
    path: Path
    filename: str | None = None
    width: int | None = None
    height: int | None = None
    id: int | None = None

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()


@dataclass(frozen=True)
class Draft:
    """What a client submitted, before anything is stored."""

    project: str
    observed_at: datetime
    location: Location
    kind: str | None
    fields: dict[str, Any]
    media: tuple[MediaFile, ...] = ()
    client_id: str | None = None
    contributor_id: int | None = None
    licence: str | None = None
    """The observation's licence (the project's default when the client chose none)."""
    location_privacy: str = "open"
    """open, obscured or private (``core.privacy``)."""


@dataclass(frozen=True)
class ObservationView:
    """A read-only snapshot of a stored observation, as plugins see it."""

    id: int
    project: str
    kind: str | None
    observed_at: datetime
    location: Location
    fields: dict[str, Any]
    media: tuple[MediaFile, ...]
    contributor_id: int | None
    status: str
    created_at: datetime
    enrichments: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Results of finished enrichments, by plugin name (filled for quality and grading)."""
    licence: str | None = None
    location_privacy: str = "open"


@dataclass(frozen=True)
class Problem:
    """A validation problem. ``path`` is the field path, e.g. ``("fields", "intensity")``."""

    path: tuple[str | int, ...]
    message: str
    code: str = "invalid"
    severity: Severity = "error"


@dataclass(frozen=True)
class Flag:
    """A quality flag on an observation. ``value`` is the measured value, when there is one."""

    code: str
    message: str
    severity: Severity = "warning"
    value: Any = None
    plugin: str | None = None


@dataclass(frozen=True)
class ObservationType:
    """A kind of observation and the JSON Schema of its ``fields``.

    ``schema`` is a JSON Schema object; its ``properties`` may carry ``title`` and ``x-labels``
    (value -> label) so that an app can build a form from it.
    """

    name: str
    title: str
    schema: dict[str, Any]
    description: str = ""
    plugin: str | None = None


@dataclass(frozen=True)
class ExportColumn:
    """An extra export column: ``value(observation)`` returns a CSV-friendly value."""

    name: str
    value: Callable[[ObservationView], Any]
    description: str = ""
    plugin: str | None = None


@dataclass(frozen=True)
class Analysis:
    """A named analysis: ``run(observations, project)`` returns a dict of results.

    A result may hold ``rows`` (list of dicts, for a data frame), ``png`` (bytes) and
    ``geojson`` (a dict).
    """

    name: str
    title: str
    run: Callable[..., dict[str, Any]]
    plugin: str | None = None


@dataclass(frozen=True)
class ConsentChoice:
    """An optional choice a project asks its contributors, with the version of its text."""

    name: str
    text: str
    version: str = "1"


@dataclass(frozen=True)
class DatasetInfo:
    """The project's dataset metadata for Darwin Core Archives (people are dicts with name,
    email, organisation, url)."""

    title: str | None = None
    publisher: dict[str, Any] | None = None
    contacts: list[dict[str, Any]] = field(default_factory=list)
    creators: list[dict[str, Any]] = field(default_factory=list)
    language: str = "en"
    citation: str | None = None
    rights_holder: str | None = None


@dataclass(frozen=True)
class ProjectContext:
    """A project from ``registry.yaml`` as plugins see it."""

    slug: str
    name: str
    description: str
    licence: str
    public: bool
    auto_publish: bool
    timezone: str
    location_precision: int | None
    services: dict[str, dict[str, Any]]
    """Enabled services -> their validated settings."""
    licences: tuple[str, ...] = ()
    """Licences an observation may carry (the default ``licence`` first)."""
    licence_version: str = "1"
    obscured_precision: int = 1
    """Decimal places of an obscured observation's public place."""
    default_location_privacy: str = "open"
    comments: bool = True
    consent_choices: tuple[ConsentChoice, ...] = ()
    erasure: str = "anonymise"
    """What erasing a person does to their observations here: anonymise or delete."""
    dataset: DatasetInfo = field(default_factory=DatasetInfo)

    def settings(self, service: str) -> dict[str, Any]:
        """Settings of ``service`` for this project ({} when it is enabled with none)."""
        return self.services.get(service, {})

    def enables(self, service: str) -> bool:
        return service in self.services


@dataclass(frozen=True)
class DoctorCheck:
    """One finding of ``observatory doctor``: its ``area`` (settings, database, broker, media,
    plugins, or a plugin's own, e.g. models), its ``level``, what was found, and, for a problem
    or a warning, the ``remedy`` (the command to run or the setting to change)."""

    area: str
    level: DoctorLevel
    message: str
    remedy: str = ""


@dataclass(frozen=True)
class CommentView:
    """A comment as plugins see it (``on_comment``): its author's account id (None once erased)."""

    id: int
    observation_id: int
    project: str
    account_id: int | None
    body: str
    created_at: datetime
    hidden: bool = False


@dataclass(frozen=True)
class TaxonRecord:
    """A taxon a plugin offers for the engine's default taxonomy (``register_taxa``), in Darwin
    Core's words: ``scientific_name`` at ``rank``, its ``classification`` (higher ranks to names,
    e.g. ``{"kingdom": "Animalia", "genus": "Canis"}``, only those known), ``common_names``
    (language code to name) and the ``gbif_key`` where known. The engine makes the higher taxa
    and the ancestry from the classification (``core.taxonomy``)."""

    scientific_name: str
    rank: str
    classification: Mapping[str, str] = field(default_factory=dict)
    common_names: Mapping[str, str] = field(default_factory=dict)
    gbif_key: int | None = None


IdentificationChangeKind = Literal["added", "withdrawn", "restored", "community_taxon"]


@dataclass(frozen=True)
class IdentificationChange:
    """What changed in an observation's identifications (``on_identification``).

    ``added``, ``withdrawn`` and ``restored`` are a person's identification (``account_id`` is
    theirs, ``taxon_id`` and ``taxon_name`` what they proposed, ``category`` as iNaturalist
    computes it); ``community_taxon`` is the community taxon changing from ``previous_taxon_id``
    to ``taxon_id`` (None: no community taxon any more), with no person."""

    kind: IdentificationChangeKind
    observation_id: int
    project: str
    taxon_id: int | None
    taxon_name: str | None
    at: datetime
    identification_id: int | None = None
    account_id: int | None = None
    category: str | None = None
    previous_taxon_id: int | None = None


@dataclass(frozen=True)
class BackgroundTask:
    """Long work a plugin runs in the workers (a video job, a live stream), registered with
    ``register_tasks`` and started with ``core.tasks.start_task(engine, name, **kwargs)``.

    ``run(engine, **kwargs)`` does the work in a worker process (or, with the inline dispatcher of
    tests and one-off commands, in a thread of the calling process) and returns a line for the
    worker's log. The engine gives no time limit and no retry: the plugin keeps the work's state in
    its own tables (progress, a checkpoint, a lease) and re-starts work whose worker died from
    ``recover_work``. ``kwargs`` must be JSON-able (they travel through the broker)."""

    name: str
    run: Callable[..., Any]
    description: str = ""
    plugin: str = ""
