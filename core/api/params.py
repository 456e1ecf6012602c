"""Query parameter types that accept exactly what the OpenAPI document says.

Pydantic's lax datetime reads ``until=0.5`` as a Unix time and ``since=1e9`` too; the document
says ``format: date-time``, so anything but an ISO 8601 date-time with its UTC offset is a 422.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}:?\d{2})$")
ISO_DATETIME_PATTERN = _ISO_DATETIME.pattern


def _iso_only(value: Any) -> Any:
    if isinstance(value, str) and not _ISO_DATETIME.match(value):
        raise ValueError("must be an ISO 8601 date-time with a UTC offset, e.g. 2026-05-01T00:00:00Z")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only), Field(json_schema_extra={"pattern": ISO_DATETIME_PATTERN})]
"""A date-time query parameter: ISO 8601 with an offset (``Z`` or ``+02:00``), nothing else."""
