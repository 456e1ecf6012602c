"""Stored JSON values as they can always be sent: the read side of ``core.lifecycle.field_problems``.

New fields are checked before they are stored, so for them ``readable`` changes nothing. Rows stored
before those checks (or written by other means) may hold what no answer can carry: lone surrogates
(no UTF-8 encoder writes them), NaN and infinities (not JSON), nesting deeper than the response
serializer goes (about 255 levels). Lists, exports and the audit log pass stored values through
``readable`` so that one such row cannot break them for everyone.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from typing import Any

READABLE_DEPTH = 200
"""Levels kept as they are; a deeper object or array is shown as its JSON text (a string)."""

_SURROGATE = re.compile("[\ud800-\udfff]")
_has_surrogate = _SURROGATE.search
_UNCHANGED = object()


def readable(value: Any, depth: int = READABLE_DEPTH) -> Any:
    """``value`` with lone surrogates replaced by U+FFFD, NaN and infinities by null, and what is
    nested deeper than ``depth`` levels by its JSON text; ``value`` itself when nothing needs it."""
    out = _repair(value, depth)
    return value if out is _UNCHANGED else out


def _repair(value: Any, depth: int) -> Any:
    """The repaired value, or ``_UNCHANGED`` (the common case: one pass, nothing copied)."""
    kind = type(value)
    if kind is str:
        return _SURROGATE.sub("\ufffd", value) if _has_surrogate(value) else _UNCHANGED
    if kind is float:
        return _UNCHANGED if math.isfinite(value) else None
    if kind is dict:
        if depth <= 0:
            return _as_text(value)
        done: dict[Any, Any] | None = None  # the repaired copy, from the first member that needs it
        for i, (key, item) in enumerate(value.items()):
            new_key = _repair(key, depth) if type(key) is str and _has_surrogate(key) else _UNCHANGED
            new_item = _UNCHANGED if _plain(item) else _repair(item, depth - 1)
            if done is None and (new_key is not _UNCHANGED or new_item is not _UNCHANGED):
                done = dict(itertools.islice(value.items(), i))
            if done is not None:
                done[key if new_key is _UNCHANGED else new_key] = item if new_item is _UNCHANGED else new_item
        return _UNCHANGED if done is None else done
    if kind is list or kind is tuple:
        if depth <= 0:
            return _as_text(value)
        changed: list[Any] | None = None if kind is list else []
        for i, item in enumerate(value):
            new_item = _UNCHANGED if _plain(item) else _repair(item, depth - 1)
            if changed is None and new_item is not _UNCHANGED:
                changed = list(value[:i])
            if changed is not None:
                changed.append(item if new_item is _UNCHANGED else new_item)
        return _UNCHANGED if changed is None else changed
    return _UNCHANGED


def _plain(value: Any) -> bool:
    """Whether ``value`` is a scalar that never needs repair (the fast path of nearly every value)."""
    kind = type(value)
    return kind is int or kind is bool or value is None or (kind is str and _has_surrogate(value) is None)


def _as_text(value: Any) -> str:
    try:  # ensure_ascii writes surrogates as escapes; default=str: whatever else a plugin left there
        return json.dumps(value, ensure_ascii=True, default=str)
    except (ValueError, RecursionError):
        return "\u2026"
