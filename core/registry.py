"""``registry.yaml``: the services on offer and the projects that enable them, validated.

An error names the key and the problem, e.g.
``registry.yaml: projects[0].services.odour: setting 'window_h' must be number, got 'four'``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.licences import KNOWN_LICENCES
from core.types import ConsentChoice, DatasetInfo, ProjectContext

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class RegistryError(ValueError):
    """registry.yaml is missing, malformed or inconsistent."""


SERVICE_STATUSES = ("experimental", "beta", "stable", "deprecated")


class ServiceMaturity(BaseModel):
    """What a service says about itself beyond its code: its documentation and its maturity, a
    technology readiness level (``trl``, 1 basic principles ... 9 proven in operation) and a
    ``status``. Declared in registry.yaml or in the plugin's ``SERVICE_METADATA``; all optional."""

    model_config = ConfigDict(extra="forbid")

    docs: str | None = Field(None, description="a link to the service's documentation (URL or a path under docs/)")
    trl: int | None = Field(None, ge=1, le=9, description="technology readiness level, 1-9")
    status: Literal["experimental", "beta", "stable", "deprecated"] | None = None


class ServiceMetadata(ServiceMaturity):
    """A plugin's own description of its service (the module attribute ``SERVICE_METADATA``);
    registry.yaml's values win over these."""

    summary: str | None = None
    maintainer: str | None = None


class ServiceSpec(ServiceMaturity):
    model_config = ConfigDict(extra="forbid")

    summary: str
    version: str = "0.0.0"
    maintainer: str = ""
    settings: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    """JSON Schema of the per-project settings."""
    config: dict[str, Any] = Field(default_factory=dict)
    """Service-wide configuration (shared by every project), e.g. the models on offer."""
    kinds: list[str] | None = None
    """The kinds of observation the service enriches and checks, in place of those its plugin
    declares (``core.hookspecs.for_kinds``); unset: the plugin's (all kinds if it declares none)."""

    @field_validator("settings")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            jsonschema.Draft202012Validator.check_schema(value)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from exc
        return value


class ConsentChoiceSpec(BaseModel):
    """An optional choice a project asks its contributors (newsletter, follow-up contact...)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    text: str
    version: str = "1"


class PersonSpec(BaseModel):
    """A person or organisation named in a dataset's metadata (EML)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    email: str | None = None
    organisation: str | None = None
    url: str | None = None


class DatasetSpec(BaseModel):
    """What a Darwin Core Archive's ``eml.xml`` says about the project's dataset (GBIF needs
    a title, a publisher, a contact and a creator; ``core.dwca`` names what is missing)."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = None
    publisher: PersonSpec | None = None
    contacts: list[PersonSpec] = Field(default_factory=list)
    creators: list[PersonSpec] = Field(default_factory=list)
    language: str = "en"
    citation: str | None = None
    rights_holder: str | None = None


LOCATION_PRIVACY = ("open", "obscured", "private")


class ProjectSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str
    name: str
    description: str = ""
    licence: str = "CC-BY-4.0"
    licences: list[str] = Field(default_factory=list, description="licences a contributor may choose for an "
                                "observation (the default licence always among them)")
    licence_version: str = Field("1", description="version of the licence text contributors agree to")
    public: bool = True
    auto_publish: bool = False
    timezone: str = "UTC"
    location_precision: int | None = Field(
        None, ge=0, le=6, description="decimal places of coordinates shown to the public"
    )
    obscured_precision: int = Field(1, ge=0, le=6, description="decimal places of an obscured observation's "
                                    "public place (1: a cell of about 11 km)")
    default_location_privacy: Literal["open", "obscured", "private"] = "open"
    comments: bool = Field(True, description="whether observations of the project take comments")
    consent_choices: list[ConsentChoiceSpec] = Field(default_factory=list)
    erasure: Literal["anonymise", "delete"] = Field("anonymise", description="what erasing a person does to "
                                                     "their observations")
    download_purpose: Literal["off", "optional", "required"] = Field(
        "optional", description="whether a download of its data asks why (research, education...: core.data_use)")
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    services: dict[str, dict[str, Any] | None] = Field(default_factory=dict)

    @field_validator("licence")
    @classmethod
    def _licence(cls, value: str) -> str:
        if value not in KNOWN_LICENCES:
            raise ValueError(f"unknown licence {value!r}; one of {', '.join(KNOWN_LICENCES)}")
        return value

    @field_validator("licences")
    @classmethod
    def _licences(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in KNOWN_LICENCES]
        if unknown:
            raise ValueError(f"unknown licence {unknown[0]!r}; one of {', '.join(KNOWN_LICENCES)}")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> "ProjectSpec":
        if self.location_precision is not None and self.obscured_precision > self.location_precision:
            raise ValueError(f"obscured_precision ({self.obscured_precision}) must not be finer than "
                             f"location_precision ({self.location_precision})")
        names = [c.name for c in self.consent_choices]
        if len(set(names)) != len(names) or "licence" in names:
            raise ValueError("consent_choices: each name once, and not 'licence' (the licence is always asked)")
        return self

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG.match(value):
            raise ValueError("must be lower-case letters, digits, '-' or '_' (at most 63)")
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class Registry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    services: dict[str, ServiceSpec] = Field(default_factory=dict)
    projects: list[ProjectSpec] = Field(default_factory=list)

    _contexts: dict[str, ProjectContext] = {}

    def project(self, slug: str) -> ProjectContext:
        """The project ``slug`` with validated settings; KeyError if there is none."""
        return self.contexts()[slug]

    def contexts(self) -> dict[str, ProjectContext]:
        if not self._contexts:
            self._contexts = {p.slug: _context(p, self.services) for p in self.projects}
        return self._contexts

    def projects_enabling(self, service: str) -> list[str]:
        return [p.slug for p in self.projects if service in p.services]


def _with_defaults(schema: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    for key, prop in schema.get("properties", {}).items():
        if key not in out and isinstance(prop, dict) and "default" in prop:
            out[key] = prop["default"]
    return out


def _context(project: ProjectSpec, services: dict[str, ServiceSpec]) -> ProjectContext:
    settings = {
        name: _with_defaults(services[name].settings, values or {}) for name, values in project.services.items()
    }
    return ProjectContext(
        slug=project.slug,
        name=project.name,
        description=project.description,
        licence=project.licence,
        public=project.public,
        auto_publish=project.auto_publish,
        timezone=project.timezone,
        location_precision=project.location_precision,
        services=settings,
        licences=tuple(dict.fromkeys([project.licence, *project.licences])),
        licence_version=project.licence_version,
        obscured_precision=project.obscured_precision,
        default_location_privacy=project.default_location_privacy,
        comments=project.comments,
        consent_choices=tuple(ConsentChoice(c.name, c.text, c.version) for c in project.consent_choices),
        erasure=project.erasure,
        dataset=DatasetInfo(**project.dataset.model_dump()),
    )


def _format_path(parts: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _check(registry: Registry, source: str) -> None:
    seen: set[str] = set()
    for i, project in enumerate(registry.projects):
        where = f"{source}: projects[{i}]"
        if project.slug in seen:
            raise RegistryError(f"{where}.slug: project {project.slug!r} is defined twice")
        seen.add(project.slug)
        for name, values in project.services.items():
            if name not in registry.services:
                offered = ", ".join(sorted(registry.services)) or "none"
                raise RegistryError(
                    f"{where}.services.{name}: no service {name!r} is offered (services: {offered})"
                )
            schema = registry.services[name].settings
            errors = sorted(
                jsonschema.Draft202012Validator(schema).iter_errors(values or {}), key=lambda e: list(e.path)
            )
            if errors:
                err = errors[0]
                key = _format_path(list(err.path))
                where_key = f"setting '{key}'" if key else "settings"
                raise RegistryError(f"{where}.services.{name}: {where_key}: {err.message}")


def parse_registry(text: str, source: str = "registry.yaml") -> Registry:
    """Parse and validate registry text; raise RegistryError naming the key and the problem."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise RegistryError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RegistryError(f"{source}: the top level must be a mapping with 'services' and 'projects'")
    try:
        registry = Registry.model_validate(data)
    except ValidationError as exc:
        # An unknown key is most often a typo that also explains a 'missing' one: name it first.
        err = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        raise RegistryError(f"{source}: {_format_path(err['loc'])}: {message}") from exc
    _check(registry, source)
    return registry


def load_registry(path: Path) -> Registry:
    """Read ``path`` (registry.yaml) and validate it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise RegistryError(
            f"{path}: registry file not found (set OBSERVATORY_REGISTRY_PATH or run from the project folder)"
        ) from exc
    return parse_registry(text, source=str(path))
