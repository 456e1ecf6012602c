"""Fixtures for species_id: the default model built once per test session (into a temporary
folder, linked into each test engine's ``<data_dir>/models``), engines whose registry enables
species_id (the service entry is the repository's own registry.yaml one), real photos and
photos made bad on purpose.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import yaml

from core.engine import Engine
from plugins.species_id import model_build

ROOT = Path(__file__).resolve().parents[3]
DEFAULT = model_build.DEFAULT_MODEL["name"]
CAT_CLASSES = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


def service_entry(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The species_id service of the repository's registry.yaml (its config replaced if given)."""
    entry = yaml.safe_load((ROOT / "registry.yaml").read_text())["services"]["species_id"]
    if config is not None:
        entry["config"] = config
    return entry


def species_registry(projects: dict[str, dict[str, Any] | None] | None = None,
                     config: dict[str, Any] | None = None) -> str:
    """A registry offering species_id (and the test plugins' services) with these projects."""
    projects = projects if projects is not None else {
        "wildlife": {},
        "strict": {"min_score": 0.99},
        "anything": {"no_reject": True, "top_k": 3},
    }
    services = {
        "species_id": service_entry(config if config is not None else {
            "models": [{"name": DEFAULT, "builtin": "efficientnet_lite0"}]}),
        "recorder": {"summary": "records which observations it saw", "settings": {"type": "object"}},
    }
    return yaml.safe_dump({
        "services": services,
        "projects": [
            {"slug": slug, "name": slug.title(), "services": {"species_id": settings or {}, "recorder": {}}}
            if settings is not None else {"slug": slug, "name": slug.title(), "services": {}}
            for slug, settings in projects.items()
        ],
    }, sort_keys=False)


@pytest.fixture(scope="session")
def built_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default model's ONNX file, built once for the whole test session."""
    return model_build.build_default_model(tmp_path_factory.mktemp("species_id_models"))


def link_model(data_dir: Path, built: Path) -> None:
    models = Path(data_dir) / "models"
    models.mkdir(parents=True, exist_ok=True)
    target = models / built.name
    if not target.exists():
        target.symlink_to(built)


@pytest.fixture
def species_engine(make_engine: Callable[..., Engine], built_model: Path) -> Callable[..., Engine]:
    """``species_engine(registry_text=None, **settings) -> Engine`` with the model already built."""

    def make(registry_text: str | None = None, **overrides: Any) -> Engine:
        engine = make_engine(registry_text or species_registry(), **overrides)
        link_model(engine.settings.data_dir, built_model)
        return engine

    return make


# --------------------------------------------------------------------------------------------
# Photos
# --------------------------------------------------------------------------------------------


def jpeg(bgr: np.ndarray, quality: int = 92) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def png(bgr: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", bgr)
    assert ok
    return buf.tobytes()


def rgb_photo(name: str) -> np.ndarray:
    import skimage.data

    return getattr(skimage.data, name)()


def bgr_photo(name: str) -> np.ndarray:
    return np.ascontiguousarray(rgb_photo(name)[..., ::-1])


def with_exif_orientation(data: bytes, orientation: int) -> bytes:
    """A JPEG with an EXIF APP1 segment whose Orientation tag (0x0112) is ``orientation``."""
    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    payload = b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", 8) + ifd
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:]


def damaged_jpeg(data: bytes) -> bytes:
    """Size header and end marker intact (the upload checks pass), Huffman table destroyed."""
    body = bytearray(data)
    start = body.index(b"\xff\xc4")  # define Huffman table
    body[start + 5: start + 21] = b"\xff" * 16  # code counts no table can have
    return bytes(body)


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


@pytest.fixture(scope="session")
def shots() -> dict[str, bytes]:
    """Real photos and bad ones, as bytes."""
    import cv2

    cat = bgr_photo("chelsea")
    coffee = bgr_photo("coffee")
    return {
        "cat": jpeg(cat),
        "coffee": jpeg(coffee),
        "cat_small": png(cv2.resize(cat, (64, 43), interpolation=cv2.INTER_AREA)),
        "cat_dark": jpeg((cat * 0.12).astype(np.uint8)),
        "cat_blurred": jpeg(cv2.GaussianBlur(cat, (0, 0), 4)),
        "cat_again": jpeg(cat, quality=70),  # the same photo, encoded again
        "astronaut": jpeg(bgr_photo("astronaut")),
        "damaged": damaged_jpeg(jpeg(coffee)),
        "bomb": png_bomb(),
        "text": b"these are not the pixels you are looking for\n" * 4,
    }
