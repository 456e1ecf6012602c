"""Small PNG charts for the odour analyses, drawn with OpenCV (a dependency of the engine
already), so that no plotting library is needed: a bar chart, a line chart and a grid.

They are meant for a quick look in a browser or a report; the ``rows`` of each analysis are
the data to plot properly elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
INK = (40, 40, 40)
GRID = (225, 225, 225)
WHITE = (255, 255, 255)
BLUE = (180, 110, 30)


def _bgr(hex_colour: str) -> tuple[int, int, int]:
    value = hex_colour.lstrip("#")
    r, g, b = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return b, g, r


def _text(image: np.ndarray, text: str, x: int, y: int, scale: float = 0.4, colour=INK, anchor: str = "left") -> None:
    (w, h), _ = cv2.getTextSize(text, FONT, scale, 1)
    if anchor == "right":
        x -= w
    elif anchor == "centre":
        x -= w // 2
    cv2.putText(image, text, (int(x), int(y + h // 2)), FONT, scale, colour, 1, cv2.LINE_AA)


def _png(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError("OpenCV could not encode the chart as PNG")
    return encoded.tobytes()


def _canvas(width: int, height: int, title: str) -> np.ndarray:
    image = np.full((height, width, 3), 255, dtype=np.uint8)
    _text(image, title, 12, 16, 0.55)
    return image


def bar_chart(labels: Sequence[str], values: Sequence[float], colours: Sequence[str], title: str) -> bytes:
    """Horizontal bars, one per label, with the value written beside each."""
    row_h, left, right = 26, 190, 70
    width = 720
    height = 44 + row_h * max(1, len(labels)) + 12
    image = _canvas(width, height, title)
    top = max(values, default=0) or 1
    span = width - left - right
    for i, (label, value, colour) in enumerate(zip(labels, values, colours)):
        y = 44 + i * row_h
        _text(image, label, left - 8, y + row_h // 2, anchor="right")
        length = int(round(span * value / top))
        cv2.rectangle(image, (left, y + 4), (left + max(length, 1), y + row_h - 4), _bgr(colour), -1)
        cv2.rectangle(image, (left, y + 4), (left + max(length, 1), y + row_h - 4), INK, 1)
        _text(image, f"{value:g}", left + length + 6, y + row_h // 2)
    return _png(image)


def line_chart(days: Sequence[str], ys: Sequence[float], title: str, *, y_min: float, y_max: float,
               y_label: str = "") -> bytes:
    """One series over ISO dates (``yyyy-mm-dd``), placed by date, points joined by lines."""
    width, height = 900, 370
    left, right, top, bottom = 56, 44, 56, 44
    image = _canvas(width, height, title)
    plot_w, plot_h = width - left - right, height - top - bottom
    for tick in np.linspace(y_min, y_max, int(y_max - y_min) + 1 if y_max - y_min <= 10 else 6):
        y = top + plot_h - int(round((tick - y_min) / (y_max - y_min) * plot_h))
        cv2.line(image, (left, y), (left + plot_w, y), GRID, 1)
        _text(image, f"{tick:g}", left - 6, y, anchor="right")
    if y_label:
        _text(image, y_label, left, top - 16, 0.4)
    cv2.rectangle(image, (left, top), (left + plot_w, top + plot_h), INK, 1)
    if not days:
        return _png(image)
    ordinals = [date.fromisoformat(d).toordinal() for d in days]
    first, span = ordinals[0], max(ordinals[-1] - ordinals[0], 1)

    def x_of(ordinal: int) -> int:
        return left + (int(round((ordinal - first) / span * plot_w)) if len(days) > 1 else plot_w // 2)

    points = [(x_of(o), top + plot_h - int(round((y - y_min) / (y_max - y_min) * plot_h)))
              for o, y in zip(ordinals, ys)]
    if len(points) > 1:
        cv2.polylines(image, [np.asarray(points, dtype=np.int32)], False, BLUE, 2, cv2.LINE_AA)
    for point in points:
        cv2.circle(image, point, 3, BLUE, -1, cv2.LINE_AA)
    ticks = 6 if span > 6 else span + 1
    for k in range(ticks):
        ordinal = first + round(k * span / max(ticks - 1, 1))
        x = x_of(ordinal)
        cv2.line(image, (x, top + plot_h), (x, top + plot_h + 4), INK, 1)
        _text(image, date.fromordinal(ordinal).isoformat(), x, top + plot_h + 16, 0.35, anchor="centre")
    return _png(image)


def grid_chart(matrix: np.ndarray, row_labels: Sequence[str], title: str) -> bytes:
    """A rows x 24 grid (day of week x hour), shaded by count, with the count in each cell."""
    cell, left, top = 28, 96, 50
    rows, cols = matrix.shape
    image = _canvas(left + cols * cell + 12, top + rows * cell + 16, title)
    peak = matrix.max() or 1
    for c in range(cols):
        _text(image, str(c), left + c * cell + cell // 2, top - 10, 0.35, anchor="centre")
    for r in range(rows):
        _text(image, row_labels[r], left - 8, top + r * cell + cell // 2, anchor="right")
        for c in range(cols):
            value = int(matrix[r, c])
            level = int(round(255 * (1 - 0.85 * np.sqrt(value / peak))))
            x, y = left + c * cell, top + r * cell
            cv2.rectangle(image, (x, y), (x + cell, y + cell), (level, level, 255) if value else WHITE, -1)
            cv2.rectangle(image, (x, y), (x + cell, y + cell), GRID, 1)
            if value:
                _text(image, str(value), x + cell // 2, y + cell // 2, 0.33,
                      WHITE if level < 120 else INK, anchor="centre")
    return _png(image)
