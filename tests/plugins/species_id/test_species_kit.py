"""The datathon kit: ``observatory models ...`` through click's CliRunner, on a small data set
made from scikit-image photos (crops, flips and a brighter copy of each)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from click.testing import CliRunner, Result

from core.cli import build_cli
from core.engine import Engine
from plugins.species_id.catalogue import packaged_labels
from plugins.species_id.runtime import Runtime
from tests.plugins.species_id.conftest import DEFAULT, bgr_photo, jpeg

LABELS = {"chelsea": "Felis catus", "coffee": "espresso", "camera": "tripod", "rocket": "missile"}


def variants(image: np.ndarray) -> list[np.ndarray]:
    import cv2

    h, w = image.shape[:2]
    return [np.ascontiguousarray(v) for v in (
        image, cv2.flip(image, 1), image[int(h * 0.08): int(h * 0.92), int(w * 0.08): int(w * 0.92)],
        image[: int(h * 0.9), : int(w * 0.9)], np.clip(image.astype(np.float32) * 1.15, 0, 255).astype(np.uint8),
    )]


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<root>/<label>/<n>.jpg`` (20 photos, 4 labels) and ``<root>.csv`` listing the same files."""
    root = tmp_path_factory.mktemp("dataset") / "photos"
    rows = ["path,label"]
    for name, label in LABELS.items():
        image = bgr_photo(name)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        folder = root / label
        folder.mkdir(parents=True)
        for i, variant in enumerate(variants(image)):
            (folder / f"{name}-{i}.jpg").write_bytes(jpeg(variant))
            rows.append(f"photos/{label}/{name}-{i}.jpg,{label}")
    (root.parent / "photos.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture
def engine(species_engine: Callable[..., Engine]) -> Engine:
    return species_engine()


@pytest.fixture
def run(engine: Engine) -> Callable[..., Result]:
    cli = build_cli()
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(cli, ["models", *map(str, args)], catch_exceptions=False)

    return invoke


def add_variant(run: Callable[..., Result], built_model: Path, name: str = "lite0-zoomed", *extra: str) -> Result:
    """The default network again, given a preprocessing that zooms in 3.5 times too far."""
    return run("add", name, "--onnx", built_model, "--labels", packaged_labels("imagenet_labels.csv"),
               "--resize", "900", "--version", "0.1", "--licence", "Apache-2.0", *extra)


def test_list_and_build(run: Callable[..., Result], engine: Engine) -> None:
    listed = run("list")
    assert listed.exit_code == 0, listed.output
    assert f"{DEFAULT} (default)" in listed.stdout and "ready" in listed.stdout and "wildlife" in listed.stdout
    rows = json.loads(run("list", "--json").stdout)["models"]
    assert rows[0]["name"] == DEFAULT and rows[0]["builtin"] == "efficientnet_lite0" and rows[0]["input_size"] == 224
    built = run("build")
    assert built.exit_code == 0 and f"{DEFAULT} 57934424.r1: " in built.stdout
    unknown = run("build", "nope")
    assert unknown.exit_code == 2 and "unknown model 'nope'" in unknown.stderr


def test_add_a_model_and_use_it(run: Callable[..., Result], engine: Engine, built_model: Path) -> None:
    added = add_variant(run, built_model)
    assert added.exit_code == 0, added.output
    assert "model lite0-zoomed 0.1 added: 1000 labels (" in added.stdout and "input 224×224 NCHW RGB" in added.stdout
    models_dir = Path(engine.settings.data_dir) / "models"
    entry = json.loads((models_dir / "registry.json").read_text())["models"][0]
    assert entry["onnx"] == "added/lite0-zoomed/model.onnx" and entry["preprocessing"]["resize"] == 900
    assert (models_dir / "added" / "lite0-zoomed" / "model.onnx").stat().st_size == built_model.stat().st_size
    spec = Runtime.of(engine).catalogue().get("lite0-zoomed")
    assert spec.source == "registry.json" and spec.preprocessing.resize == 900 and spec.licence == "Apache-2.0"
    assert "lite0-zoomed" in run("list").stdout
    again = add_variant(run, built_model)
    assert again.exit_code == 2 and "--replace" in again.stderr
    assert add_variant(run, built_model, "lite0-zoomed", "--replace").exit_code == 0
    removed = run("remove", "lite0-zoomed")
    assert removed.exit_code == 0 and "lite0-zoomed" not in run("list").stdout


def _tiny_onnx(path: Path, input_shape: list, classes: int) -> Path:
    """A network that is not an image classifier: a MatMul over a flat input."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.ones((input_shape[-1], classes), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", classes])], [weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_add_refuses_what_does_not_fit(run: Callable[..., Result], built_model: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"class {i}" for i in range(10)) + "\n")
    text = tmp_path / "model.onnx"
    text.write_text("I am a text file")
    cases = [
        (["mine", "--onnx", text, "--labels", labels], "is not an ONNX model onnxruntime can load"),
        (["mine", "--onnx", built_model, "--labels", labels], "answers 1000 classes but the labels file"),
        (["mine", "--onnx", built_model, "--labels", labels, "--input-size", "299"], "expected ['N', 3, 299, 299]"),
        (["mine", "--onnx", built_model, "--labels", labels, "--layout", "NHWC"], "the file looks NCHW"),
        (["mine", "--onnx", _tiny_onnx(tmp_path / "flat.onnx", ["N", 12], 10), "--labels", labels],
         "does not say the image size; give --input-size"),
        (["mine", "--onnx", tmp_path / "flat.onnx", "--labels", labels, "--input-size", "4"],
         "an image classifier takes [N, 3, H, W]"),
        ([DEFAULT, "--onnx", built_model, "--labels", labels], "already configured in registry.yaml"),
        (["bad name", "--onnx", built_model, "--labels", labels], "model name 'bad name'"),
    ]
    for args, message in cases:
        result = run("add", *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
    assert "mine" not in run("list").stdout


def test_evaluate_writes_metrics_a_report_and_a_confusion_matrix(run: Callable[..., Result], dataset: Path,
                                                                 tmp_path: Path) -> None:
    import cv2

    out = tmp_path / "report"
    result = run("evaluate", DEFAULT, "--dataset", dataset, "--out", out, "--batch-size", "8")
    assert result.exit_code == 0, result.output
    assert "(20 photos, 4 labels)" in result.stdout and "top-1 accuracy" in result.stdout
    assert "latency per photo: mean" in result.stdout and "Felis catus" in result.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["images"] == 20 and report["top1"] >= 0.9 and report["top5"] == 1.0
    assert set(report["per_label"]) == set(LABELS.values())
    assert all(row["support"] == 5 and row["recall"] >= 0.8 for row in report["per_label"].values())
    assert report["confusion"]["columns"][-1] == "(other)" and np.sum(report["confusion"]["matrix"]) == 20
    assert report["latency_ms"]["mean"] > 0 and report["latency_ms"]["batch_size"] == 8
    image = cv2.imdecode(np.frombuffer((out / "confusion.png").read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[0] > 200 and image.shape[1] > 200
    from_csv = run("evaluate", DEFAULT, "--dataset", dataset.parent / "photos.csv", "--out", tmp_path / "csv")
    assert from_csv.exit_code == 0, from_csv.output
    assert json.loads((tmp_path / "csv" / "report.json").read_text())["top1"] == report["top1"]


def test_evaluate_errors(run: Callable[..., Result], tmp_path: Path, shots: dict[str, bytes]) -> None:
    (tmp_path / "set" / "unicorn").mkdir(parents=True)
    (tmp_path / "set" / "unicorn" / "1.jpg").write_bytes(shots["cat"])
    result = run("evaluate", DEFAULT, "--dataset", tmp_path / "set")
    assert result.exit_code == 2 and "no class or taxon named 'unicorn'" in result.stderr
    (tmp_path / "bad.csv").write_text("just-one-column\n")
    result = run("evaluate", DEFAULT, "--dataset", tmp_path / "bad.csv")
    assert result.exit_code == 2 and "expected 'path,label'" in result.stderr
    assert run("evaluate", "nope", "--dataset", tmp_path / "set").exit_code == 2
    (tmp_path / "empty").mkdir()
    result = run("evaluate", DEFAULT, "--dataset", tmp_path / "empty")
    assert result.exit_code == 2 and "no photos found" in result.stderr


def test_compare_ranks_two_models(run: Callable[..., Result], built_model: Path, dataset: Path,
                                  tmp_path: Path) -> None:
    assert add_variant(run, built_model).exit_code == 0
    result = run("compare", "lite0-zoomed", DEFAULT, "--dataset", dataset, "--out", tmp_path / "cmp")
    assert result.exit_code == 0, result.output
    ranking = result.stdout.split("ranking")[1]
    assert ranking.index(DEFAULT) < ranking.index("lite0-zoomed")
    summary = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    first, second = summary["ranking"]
    assert first["model"]["name"] == DEFAULT and first["top1"] > second["top1"]
    assert (tmp_path / "cmp" / DEFAULT / "confusion.png").is_file()
    assert (tmp_path / "cmp" / "lite0-zoomed" / "report.json").is_file()
