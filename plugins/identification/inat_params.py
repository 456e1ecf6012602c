"""The parameters of ``/inat/v1``, as iNaturalist's v1 API and pyinaturalist send them, checked.

The shapes are checked by FastAPI against the patterns and ranges below (and so stated in the
OpenAPI document); what a pattern cannot say (a date that does not exist, a project or taxon
that is unknown, half a bounding box) is a 422 ``invalid_filter_value`` naming the parameter.
Lists are comma-separated, as iNaturalist takes them (``taxon_id=1,2``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Annotated, Literal

from fastapi import Query

from core.api.errors import ApiError

MAX_ID = 2_147_483_647
MAX_PER_PAGE = 200
RESULT_WINDOW = 10_000
"""As iNaturalist: ``page * per_page`` may not pass it (403); ``id_above`` pages on past it."""

_INT = r"[0-9]{1,19}"
INT_LIST = rf"^{_INT}(,{_INT}){{0,499}}$"
_WORD = r"[A-Za-z0-9_-]{1,64}"
WORD_LIST = rf"^{_WORD}(,{_WORD}){{0,99}}$"
GRADES = ("casual", "needs_id", "research")
GRADE_LIST = r"^(casual|needs_id|research)(,(casual|needs_id|research)){0,2}$"
MOMENT = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?([Zz]|[+-][0-9]{2}:?[0-9]{2})?)?$"
LOCALE = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?$"
TEXT = r"^[^\x00-\x1f\x7f]+$"
"""Free text (``q``): no control characters (PostgreSQL text cannot even hold NUL)."""
RANKS = r"^[a-z]{1,20}(,[a-z]{1,20}){0,39}$"
ORDER_BY = Literal["id", "created_at", "observed_on", "updated_at"]
Flag = Literal["true", "false"]


def invalid(name: str, message: str) -> ApiError:
    """A value whose shape is right but which cannot be used (422 ``invalid_filter_value``)."""
    return ApiError(422, "invalid_filter_value", f"{name}: {message}")


def split(value: str | None) -> list[str]:
    return [part for part in (value or "").split(",") if part]


def id_list(value: str | None) -> list[int] | None:
    """A comma-separated list of ids; ids past the database's range name nothing (dropped)."""
    if value is None:
        return None
    return [number for number in map(int, split(value)) if number <= MAX_ID]


@dataclass(frozen=True)
class Moment:
    """A ``d1``-like bound: a whole day (in each project's time zone) or an instant."""

    day: date | None = None
    instant: datetime | None = None


def moment(name: str, value: str | None) -> Moment | None:
    """``YYYY-MM-DD`` (a day) or an ISO date-time (no offset: UTC, as iNaturalist reads it)."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            return Moment(day=date.fromisoformat(value))
        instant = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
        instant = (instant if instant.tzinfo else instant.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    except (ValueError, OverflowError):  # no such day, or past year 1..9999 once in UTC
        raise invalid(name, f"{value!r} is not a date or date-time that exists (in UTC)") from None
    return Moment(instant=instant)


def flag(value: str | None) -> bool | None:
    return None if value is None else value == "true"


_LOCALE_SPLIT = re.compile(r"[-_]")


def lexicon(locale: str | None) -> str:
    """The language of common names a ``locale`` asks for (``en`` by default, as iNaturalist)."""
    return _LOCALE_SPLIT.split(locale or "en")[0].lower()


def window(page: int, per_page: int) -> None:
    """403, as iNaturalist answers, past the result window."""
    if page * per_page > RESULT_WINDOW:
        raise ApiError(403, "result_window_too_large",
                       f"page * per_page must be at most {RESULT_WINDOW}; page on with id_above or id_below")


# FastAPI query parameters, shared by the routes (descriptions are the API's documentation)
PerPage = Annotated[int, Query(ge=0, le=MAX_PER_PAGE, description="results per page (0: only total_results)")]
Page = Annotated[int, Query(ge=1, le=RESULT_WINDOW, description="page number; page * per_page at most 10000")]
IdList = Annotated[str | None, Query(pattern=INT_LIST, description="comma-separated ids")]
Locale = Annotated[str | None, Query(pattern=LOCALE, description="language of preferred_common_name (default en)")]
PlaceId = Annotated[int | None, Query(ge=0, le=MAX_ID, description="accepted and ignored (this engine has no places)")]
Order = Annotated[Literal["asc", "desc"], Query(description="sort direction")]
