"""Checks on the fields of an odour draft, with messages a contributor can act on.

Every problem has the path ``("fields", <name>)`` and a message naming the value received and
what is allowed, e.g. ``intensity 7 is out of range: allowed 0 (not perceptible) to 6
(extremely strong)``. All problems are reported at once, not only the first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.types import Problem
from plugins.odour.catalogue import (
    CATEGORIES,
    DURATIONS,
    HEDONIC_MAX,
    HEDONIC_MIN,
    HEDONIC_TONE_LABELS,
    INTENSITY_LABELS,
    INTENSITY_MAX,
    INTENSITY_MIN,
    NO_ODOUR,
    SUBTYPES,
    subtypes_of,
)
from plugins.odour.schema import DESCRIPTION_MAX, FIELD_NAMES, REQUIRED_FIELDS, SUSPECTED_ORIGIN_MAX


def _path(name: str) -> tuple[str, str]:
    return ("fields", name)


def _as_int(value: Any) -> int | None:
    """``value`` as an int when it is a whole number (3 or 3.0), else None (bools refused)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _ranges() -> dict[str, tuple[int, int, str]]:
    categories = ", ".join(f"{c.id} {c.name.lower()}" for c in CATEGORIES.values())
    durations = ", ".join(f"{k} {v.lower()}" for k, v in DURATIONS.items())
    return {
        "intensity": (
            INTENSITY_MIN,
            INTENSITY_MAX,
            (
                f"allowed {INTENSITY_MIN} ({INTENSITY_LABELS[INTENSITY_MIN].lower()}) to "
                f"{INTENSITY_MAX} ({INTENSITY_LABELS[INTENSITY_MAX].lower()})"
            ),
        ),
        "hedonic_tone": (
            HEDONIC_MIN,
            HEDONIC_MAX,
            (
                f"allowed {HEDONIC_MIN} ({HEDONIC_TONE_LABELS[HEDONIC_MIN].lower()}) to "
                f"+{HEDONIC_MAX} ({HEDONIC_TONE_LABELS[HEDONIC_MAX].lower()})"
            ),
        ),
        "category": (min(CATEGORIES), max(CATEGORIES), f"allowed {categories}"),
        "subtype": (min(SUBTYPES), max(SUBTYPES), f"allowed {min(SUBTYPES)} to {max(SUBTYPES)}"),
        "duration": (min(DURATIONS), max(DURATIONS), f"allowed {durations}"),
    }


_RANGES = _ranges()


def _category_text(category_id: int) -> str:
    return f"category {category_id} ({CATEGORIES[category_id].name.lower()})"


def validate_odour(fields: Mapping[str, Any]) -> list[Problem]:
    """Check the ``fields`` of an odour draft; return every problem found (empty when valid).

    Checks: unknown fields; required fields; whole numbers within range for category (1..9),
    subtype (1..89), intensity (0..6), hedonic tone (-4..+4), duration (1..3); the subtype
    belongs to the category; category 9 "no odour" if and only if intensity is 0; text
    lengths of ``suspected_origin`` (180) and ``description`` (1024).
    """
    if not isinstance(fields, Mapping):
        return [Problem(("fields",), f"fields must be an object, got {type(fields).__name__}", "type")]

    problems: list[Problem] = []
    for name in fields:
        if name not in FIELD_NAMES:
            problems.append(
                Problem(
                    _path(str(name)),
                    f"unknown field {name!r}; odour fields are {', '.join(FIELD_NAMES)}",
                    "unknown_field",
                )
            )

    values: dict[str, int] = {}
    for name, (low, high, allowed) in _RANGES.items():
        raw = fields.get(name)
        if raw is None:
            if name in REQUIRED_FIELDS:
                problems.append(Problem(_path(name), f"{name} is required: {allowed}", "required"))
            continue
        value = _as_int(raw)
        if value is None:
            problems.append(Problem(_path(name), f"{name} must be a whole number, got {raw!r}: {allowed}", "type"))
            continue
        known = {"category": CATEGORIES, "subtype": SUBTYPES, "duration": DURATIONS}.get(name)
        if not low <= value <= high or (known is not None and value not in known):
            problems.append(Problem(_path(name), f"{name} {value} is out of range: {allowed}", "out_of_range"))
            continue
        values[name] = value

    category, subtype = values.get("category"), values.get("subtype")
    if category is not None and subtype is not None and SUBTYPES[subtype].category_id != category:
        owner = SUBTYPES[subtype].category_id
        ids = [s.id for s in subtypes_of(category)]
        allowed_ids = f"{ids[0]} to {ids[-1]}" if len(ids) > 1 else str(ids[0])
        problems.append(
            Problem(
                _path("subtype"),
                f"subtype {subtype} ({SUBTYPES[subtype].name}) belongs to {_category_text(owner)}, "
                f"not {_category_text(category)}; subtypes of {CATEGORIES[category].name.lower()} "
                f"are {allowed_ids}",
                "subtype_mismatch",
            )
        )

    intensity = values.get("intensity")
    if category is not None and intensity is not None:
        if category == NO_ODOUR and intensity != INTENSITY_MIN:
            problems.append(
                Problem(
                    _path("intensity"),
                    f"intensity {intensity} contradicts {_category_text(NO_ODOUR)}: "
                    f"no odour requires intensity 0 ({INTENSITY_LABELS[0].lower()})",
                    "inconsistent",
                )
            )
        elif category != NO_ODOUR and intensity == INTENSITY_MIN:
            problems.append(
                Problem(
                    _path("intensity"),
                    f"intensity 0 ({INTENSITY_LABELS[0].lower()}) means no odour, but the report "
                    f"has {_category_text(category)}: choose an intensity of 1 to 6, or "
                    f"{_category_text(NO_ODOUR)}",
                    "inconsistent",
                )
            )

    for name, limit in (("suspected_origin", SUSPECTED_ORIGIN_MAX), ("description", DESCRIPTION_MAX)):
        raw = fields.get(name)
        if raw is None:
            continue
        if not isinstance(raw, str):
            problems.append(Problem(_path(name), f"{name} must be text, got {type(raw).__name__}", "type"))
        elif len(raw) > limit:
            problems.append(
                Problem(
                    _path(name),
                    f"{name} is {len(raw)} characters long: allowed at most {limit}",
                    "too_long",
                )
            )
    return problems
