"""Pages bounded in bytes as well as in rows.

A page of ``limit`` rows whose JSON columns are each at the largest size the engine accepts would
cost the server many times ``limit × max_fields_bytes`` to build (a list of small numbers takes
about eight times its JSON in memory). So a page also stops once the JSON it carries passes
``OBSERVATORY_MAX_PAGE_BYTES``, measured in SQL before anything is loaded; it always holds at
least one row, and its ``next_cursor`` continues where it stopped.
"""

from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import Text, cast, func


def json_size(*columns: Any) -> Any:
    """The length of JSON columns as text, in SQL (0 for null), added up."""
    sizes = [func.coalesce(func.length(cast(column, Text)), 0) for column in columns]
    total = sizes[0]
    for size in sizes[1:]:
        total = total + size
    return total


def rows_within(sizes: Sequence[tuple[int, int | None]], limit: int, budget: int) -> int:
    """How many of ``sizes`` ((id, size) in page order) fit in a page of ``limit`` rows and ``budget``
    characters of JSON; at least one when there is one."""
    count = total = 0
    for _, size in sizes[:limit]:
        size = size or 0
        if count and total + size > budget:
            break
        count, total = count + 1, total + size
    return count
