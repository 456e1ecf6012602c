"""Decode, preprocess, run and rank: the species_id classifier at work.

* Decoding is OpenCV's ``cv2.imdecode``, whose ``IMREAD_COLOR`` (and ``IMREAD_REDUCED_COLOR_*``)
  modes apply the EXIF orientation, so a phone photo taken sideways is seen upright. Large
  photos are decoded at 1/2, 1/4 or 1/8 scale when that still leaves more pixels than the model
  and the photo checks need: libjpeg does it while decoding a sequential JPEG (much faster, far
  less memory, and the same picture for the model); other formats are decoded whole, then
  reduced. ``decode_cost`` says how many pixels a decoding holds, which the callers budget
  (per request or observation) and ``DECODE_GATE`` bounds (per process).
* One ``onnxruntime.InferenceSession`` per model and per process, loaded on first use and kept
  (``load_model``; keyed by name, version and file). Images go through it in batches.
* Scores are softmax probabilities over the model's classes. Classes that stand for the same
  taxon are added up (the five ImageNet cat classes are one *Felis catus*), and several photos
  of one observation are combined by the mean of their probability vectors before that.
* Only organisms (labels with a kingdom) are reported as taxa. When the best entry of the
  ranking is not an organism, the answer is "no organism recognised" (Pl@ntNet's rejection),
  unless ``no_reject`` is set, when things are listed too.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from plugins.species_id import model_build
from plugins.species_id.catalogue import Label, LabelSet, ModelSpec, Preprocessing, load_labels

NO_ORGANISM = "no organism recognised"
PREPROCESS_BLOCK = 64  # photos preprocessed before their batches run (about 38 MB at 224 × 224)
QUALITY_SIDE = 512  # photo checks look at the photo with its longer side at most this long
_SPECIES_RANKS = {"species", "subspecies", "variety", "form", "cultivar"}


class ModelError(RuntimeError):
    """A model cannot be built, loaded or run as described; the message names the model and file."""


class ImageError(ValueError):
    """An image cannot be decoded; ``code`` is a stable machine code (as MediaError's)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------------------------
# Decoding and preprocessing
# --------------------------------------------------------------------------------------------


def reduction(width: int | None, height: int | None, min_side: int) -> int:
    """The scale (1, 2, 4 or 8) a photo of this size is decoded at: the largest that keeps its
    shorter side >= ``min_side`` and its longer side >= QUALITY_SIDE (what the model and the
    photo checks look at)."""
    if not width or not height:
        return 1
    for factor in (8, 4, 2):
        if min(width, height) // factor >= min_side and max(width, height) // factor >= QUALITY_SIDE:
            return factor
    return 1


_REDUCED = {1: "IMREAD_COLOR", 2: "IMREAD_REDUCED_COLOR_2", 4: "IMREAD_REDUCED_COLOR_4", 8: "IMREAD_REDUCED_COLOR_8"}
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_PROGRESSIVE = {0xC2, 0xC6, 0xCA, 0xCE}


def jpeg_sequential(data: bytes) -> bool:
    """Whether a JPEG is sequential (baseline): libjpeg then decodes it reduced in reduced memory.
    A progressive JPEG keeps every coefficient of the full image while it decodes (about 2 bytes
    a pixel, whatever the scale), so it costs what a PNG of its size costs."""
    if data[:2] != b"\xff\xd8":
        return False
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return False
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _SOF:
            return marker not in _PROGRESSIVE
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, or the scan began before any frame header
            return False
        i += 2 + int.from_bytes(data[i + 2: i + 4], "big")
    return False


def decode_cost(data: bytes, width: int, height: int, min_side: int) -> int:
    """The pixels the decoder holds at once for this photo: a sequential JPEG is decoded at its
    reduced scale by libjpeg; PNG, WebP, GIF and progressive JPEG are decoded whole (a reduced
    mode then only resizes after the decoding)."""
    factor = reduction(width, height, min_side)
    if factor > 1 and jpeg_sequential(data):
        return -(-width // factor) * -(-height // factor)
    return width * height


def decode(data: bytes, width: int | None = None, height: int | None = None, *, min_side: int = 256,
           name: str = "image") -> np.ndarray:
    """BGR uint8 pixels, upright (EXIF orientation applied); raise ImageError.

    ``width``/``height`` (from the header) let a large photo be decoded at a reduced scale that
    keeps its shorter side >= ``min_side`` and its longer side >= QUALITY_SIDE: libjpeg decodes
    a sequential JPEG reduced; other formats are decoded whole and reduced at once, so only the
    reduced copy is kept.
    """
    import cv2

    flag = getattr(cv2, _REDUCED[reduction(width, height, min_side)])
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    except cv2.error as exc:
        raise ImageError("media_corrupt", f"{name}: cannot be decoded: {str(exc).strip().splitlines()[-1]}") from None
    if image is None or image.size == 0:
        raise ImageError("media_corrupt", f"{name}: the image data cannot be decoded (damaged or not an image)")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image


class GateTimeout(RuntimeError):
    """The decoding gate stayed full for longer than the caller would wait."""


class PixelGate:
    """Bounds the pixels this process decodes at once (a decode waits while others hold the
    gate), so that memory does not grow with the number of requests or photos in flight."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.in_flight = 0

    @contextmanager
    def hold(self, pixels: int, capacity: int, timeout_s: float) -> Iterator[None]:
        pixels = max(0, min(pixels, capacity))  # one photo larger than the gate goes alone
        with self._cond:
            if not self._cond.wait_for(lambda: self.in_flight + pixels <= capacity, timeout_s):
                raise GateTimeout(f"{self.in_flight} pixels were being decoded for over {timeout_s:g} s")
            self.in_flight += pixels
        try:
            yield
        finally:
            with self._cond:
                self.in_flight -= pixels
                self._cond.notify_all()


DECODE_GATE = PixelGate()


def _interpolation(pre: Preprocessing, factor: float) -> int:
    import cv2

    if pre.interpolation == "nearest":
        return cv2.INTER_NEAREST
    if pre.interpolation == "area":
        return cv2.INTER_AREA
    # by now the image shrinks by at most 2 (see Normaliser): bilinear (or bicubic) is as good as
    # area averaging there, and several times faster
    return cv2.INTER_CUBIC if pre.interpolation == "bicubic" else cv2.INTER_LINEAR


class Normaliser:
    """``(pixel * scale - mean) / std`` in the model's colour order, as one multiply-add."""

    def __init__(self, pre: Preprocessing):
        scale = np.float32(pre.scale)
        mean, std = np.asarray(pre.mean, np.float32), np.asarray(pre.std, np.float32)
        # constants in the model's channel order; pixels are BGR and picked per channel below
        self.multiply = (scale / std).astype(np.float32)
        self.add = (-mean / std).astype(np.float32)
        self.rgb = pre.colour_order == "RGB"
        self.pre = pre

    def __call__(self, bgr: np.ndarray, out: np.ndarray) -> None:
        """Resize the shorter side, centre-crop, normalise, write into ``out`` (CHW or HWC)."""
        import cv2

        pre = self.pre
        height, width = bgr.shape[:2]
        # the crop is a centred square within the shorter side: cut the source to its central square
        # first, so that nothing is resized only to be thrown away (a third of a 3:2 photo)
        if width > height:
            left = (width - height) // 2
            bgr, width = bgr[:, left: left + height], height
        elif height > width:
            top = (height - width) // 2
            bgr, height = bgr[top: top + width], width
        if pre.interpolation in ("bilinear", "bicubic") and height >= 2 * pre.resize:
            if height % pre.resize == 0:
                # an exact integer factor: area averaging, which OpenCV does fast at such factors
                bgr = cv2.resize(bgr, (pre.resize, pre.resize), interpolation=cv2.INTER_AREA)
                height = width = pre.resize
            else:
                # halve with a Gaussian pyramid (anti-aliased, about three times faster than area
                # averaging at odd factors) while the photo is over twice too large; bilinear finishes
                while height >= 2 * pre.resize and height // 2 >= pre.crop:
                    bgr = cv2.pyrDown(bgr)
                    height = width = bgr.shape[0]
        factor = pre.resize / min(height, width)
        new_h, new_w = max(pre.crop, round(height * factor)), max(pre.crop, round(width * factor))
        if (new_h, new_w) != (height, width):
            bgr = cv2.resize(bgr, (new_w, new_h), interpolation=_interpolation(pre, factor))
        top, left = (new_h - pre.crop) // 2, (new_w - pre.crop) // 2
        crop = bgr[top: top + pre.crop, left: left + pre.crop]
        if pre.layout == "NCHW":  # plane by plane: several times faster than on the interleaved pixels
            planes = cv2.split(crop)
            for i in range(3):
                plane = out[i]
                np.multiply(planes[2 - i if self.rgb else i], self.multiply[i], out=plane, dtype=np.float32,
                            casting="unsafe")
                plane += self.add[i]
            return
        pixels = (crop[..., ::-1] if self.rgb else crop).astype(np.float32)
        pixels *= self.multiply
        pixels += self.add
        out[...] = pixels


# --------------------------------------------------------------------------------------------
# Taxa: classes grouped by the taxon they stand for
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Taxon:
    key: str
    scientific_name: str | None
    rank: str | None
    kingdom: str | None
    family: str | None
    genus: str | None
    gbif_id: str | None
    organism: bool
    members: tuple[int, ...]


@dataclass
class Taxa:
    group_of: np.ndarray
    taxa: list[Taxon]
    organism: np.ndarray
    labels: tuple[Label, ...]

    @classmethod
    def of(cls, labels: Sequence[Label]) -> "Taxa":
        keys: dict[str, int] = {}
        members: list[list[int]] = []
        group_of = np.empty(len(labels), np.int64)
        for label in labels:
            if label.organism:
                key = "taxon:" + (label.scientific_name or label.name).lower()
            else:
                key = f"class:{label.index}"
            if key not in keys:
                keys[key] = len(members)
                members.append([])
            group_of[label.index] = keys[key]
            members[keys[key]].append(label.index)
        taxa = []
        for key, group in keys.items():
            first = labels[members[group][0]]
            genus = first.genus
            if genus is None and first.organism and first.scientific_name and (first.rank or "species") in _SPECIES_RANKS:
                words = first.scientific_name.split()
                genus = words[0] if len(words) >= 2 else None
            taxa.append(Taxon(key, first.scientific_name if first.organism else None, first.rank, first.kingdom,
                              first.family, genus, first.gbif_id, first.organism, tuple(members[group])))
        return cls(group_of, taxa, np.array([t.organism for t in taxa], bool), tuple(labels))


def _entry(taxa: Taxa, group: int, score: float, probs: np.ndarray) -> dict[str, Any]:
    taxon = taxa.taxa[group]
    if len(taxon.members) == 1:
        members = list(taxon.members)
    else:
        found = np.asarray(taxon.members)
        members = found[np.argsort(-probs[found], kind="stable")][:5].tolist()
    shown = [i for i in members if probs[i] >= 5e-4] or members[:1]
    classes = [{"index": i, "name": taxa.labels[i].name, "score": round(float(probs[i]), 6)} for i in shown]
    common = [c["name"] for c in classes if c["name"] != taxon.scientific_name]
    return {
        "score": round(float(score), 6),
        "scientific_name": taxon.scientific_name,
        "rank": taxon.rank,
        "kingdom": taxon.kingdom,
        "genus": taxon.genus,
        "family": taxon.family,
        "gbif_id": taxon.gbif_id,
        "organism": taxon.organism,
        "common_names": common,
        "classes": classes,
    }


def rank(taxa: Taxa, probs: np.ndarray, top_k: int = 5, no_reject: bool = False) -> dict[str, Any]:
    """The ranking of one probability vector: organisms only, or a rejection (see the module)."""
    scores = np.bincount(taxa.group_of, weights=probs.astype(np.float64), minlength=len(taxa.taxa))
    best = int(np.argmax(scores))
    if not no_reject and not taxa.organism[best]:
        guess = _entry(taxa, best, scores[best], probs)
        return {"rejected": True, "message": NO_ORGANISM, "results": [],
                "best_guess": {"name": guess["common_names"][0] if guess["common_names"] else None,
                               "score": guess["score"]}}
    eligible = scores if no_reject else np.where(taxa.organism, scores, -1.0)
    k = min(top_k, int((eligible >= 0).sum()))
    top = np.argpartition(-eligible, k - 1)[:k] if k < len(eligible) else np.arange(len(eligible))
    top = top[np.lexsort((top, -eligible[top]))][:k]  # best first; ties by class order
    results = [_entry(taxa, int(g), scores[g], probs) for g in top]
    return {"rejected": False, "results": results}


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


@dataclass
class LoadedModel:
    spec: ModelSpec
    path: Path
    session: Any
    input_name: str
    output_name: str
    labels: LabelSet
    taxa: Taxa
    output_kind: str  # logits or probabilities
    max_batch: int | None  # a fixed batch size in the graph, else None
    normaliser: Normaliser
    load_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def input_shape(self) -> tuple[int, ...]:
        pre = self.spec.preprocessing
        return (3, pre.crop, pre.crop) if pre.layout == "NCHW" else (pre.crop, pre.crop, 3)


def ensure_file(spec: ModelSpec, models_dir: Path) -> Path:
    """The model's ONNX file; a builtin model is built (once) into ``models_dir``."""
    if spec.builtin:
        try:
            return model_build.build_model(model_build.MODELS[spec.builtin], Path(models_dir))
        except RuntimeError as exc:
            raise ModelError(f"model {spec.name!r}: cannot build it: {exc}") from None
    path = spec.onnx_path(models_dir)
    if not path.is_file():
        raise ModelError(f"model {spec.name!r}: the ONNX file {path} does not exist")
    return path


def _session(path: Path, threads: int, name: str, spinning: bool = False) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    # onnxruntime's threads spin-wait after each run by default: the lowest latency on an idle machine,
    # but CPU taken from preprocessing, other workers and other requests wherever cores are shared
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.log_severity_level = 3
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ModelError(f"model {name!r}: cannot read {path}: {exc.strerror}") from None
    if size == 0:
        raise ModelError(f"model {name!r}: {path} is empty, not an ONNX model")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types for bad protobufs and bad graphs
        detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"model {name!r}: {path} is not an ONNX model onnxruntime can load ({detail})") from None


def _dim(value: Any) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


def _check_input(session: Any, spec: ModelSpec, path: Path) -> tuple[str, int | None]:
    inputs = session.get_inputs()
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs)
        raise ModelError(f"model {spec.name!r}: {path} takes {len(inputs)} inputs ({names}); "
                         "an image classifier takes one image batch")
    item = inputs[0]
    shape = list(item.shape)
    pre = spec.preprocessing
    layout_hint = "[N, 3, H, W] (NCHW)" if pre.layout == "NCHW" else "[N, H, W, 3] (NHWC)"
    if item.type != "tensor(float)":
        raise ModelError(f"model {spec.name!r}: input {item.name!r} is {item.type}; only float32 image "
                         "inputs are supported")
    if len(shape) != 4:
        raise ModelError(f"model {spec.name!r}: input {item.name!r} has shape {shape}; "
                         f"an image classifier takes {layout_hint}")
    expected = [3, pre.crop, pre.crop] if pre.layout == "NCHW" else [pre.crop, pre.crop, 3]
    actual = [_dim(d) for d in shape[1:]]
    if any(a is not None and a != e for a, e in zip(actual, expected)):
        other = "NHWC" if pre.layout == "NCHW" else "NCHW"
        swapped = [pre.crop, pre.crop, 3] if pre.layout == "NCHW" else [3, pre.crop, pre.crop]
        if all(a is None or a == s for a, s in zip(actual, swapped)):
            hint = f"; the file looks {other} (--layout {other})"
        else:
            sides = [a for a in actual if a not in (None, 3)]
            hint = f"; the network's input size looks like {sides[0]} (--input-size {sides[0]})" if sides else ""
        raise ModelError(f"model {spec.name!r}: input {item.name!r} has shape {shape}, expected "
                         f"{['N', *expected]} for input size {pre.crop} ({pre.layout}){hint}")
    return item.name, _dim(shape[0])


def _check_output(session: Any, spec: ModelSpec, path: Path, n_labels: int) -> str:
    outputs = session.get_outputs()
    item = outputs[0]
    shape = list(item.shape)
    if len(shape) != 2 and not (len(shape) == 4 and [_dim(d) for d in shape[2:]] == [1, 1]):
        raise ModelError(f"model {spec.name!r}: output {item.name!r} has shape {shape}; "
                         "a classifier answers [N, classes]")
    classes = _dim(shape[1])
    if classes is not None and classes != n_labels:
        raise ModelError(f"model {spec.name!r}: {path} answers {classes} classes but the labels file "
                         f"{spec.labels_path} has {n_labels} labels")
    return item.name


def _as_probabilities(raw: np.ndarray, kind: str) -> np.ndarray:
    raw = raw.reshape(raw.shape[0], -1).astype(np.float32, copy=False)
    if kind == "probabilities":
        return raw
    shifted = raw - raw.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


def _looks_like_probabilities(raw: np.ndarray) -> bool:
    raw = raw.reshape(raw.shape[0], -1)
    return bool(raw.min() >= -1e-6 and raw.max() <= 1 + 1e-6 and np.allclose(raw.sum(axis=1), 1.0, atol=1e-3))


def open_model(spec: ModelSpec, path: Path, threads: int = 0, spinning: bool = False) -> LoadedModel:
    """Load and check a model (one input, the right shapes, one label per class); raise ModelError."""
    started = time.perf_counter()
    try:
        labels = load_labels(spec.labels_path)
    except ValueError as exc:
        raise ModelError(f"model {spec.name!r}: {exc}") from None
    session = _session(path, threads, spec.name, spinning)
    input_name, max_batch = _check_input(session, spec, path)
    output_name = _check_output(session, spec, path, len(labels))
    normaliser = Normaliser(spec.preprocessing)
    pre = spec.preprocessing
    probe = np.zeros((1, *((3, pre.crop, pre.crop) if pre.layout == "NCHW" else (pre.crop, pre.crop, 3))), np.float32)
    try:
        (raw,) = session.run([output_name], {input_name: probe})
    except Exception as exc:
        raise ModelError(f"model {spec.name!r}: {path} fails on a test image: {str(exc).strip()[:300]}") from None
    raw = np.asarray(raw).reshape(1, -1)
    if raw.shape[1] != len(labels):
        raise ModelError(f"model {spec.name!r}: {path} answers {raw.shape[1]} classes but the labels file "
                         f"{spec.labels_path} has {len(labels)} labels")
    kind = spec.output if spec.output != "auto" else ("probabilities" if _looks_like_probabilities(raw) else "logits")
    return LoadedModel(spec, path, session, input_name, output_name, labels, Taxa.of(labels.labels), kind,
                       max_batch, normaliser, time.perf_counter() - started)


_models: dict[tuple[Any, ...], LoadedModel] = {}
_models_lock = threading.Lock()
_pid = os.getpid()


def load_model(spec: ModelSpec, models_dir: Path, threads: int = 0, spinning: bool = False) -> LoadedModel:
    """The model, loaded once per process (keyed by name, version and file) and kept."""
    global _pid
    path = ensure_file(spec, models_dir)
    try:
        stat = path.stat()  # follows links: (device, inode) names the file itself, cheaply
    except OSError as exc:
        raise ModelError(f"model {spec.name!r}: cannot read {path}: {exc.strerror}") from None
    key = (spec.name, spec.version, stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size,
           str(spec.labels_path), spec.preprocessing, spec.output, threads, spinning)
    with _models_lock:
        if _pid != os.getpid():  # a forked child: never share the parent's sessions
            _models.clear()
            _pid = os.getpid()
        found = _models.get(key)
        if found is None:
            found = open_model(spec, path, threads, spinning)
            for old in [k for k in _models if k[0] == key[0]]:
                del _models[old]  # the model was changed or replaced: drop the stale session
            _models[key] = found
        return found


def loaded_models() -> list[LoadedModel]:
    with _models_lock:
        return list(_models.values())


_buffers = threading.local()
PREPROCESS_THREADS = min(4, os.cpu_count() or 1)
_pools: dict[int, Any] = {}  # process id -> executor (a forked child makes its own)
_pools_lock = threading.Lock()


def _preprocess_pool() -> Any:
    """Threads for preprocessing (OpenCV and numpy release the GIL), made once per process."""
    from concurrent.futures import ThreadPoolExecutor

    with _pools_lock:
        pid = os.getpid()
        if pid not in _pools:
            _pools.clear()
            _pools[pid] = ThreadPoolExecutor(PREPROCESS_THREADS, thread_name_prefix="species-id-preprocess")
        return _pools[pid]


def preprocess(model: LoadedModel, images: Sequence[np.ndarray], tensor: np.ndarray) -> None:
    """Preprocess ``images`` into ``tensor``; several photos are shared among a few threads, which
    run while onnxruntime's threads are idle (between runs), so preprocessing takes less wall time."""
    workers = PREPROCESS_THREADS
    if len(images) < 4 or workers < 2:
        for i, image in enumerate(images):
            model.normaliser(image, tensor[i])
        return

    def part(start: int) -> None:
        for i in range(start, len(images), workers):
            model.normaliser(images[i], tensor[i])

    for future in [_preprocess_pool().submit(part, start) for start in range(workers)]:
        future.result()


def _buffer(model: LoadedModel, rows: int) -> np.ndarray:
    """A float32 input tensor of this thread, reused across calls (no page faults on fresh memory)."""
    shape = (rows, *model.input_shape)
    found = getattr(_buffers, "tensor", None)
    if found is None or found.shape[1:] != shape[1:] or found.shape[0] < rows:
        found = _buffers.tensor = np.empty(shape, np.float32)  # at most PREPROCESS_BLOCK photos
    return found[:rows]


def classify(model: LoadedModel, images: Sequence[np.ndarray], batch_size: int = 16) -> np.ndarray:
    """Probabilities ``[len(images), classes]`` for BGR images, in batches of ``batch_size``."""
    n = len(images)
    out = np.empty((n, len(model.labels)), np.float32)
    if n == 0:
        return out
    step = min(batch_size, model.max_batch) if model.max_batch else batch_size
    block = max(step, PREPROCESS_BLOCK // step * step)
    for first in range(0, n, block):
        # preprocess a block, then run its batches back to back: onnxruntime's threads spin for a
        # while after each run, and would slow down preprocessing done between runs
        chunk = images[first: first + block]
        tensor = _buffer(model, len(chunk))
        preprocess(model, chunk, tensor)
        for start in range(0, len(chunk), step):
            out[first + start: first + start + step] = run_batch(model, tensor[start: start + step])
    return out


def run_batch(model: LoadedModel, batch: np.ndarray) -> np.ndarray:
    """Probabilities for an already preprocessed batch."""
    (raw,) = model.session.run([model.output_name], {model.input_name: batch})
    return _as_probabilities(np.asarray(raw), model.output_kind)


def combine(probs: np.ndarray) -> np.ndarray:
    """One probability vector for several photos of one observation: their mean."""
    return probs.mean(axis=0) if len(probs) else probs.reshape(-1)
