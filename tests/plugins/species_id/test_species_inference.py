"""species_id without the engine: catalogue, decoding (EXIF), preprocessing, ranking, model checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from plugins.species_id import inference, photo
from plugins.species_id.catalogue import CatalogueError, Label, build_catalogue, load_labels, write_local_registry
from plugins.species_id.inference import ImageError, ModelError, Taxa, decode, load_model, rank
from plugins.species_id.service import Photo, decode_photo, identify
from tests.plugins.species_id.conftest import (
    CAT_CLASSES,
    DEFAULT,
    bgr_photo,
    jpeg,
    link_model,
    with_exif_orientation,
)

LIMITS = {"max_bytes": 20 * 1024 * 1024, "max_pixels": 80_000_000, "min_side": 256}


@pytest.fixture
def model(tmp_path: Path, built_model: Path):
    link_model(tmp_path, built_model)
    catalogue = build_catalogue({}, tmp_path, tmp_path)
    return load_model(catalogue.get(None), catalogue.models_dir)


def decoded(data: bytes, name: str = "photo.jpg"):
    return decode_photo(Photo(data, name, None, filename=name), **LIMITS)


# --------------------------------------------------------------------------------------------
# Catalogue
# --------------------------------------------------------------------------------------------


def test_default_catalogue_is_the_builtin_efficientnet(tmp_path: Path) -> None:
    catalogue = build_catalogue({}, tmp_path, tmp_path)
    spec = catalogue.get(None)
    assert catalogue.default == DEFAULT and spec.builtin == "efficientnet_lite0"
    assert spec.preprocessing.crop == 224 and spec.preprocessing.resize == 256
    assert spec.onnx_path(catalogue.models_dir).parent == tmp_path / "models"
    assert len(load_labels(spec.labels_path)) == 1000


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"models": [{"name": "x", "onnx": "a.onnx"}]}, "needs 'labels'"),
        ({"models": [{"name": "x", "onnx": "a.onnx", "labels": "l.txt"}]}, "needs 'input_size'"),
        ({"models": [{"name": "x", "builtin": "resnet9000"}]}, "unknown builtin model 'resnet9000'"),
        ({"models": [{"name": "x", "builtin": "efficientnet_lite0", "onnx": "a.onnx"}]}, "exactly one of"),
        ({"models": [{"name": "x", "builtin": "efficientnet_lite0", "colour": "RGB"}]}, "models.0.colour: unknown key"),
        ({"models": [{"name": "bad name", "builtin": "efficientnet_lite0"}]}, "models.0.name"),
        ({"default_model": "nope"}, "no model 'nope'"),
        ({"models": [{"name": "a", "builtin": "efficientnet_lite0"}] * 2}, "listed twice"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, config: dict, message: str) -> None:
    with pytest.raises(CatalogueError, match=message) as info:
        build_catalogue(config, tmp_path, tmp_path)
    assert "species_id.config" in str(info.value)


def test_registry_json_models_merge_and_bad_entries_are_reported(tmp_path: Path) -> None:
    (tmp_path / "labels.txt").write_text("Apis mellifera\nBombus terrestris\n")
    write_local_registry(tmp_path / "models", [
        {"name": "bees", "onnx": "bees.onnx", "labels": str(tmp_path / "labels.txt"), "input_size": 160},
        {"name": "broken", "onnx": "x.onnx"},
    ])
    catalogue = build_catalogue({}, tmp_path, tmp_path)
    assert set(catalogue.models) == {DEFAULT, "bees"}
    assert catalogue.models["bees"].onnx == tmp_path / "models" / "bees.onnx"
    assert catalogue.models["bees"].preprocessing.resize == round(160 / 0.875)
    assert len(catalogue.problems) == 1 and "models[1]" in catalogue.problems[0]
    assert "needs 'labels'" in catalogue.problems[0]
    labels = load_labels(tmp_path / "labels.txt").labels
    assert labels[1] == Label(1, "Bombus terrestris", "Bombus terrestris", organism=True)


def test_csv_labels_without_kingdom_count_scientific_names_as_organisms(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_text("name,scientific_name,family\nhoney bee,Apis mellifera,Apidae\nbackground,,\n")
    first, second = load_labels(path).labels
    assert first.organism and first.family == "Apidae" and not second.organism
    (tmp_path / "bad.csv").write_text("label,x\na,b\n")
    with pytest.raises(CatalogueError, match="'name' column"):
        load_labels(tmp_path / "bad.csv")


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


def test_exif_orientation_is_applied() -> None:
    # a landscape image whose left half is white; EXIF 6 = rotate 90° clockwise to view
    image = np.zeros((40, 80, 3), np.uint8)
    image[:, :40] = 255
    upright = decode(with_exif_orientation(jpeg(image), 6))
    assert upright.shape[:2] == (80, 40)
    assert upright[2, 2].mean() > 200 and upright[-3, -3].mean() < 50  # the white half is now on top
    assert decode(with_exif_orientation(jpeg(image), 1)).shape[:2] == (40, 80)


def test_large_jpeg_is_decoded_reduced_and_still_upright() -> None:
    big = np.zeros((1200, 2400, 3), np.uint8)
    big[:, :1200] = 255
    data = with_exif_orientation(jpeg(big), 6)
    reduced = decode(data, 2400, 1200, min_side=256)
    assert reduced.shape[:2] == (2400 // 4, 1200 // 4)  # 1/4 keeps 300 >= 256 and 600 >= 512; 1/8 would not
    assert reduced[5, 5].mean() > 200 and reduced[-5, -5].mean() < 50


@pytest.mark.parametrize(
    ("data", "name", "code"),
    [
        (b"", "empty.jpg", "media_empty"),
        (b"hello, world" * 10, "notes.txt", "media_unknown_type"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt " + b"\x00" * 40, "song.wav", "not_an_image"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt " + b"\x00" * 40, "photo.jpg", "media_type_mismatch"),
    ],
    ids=["empty", "text", "sound", "sound-named-jpg"],
)
def test_bad_input_is_an_error_not_a_crash(data: bytes, name: str, code: str) -> None:
    result = decoded(data, name)
    assert result.pixels is None and result.error[0] == code


def test_damaged_bomb_and_oversized_photos(shots: dict[str, bytes]) -> None:
    assert decoded(shots["damaged"]).error[0] == "media_corrupt"
    assert decoded(shots["bomb"], "bomb.png").error[0] == "media_too_many_pixels"
    too_big = decode_photo(Photo(shots["cat"], "cat.jpg"), max_bytes=1000, max_pixels=10**8, min_side=256)
    assert too_big.error[0] == "media_too_large"
    with pytest.raises(ImageError):
        decode(shots["damaged"])


# --------------------------------------------------------------------------------------------
# Photo measures
# --------------------------------------------------------------------------------------------


def test_photo_measures_and_hashes() -> None:
    import cv2

    cat = bgr_photo("chelsea")
    sharp = photo.measure(cat)
    blurred = photo.measure(cv2.GaussianBlur(cat, (0, 0), 4))
    dark = photo.measure((cat * 0.12).astype(np.uint8))
    assert sharp["min_side"] == 300 and sharp["sharpness"] > 200 and blurred["sharpness"] < 10
    assert 100 < sharp["luminance"] < 140 and dark["luminance"] < 20
    again = photo.measure(cv2.imdecode(np.frombuffer(jpeg(cat, 60), np.uint8), cv2.IMREAD_COLOR))
    other = photo.measure(bgr_photo("coffee"))
    assert photo.hamming(sharp["dhash"], again["dhash"]) <= 2
    assert photo.hamming(sharp["dhash"], other["dhash"]) > 16
    assert photo.nearest(sharp["dhash"], [other["dhash"], again["dhash"]]) == (1, photo.hamming(sharp["dhash"], again["dhash"]))
    assert photo.nearest(sharp["dhash"], []) == (-1, 65)


# --------------------------------------------------------------------------------------------
# Ranking
# --------------------------------------------------------------------------------------------


def test_classes_of_one_taxon_add_up_and_things_are_rejected() -> None:
    labels = [Label(0, "tabby", "Felis catus", "species", kingdom="Animalia"),
              Label(1, "tiger cat", "Felis catus", "species", kingdom="Animalia"),
              Label(2, "espresso", organism=False),
              Label(3, "lynx", "Lynx", "genus", kingdom="Animalia")]
    taxa = Taxa.of(labels)
    cat = rank(taxa, np.array([0.3, 0.3, 0.35, 0.05]), top_k=5)
    assert not cat["rejected"] and [r["scientific_name"] for r in cat["results"]] == ["Felis catus", "Lynx"]
    assert cat["results"][0]["score"] == pytest.approx(0.6) and cat["results"][0]["genus"] == "Felis"
    assert cat["results"][1]["genus"] is None  # a genus-rank taxon has no genus of its own
    coffee = rank(taxa, np.array([0.1, 0.1, 0.75, 0.05]), top_k=5)
    assert coffee["rejected"] and coffee["results"] == [] and coffee["best_guess"]["name"] == "espresso"
    listed = rank(taxa, np.array([0.1, 0.1, 0.75, 0.05]), top_k=2, no_reject=True)
    assert [r["common_names"] for r in listed["results"]] == [["espresso"], ["tabby", "tiger cat"]]
    assert listed["results"][0]["organism"] is False and listed["results"][0]["scientific_name"] is None


def test_chelsea_is_a_cat_coffee_is_no_organism(model, shots: dict[str, bytes]) -> None:
    photos = [decoded(shots["cat"], "cat.jpg"), decoded(shots["coffee"], "coffee.jpg")]
    cat = identify(model, photos[:1], top_k=5, no_reject=False)
    best = cat["best"]
    assert cat["outcome"] == "identified" and best["scientific_name"] == "Felis catus" and best["score"] > 0.8
    assert {c["name"] for c in best["classes"]} <= CAT_CLASSES
    assert best["kingdom"] == "Animalia" and all(r["organism"] for r in cat["results"])
    coffee = identify(model, photos[1:], top_k=5, no_reject=False)
    assert coffee["outcome"] == "no_organism" and coffee["rejected"] and coffee["results"] == []
    assert coffee["best_guess"]["name"] == "espresso"
    listed = identify(model, photos[1:], top_k=3, no_reject=True)
    assert listed["best"]["common_names"] == ["espresso"] and len(listed["results"]) == 3


def test_several_photos_are_combined_by_the_mean(model, shots: dict[str, bytes]) -> None:
    import cv2

    cat = decoded(shots["cat"])
    flipped = decoded(jpeg(cv2.flip(bgr_photo("chelsea"), 1)))
    both = identify(model, [cat, flipped], top_k=5, no_reject=False)
    one = identify(model, [cat], top_k=5, no_reject=False)["best"]["score"]
    other = identify(model, [flipped], top_k=5, no_reject=False)["best"]["score"]
    assert both["combination"] == "mean"
    assert both["best"]["score"] == pytest.approx((one + other) / 2, abs=1e-5)
    assert [img["results"][0]["score"] for img in both["images"]] == pytest.approx([one, other], abs=1e-6)


def test_batches_give_the_same_answer_as_one_by_one(model) -> None:
    images = [bgr_photo(n) for n in ("chelsea", "coffee", "astronaut", "rocket", "camera")]
    images[-1] = np.ascontiguousarray(np.repeat(images[-1][..., None], 3, axis=2))
    together = inference.classify(model, images, batch_size=2)
    alone = np.concatenate([inference.classify(model, [image], batch_size=1) for image in images])
    np.testing.assert_allclose(together, alone, atol=2e-5)
    np.testing.assert_allclose(together.sum(axis=1), 1.0, atol=1e-4)


def test_the_session_is_loaded_once_per_process(tmp_path: Path, built_model: Path) -> None:
    link_model(tmp_path, built_model)
    catalogue = build_catalogue({}, tmp_path, tmp_path)
    first = load_model(catalogue.get(None), catalogue.models_dir)
    assert load_model(catalogue.get(None), catalogue.models_dir) is first


# --------------------------------------------------------------------------------------------
# Model files
# --------------------------------------------------------------------------------------------


def _config(onnx: Path, labels: Path, size: int = 224) -> dict:
    return {"models": [{"name": "mine", "onnx": str(onnx), "labels": str(labels), "input_size": size}]}


def test_a_file_that_is_not_onnx_is_a_clear_error(tmp_path: Path) -> None:
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"\x89PNG\r\n\x1a\nnot a network at all")
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\n")
    catalogue = build_catalogue(_config(fake, labels), tmp_path, tmp_path)
    with pytest.raises(ModelError, match=r"model 'mine': .*model.onnx is not an ONNX model"):
        load_model(catalogue.get("mine"), catalogue.models_dir)
    fake.write_bytes(b"")
    with pytest.raises(ModelError, match="is empty"):
        load_model(catalogue.get("mine"), catalogue.models_dir)
    catalogue = build_catalogue(_config(tmp_path / "gone.onnx", labels), tmp_path, tmp_path)
    with pytest.raises(ModelError, match="does not exist"):
        load_model(catalogue.get("mine"), catalogue.models_dir)


def test_wrong_shapes_and_label_counts_are_refused(tmp_path: Path, built_model: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"class {i}" for i in range(999)) + "\n")
    catalogue = build_catalogue(_config(built_model, labels), tmp_path, tmp_path)
    with pytest.raises(ModelError, match="answers 1000 classes but the labels file .* has 999 labels"):
        load_model(catalogue.get("mine"), catalogue.models_dir)
    labels.write_text("\n".join(f"class {i}" for i in range(1000)) + "\n")
    catalogue = build_catalogue(_config(built_model, labels, size=299), tmp_path, tmp_path)
    with pytest.raises(ModelError, match=r"expected \['N', 3, 299, 299\]"):
        load_model(catalogue.get("mine"), catalogue.models_dir)
    model = load_model(build_catalogue(_config(built_model, labels), tmp_path, tmp_path).get("mine"), tmp_path)
    assert model.output_kind == "logits" and model.max_batch is None
    listed = json.loads(json.dumps(model.spec.describe()))  # as `observatory models list --json` shows it
    assert listed["name"] == "mine" and listed["input_size"] == 224 and listed["builtin"] is None
    assert listed["onnx"] == str(built_model) and listed["labels"] == str(labels)
    assert listed["preprocessing"]["crop"] == 224 and listed["preprocessing"]["layout"] == "NCHW"
