"""The ``odour`` kind: the JSON Schema of its fields, with titles and labels for forms.

Every enumerated property carries ``title`` and ``x-labels`` (value -> label; JSON object keys
are strings, so the values appear as ``"1"``, ``"-4"``...). ``subtype`` also carries
``x-category`` (subtype -> its category) so that an app can narrow the subtype list once a
category is chosen. The schema checks shapes and ranges only; :func:`validate_odour` adds the
rules a schema cannot say well (subtype within category, no odour iff intensity 0).
"""

from __future__ import annotations

import copy
from typing import Any

from core.types import ObservationType
from plugins.odour.catalogue import (
    CATEGORIES,
    DURATIONS,
    HEDONIC_TONE_LABELS,
    INTENSITY_LABELS,
    SUBTYPES,
)

SUSPECTED_ORIGIN_MAX = 180
"""OdourCollect's limit on ``origin``."""
DESCRIPTION_MAX = 1024
"""OdourCollect's limit on ``description``."""

FIELD_NAMES: tuple[str, ...] = (
    "category",
    "subtype",
    "intensity",
    "hedonic_tone",
    "duration",
    "suspected_origin",
    "description",
)
REQUIRED_FIELDS: tuple[str, ...] = ("category", "subtype", "intensity", "hedonic_tone")


def _labels(mapping: dict[int, str]) -> dict[str, str]:
    return {str(k): v for k, v in mapping.items()}


ODOUR_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Odour observation",
    "description": "An odour perceived at a place and time (OdourCollect's form, VDI 3882 scales).",
    "type": "object",
    "properties": {
        "category": {
            "type": "integer",
            "title": "Odour category",
            "enum": sorted(CATEGORIES),
            "x-labels": {str(c.id): c.name for c in CATEGORIES.values()},
            "x-colours": {str(c.id): c.colour for c in CATEGORIES.values()},
        },
        "subtype": {
            "type": "integer",
            "title": "Odour type",
            "enum": sorted(SUBTYPES),
            "x-labels": {str(s.id): s.name for s in SUBTYPES.values()},
            "x-category": {str(s.id): s.category_id for s in SUBTYPES.values()},
        },
        "intensity": {
            "type": "integer",
            "title": "Intensity (VDI 3882)",
            "minimum": min(INTENSITY_LABELS),
            "maximum": max(INTENSITY_LABELS),
            "enum": sorted(INTENSITY_LABELS),
            "x-labels": _labels(INTENSITY_LABELS),
        },
        "hedonic_tone": {
            "type": "integer",
            "title": "Hedonic tone (VDI 3882)",
            "minimum": min(HEDONIC_TONE_LABELS),
            "maximum": max(HEDONIC_TONE_LABELS),
            "enum": sorted(HEDONIC_TONE_LABELS),
            "x-labels": _labels(HEDONIC_TONE_LABELS),
        },
        "duration": {
            "type": "integer",
            "title": "Duration",
            "enum": sorted(DURATIONS),
            "x-labels": _labels(DURATIONS),
        },
        "suspected_origin": {
            "type": "string",
            "title": "Suspected origin",
            "maxLength": SUSPECTED_ORIGIN_MAX,
        },
        "description": {
            "type": "string",
            "title": "Description",
            "maxLength": DESCRIPTION_MAX,
        },
    },
    "required": list(REQUIRED_FIELDS),
    "additionalProperties": False,
    "x-order": list(FIELD_NAMES),
}


def odour_type() -> ObservationType:
    """The ``odour`` kind, for ``register_observation_types`` (a fresh copy of the schema)."""
    return ObservationType(
        name="odour",
        title="Odour",
        schema=copy.deepcopy(ODOUR_SCHEMA),
        description=(
            "An odour report as OdourCollect collects it: category and subtype, intensity 0-6 "
            "and hedonic tone -4..+4 (VDI 3882), duration, suspected origin, description."
        ),
        plugin="odour",
    )


ODOUR_SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Odour service settings (per project)",
    "additionalProperties": False,
    "properties": {
        "window_h": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 4,
            "title": "Event window (hours): reports of one odour this close in time can link",
        },
        "distance_m": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 2000,
            "title": "Event distance (metres): reports of one odour this close can link",
        },
        "min_contributors": {
            "type": "integer",
            "minimum": 1,
            "default": 2,
            "title": "Distinct contributors an event needs",
        },
        "burst_reports": {"type": "integer", "minimum": 2, "default": 5, "title": "Reports that make a burst"},
        "burst_minutes": {"type": "number", "exclusiveMinimum": 0, "default": 10, "title": "Burst span (minutes)"},
        "heatmap_cell_m": {"type": "number", "exclusiveMinimum": 0, "default": 500, "title": "Heat map cell (m)"},
        "analysis_max_reports": {
            "type": "integer",
            "minimum": 1,
            "maximum": 1000000,
            "default": 100000,
            "title": "Reports one analysis request works on at most (the newest of its selection)",
        },
        "list_max_reports": {
            "type": "integer",
            "minimum": 1,
            "maximum": 1000000,
            "default": 10000,
            "title": "Rows one /api/odor/list answer holds at most per project (the newest that pass)",
        },
        "points_of_interest": {
            "type": "array",
            "default": [],
            "items": {
                "type": "object",
                "required": ["name", "lat", "lon"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "lat": {"type": "number", "minimum": -90, "maximum": 90},
                    "lon": {"type": "number", "minimum": -180, "maximum": 180},
                },
            },
        },
        "zones": {
            "type": "array",
            "default": [],
            "items": {
                "type": "object",
                "required": ["name", "polygon"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "polygon": {
                        "type": "array",
                        "minItems": 3,
                        "items": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number"}},
                    },
                },
            },
        },
    },
}
"""JSON Schema of the ``odour`` service's per-project settings, for ``registry.yaml``
(``services.odour.settings``); its defaults are those of the modules."""
