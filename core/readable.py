"""Stored JSON values as they can always be sent: the read side of ``core.lifecycle.field_problems``.

New fields are checked before they are stored, so for them ``readable`` changes nothing. Rows stored
before those checks (or written by other means) may hold what no answer can carry: lone surrogates
(no UTF-8 encoder writes them), NaN and infinities (not JSON), nesting deeper than the response
serializer goes (about 255 levels). Lists, exports and the audit log pass stored values through
``readable`` so that one such row cannot break them for everyone.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

READABLE_DEPTH = 200
"""Levels kept as they are; a deeper object or array is shown as its JSON text (a string)."""

_SURROGATE = re.compile("[\ud800-\udfff]")
_UNCHANGED = object()


def readable(value: Any, depth: int = READABLE_DEPTH) -> Any:
    """``value`` with lone surrogates replaced by U+FFFD, NaN and infinities by null, and what is
    nested deeper than ``depth`` levels by its JSON text; ``value`` itself when nothing needs it."""
    out = _repair(value, depth)
    return value if out is _UNCHANGED else out


def _repair(value: Any, depth: int) -> Any:
    """The repaired value, or ``_UNCHANGED``."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else _UNCHANGED
    if isinstance(value, float):
        return _UNCHANGED if math.isfinite(value) else None
    if isinstance(value, dict):
        if depth <= 0:
            return _as_text(value)
        items: list[tuple[Any, Any]] | None = None
        for i, (key, item) in enumerate(value.items()):
            new_key, new_item = _repair(key, depth), _repair(item, depth - 1)
            if items is None and (new_key is not _UNCHANGED or new_item is not _UNCHANGED):
                items = list(value.items())[:i]
            if items is not None:
                items.append((key if new_key is _UNCHANGED else new_key, item if new_item is _UNCHANGED else new_item))
        return _UNCHANGED if items is None else dict(items)
    if isinstance(value, (list, tuple)):
        if depth <= 0:
            return _as_text(value)
        repaired = [_repair(item, depth - 1) for item in value]
        if all(r is _UNCHANGED for r in repaired) and isinstance(value, list):
            return _UNCHANGED
        return [item if r is _UNCHANGED else r for item, r in zip(value, repaired)]
    return _UNCHANGED


def _as_text(value: Any) -> str:
    try:  # ensure_ascii writes surrogates as escapes; default=str: whatever else a plugin left there
        return json.dumps(value, ensure_ascii=True, default=str)
    except (ValueError, RecursionError):
        return "\u2026"
