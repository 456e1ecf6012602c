"""The observations frame's columns and their dtypes, in one place (docs/analysis.md lists them).

Both readers (``local``: the database; ``remote``: the HTTP API) gather plain Python or numpy
columns and hand them to :func:`observations_frame`, which gives every column its contract dtype,
so the two cannot drift apart."""

from __future__ import annotations

import json
from typing import Any, Mapping

import numpy as np
import pandas as pd

UTC = "datetime64[ns, UTC]"
STRING = pd.StringDtype()

BASE_COLUMNS: dict[str, Any] = {
    "id": "Int64",
    "project": "category",
    "kind": "category",
    "status": "category",
    "contributor_id": "Int64",
    "observed_at": UTC,
    "created_at": UTC,
    "updated_at": UTC,
    "lat": "Float64",
    "lon": "Float64",
    "location_privacy": "category",
    "taxon_id": "Int64",
    "taxon_name": STRING,
    "taxon_rank": "category",
    "kingdom": STRING,
    "phylum": STRING,
    "class": STRING,
    "order": STRING,
    "family": STRING,
    "genus": STRING,
    "species": STRING,
    "category": STRING,
    "grade": "category",
    "licence": "category",
    "flags": STRING,
    "n_media": "Int64",
    "n_comments": "Int64",
}
"""The columns every observations frame has, in order, with their dtypes."""

CATEGORY_COLUMNS = frozenset(name for name, dtype in BASE_COLUMNS.items() if dtype == "category")

RANKS = ("kingdom", "phylum", "class", "order", "family", "genus", "species")
"""The ancestor ranks that get a column of their own."""

SPECIES_ID = "species_id"
ENRICHMENT_COLUMNS: dict[str, dict[str, Any]] = {
    SPECIES_ID: {"species_id.top_label": STRING, "species_id.top_score": "Float64", "species_id.top_taxon_id": "Int64"},
}
"""Summary columns of enrichment services, added when the project enables the service."""

CATEGORY_FIELDS = ("category",)
"""Fields whose value is the ``category`` column of kinds without taxa (odour's category)."""

FIELD_DTYPES = {"integer": "Int64", "number": "Float64", "boolean": "boolean", "string": STRING}
"""A field's JSON Schema type -> its column's dtype; any other field (objects, lists) is JSON text."""

MEDIA_COLUMNS: dict[str, Any] = {"observation_id": "Int64", "media_id": "Int64", "url": STRING,
                                 "content_type": "category", "licence": "category", "attribution": STRING}
IDENTIFICATION_COLUMNS: dict[str, Any] = {"observation_id": "Int64", "identification_id": "Int64", "taxon_id": "Int64", "taxon_name": STRING,
                                          "category": "category", "current": "boolean", "created_at": UTC,
                                          "identifier_id": "Int64"}


def field_dtype(json_type: str) -> Any:
    """The dtype of a ``field.NAME`` column whose schema type is ``json_type``."""
    return FIELD_DTYPES.get(json_type, STRING)


def field_types(kinds: Mapping[str, Any]) -> dict[str, str]:
    """``field.NAME`` -> the JSON type its values are read as, for the kinds' schemas (``kinds``:
    name -> JSON Schema); a field whose kinds disagree on its type is JSON text."""
    from core.filters import _json_type  # the filters' own reading of a field's type

    found: dict[str, set[str]] = {}
    for schema in kinds.values():
        properties = schema.get("properties") if isinstance(schema, dict) else None
        for name, sub in (properties or {}).items() if isinstance(properties, dict) else ():
            found.setdefault(name, set()).add(_json_type(sub) if _simple(sub) else "json")
    return {f"field.{name}": types.pop() if len(types) == 1 else "json" for name, types in sorted(found.items())}


def _simple(schema: Any) -> bool:
    declared = schema.get("type") if isinstance(schema, dict) else None
    return not (declared in ("object", "array") or isinstance(declared, list) and {"object", "array"} & set(declared))


def field_value(value: Any, json_type: str) -> Any:
    """A stored field value as its column holds it: None where it has another type (an older row)."""
    if value is None:
        return None
    if json_type == "integer":
        return value if isinstance(value, int) and not isinstance(value, bool) else (
            int(value) if isinstance(value, float) and value.is_integer() else None)
    if json_type == "number":
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if json_type == "boolean":
        return value if isinstance(value, bool) else None
    if json_type == "string":
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return json.dumps(value, sort_keys=True)


def as_dtype(values: Any, dtype: Any) -> pd.Series:
    """``values`` (a list or array, None for missing) as a Series of ``dtype``."""
    if isinstance(dtype, str) and dtype.startswith("datetime64"):
        if isinstance(values, pd.Series) and isinstance(values.dtype, pd.DatetimeTZDtype):
            return values.dt.tz_convert("UTC").astype(UTC)
        return pd.Series(pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601")).astype(UTC)
    if dtype == "category":
        series = pd.Series(values, dtype=object)
        return series.astype(STRING).astype("category")  # categories: the values present, sorted
    if dtype in ("Int64", "Float64"):
        if isinstance(values, np.ndarray) and values.dtype.kind in "iuf":
            return pd.Series(values).astype(dtype)
        return pd.Series(pd.array(list(values), dtype=dtype))
    if dtype == "boolean":
        return pd.Series(pd.array([None if v is None else bool(v) for v in values], dtype="boolean"))
    return pd.Series(values, dtype=object).astype(dtype)


def observations_frame(columns: Mapping[str, Any], field_columns: Mapping[str, Any]) -> pd.DataFrame:
    """The frame of gathered ``columns`` (a name of BASE_COLUMNS or ENRICHMENT_COLUMNS -> values)
    and ``field_columns`` (``field.NAME`` -> dtype; their values in ``columns``), with the
    contract's dtypes, columns in the contract's order, sorted by id."""
    dtypes = dict(BASE_COLUMNS)
    for extra in ENRICHMENT_COLUMNS.values():
        dtypes.update({k: v for k, v in extra.items() if k in columns})
    dtypes.update(field_columns)
    data = {name: as_dtype(columns.get(name, [None] * _length(columns)), dtype) for name, dtype in dtypes.items()}
    frame = pd.DataFrame(data)
    return frame.sort_values("id", kind="stable").reset_index(drop=True) if len(frame) else frame


def typed_frame(columns: Mapping[str, Any], dtypes: Mapping[str, Any], order: list[str]) -> pd.DataFrame:
    """A frame of ``columns`` (name -> values) with ``dtypes`` (its columns, in order), sorted by
    the columns ``order`` names: how the media and identifications frames are built."""
    length = len(next(iter(columns.values()))) if columns else 0
    frame = pd.DataFrame({name: as_dtype(columns.get(name, [None] * length), dtype) for name, dtype in dtypes.items()})
    return frame.sort_values(order, kind="stable").reset_index(drop=True) if len(frame) else frame


def normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with each category column's categories the values present, sorted (as a fresh
    read gives them), and a fresh RangeIndex: after merging cached and new rows."""
    frame = frame.reset_index(drop=True)
    for name in frame.columns:
        if name in CATEGORY_COLUMNS or isinstance(frame[name].dtype, pd.CategoricalDtype):
            frame[name] = frame[name].astype(STRING).astype("category")
    return frame


def _length(columns: Mapping[str, Any]) -> int:
    ids = columns.get("id")
    return 0 if ids is None else len(ids)
