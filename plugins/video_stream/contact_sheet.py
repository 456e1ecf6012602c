"""A contact sheet: a job's keyframes in a grid, each with its boxes, their labels and a caption,
as one PNG (OpenCV). Keyframes with boxes of people (``category`` human) have their faces and
the heads in those boxes blurred (``blur_faces``) before they are drawn."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from plugins.video_stream.blur import blur_faces

TILE_W, TILE_H = 320, 240          # each keyframe fits this box (its aspect kept)
CAPTION_H = 22                     # the caption's strip under each tile
GAP = 4
BACKGROUND = (32, 32, 32)
COLOURS: dict[str, tuple[int, int, int]] = {  # BGR, by the box's category
    "animal": (80, 200, 80), "human": (60, 60, 230), "vehicle": (230, 140, 40)}
DEFAULT_COLOUR = (40, 220, 230)
MAX_TILES = 200                    # a longer job's sheet shows the first ones and says how many more

Keyframe = tuple[np.ndarray, list[dict[str, Any]], str]   # (BGR image, boxes, caption)


def _ascii(text: str) -> str:
    """OpenCV's fonts draw ASCII only: accents dropped, other characters as '?'."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in plain)


def _fit(image: np.ndarray) -> tuple[np.ndarray, float, int, int]:
    """The image scaled into a TILE_W x TILE_H tile (letterboxed): tile, scale, offsets."""
    h, w = image.shape[:2]
    scale = min(TILE_W / w, TILE_H / h)
    sw, sh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    tile = np.full((TILE_H, TILE_W, 3), BACKGROUND, np.uint8)
    ox, oy = (TILE_W - sw) // 2, (TILE_H - sh) // 2
    tile[oy:oy + sh, ox:ox + sw] = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    return tile, scale, ox, oy


def _label(box: dict[str, Any]) -> str:
    name = box.get("label") or box.get("category") or ""
    conf = box.get("conf")
    return _ascii(f"{name} {float(conf):.2f}".strip() if conf is not None else str(name))


def _draw_tile(image: np.ndarray, boxes: Sequence[dict[str, Any]], caption: str) -> np.ndarray:
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    people = [b["bbox"] for b in boxes if b.get("category") == "human" and b.get("bbox")]
    if people:
        image = blur_faces(image, people=people)
    h, w = image.shape[:2]
    tile, scale, ox, oy = _fit(image)
    for box in boxes:
        if not box.get("bbox"):
            continue
        x, y, bw, bh = (float(v) for v in box["bbox"])
        p0 = (ox + int(round(x * w * scale)), oy + int(round(y * h * scale)))
        p1 = (ox + int(round((x + bw) * w * scale)), oy + int(round((y + bh) * h * scale)))
        colour = COLOURS.get(str(box.get("category")), DEFAULT_COLOUR)
        cv2.rectangle(tile, p0, p1, colour, 2)
        text = _label(box)
        if text:
            (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
            tx, ty = max(0, min(p0[0], TILE_W - tw - 2)), max(th + 4, p0[1])
            cv2.rectangle(tile, (tx, ty - th - 4), (tx + tw + 2, ty), colour, -1)
            cv2.putText(tile, text, (tx + 1, ty - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    strip = np.full((CAPTION_H, TILE_W, 3), BACKGROUND, np.uint8)
    cv2.putText(strip, _ascii(caption)[:48], (4, CAPTION_H - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (235, 235, 235), 1, cv2.LINE_AA)
    return np.vstack([tile, strip])


def contact_sheet(keyframes: list[Keyframe], *, columns: int = 4) -> bytes:
    """A PNG of the keyframes in a grid of ``columns``: each tile the image with its boxes
    (``bbox`` [x, y, w, h] relative to the image, coloured by ``category``, labelled with
    ``label`` and ``conf``) and its caption. No keyframe: a tile that says so."""
    if columns < 1:
        raise ValueError("columns must be 1 or more")
    shown = keyframes[:MAX_TILES]
    tiles = [_draw_tile(image, boxes, caption) for image, boxes, caption in shown]
    if not tiles:
        tiles = [_draw_tile(np.full((TILE_H, TILE_W, 3), BACKGROUND, np.uint8), [], "no events")]
    if len(keyframes) > MAX_TILES:
        tiles.append(_draw_tile(np.full((TILE_H, TILE_W, 3), BACKGROUND, np.uint8), [],
                                f"and {len(keyframes) - MAX_TILES} more keyframes"))
    columns = min(columns, len(tiles))
    rows = -(-len(tiles) // columns)
    th, tw = tiles[0].shape[:2]
    sheet = np.full((rows * (th + GAP) + GAP, columns * (tw + GAP) + GAP, 3), BACKGROUND, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        y, x = GAP + r * (th + GAP), GAP + c * (tw + GAP)
        sheet[y:y + th, x:x + tw] = tile
    ok, png = cv2.imencode(".png", sheet)
    if not ok:  # pragma: no cover - OpenCV always encodes a uint8 image
        raise RuntimeError("OpenCV could not encode the contact sheet")
    return png.tobytes()
