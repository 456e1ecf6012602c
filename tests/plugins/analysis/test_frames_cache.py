"""The on-disk cache: a second call reads Parquet and asks the database only for what changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from core.moderation import moderate
from plugins.analysis import Observatory
from tests.plugins.analysis.conftest import count_draft
from core.testing import submit


class Counting:
    """A source that counts the rows it was asked to read."""

    def __init__(self, source: Any) -> None:
        self.source, self.rows, self.calls = source, 0, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.source, name)

    def observations(self, project: str, params: Any) -> pd.DataFrame:
        frame = self.source.observations(project, params)
        self.rows, self.calls = self.rows + len(frame), self.calls + 1
        return frame


def test_refresh_brings_edits_new_rows_and_drops_what_the_public_no_longer_sees(
        engine: Any, client: Any, filled: Any, tmp_path: Path) -> None:
    public = Observatory.local(engine=engine, public=True, cache_dir=str(tmp_path), overlap_s=0)
    counting = Counting(public.source)
    public.source = counting
    first = public.observations("survey")
    assert counting.rows == 4 and len(list(tmp_path.glob("*.parquet"))) == 1
    ids = filled.ids
    ana = filled.people["ana"]
    edited = client.patch(f"/api/v1/observations/{ids['fox']}", json={"fields": {"species": "Vulpes vulpes",
                          "count": 7, "category": "mammal"}}, headers=ana.headers)
    assert edited.status_code == 200, edited.text
    new = int(submit(client, "survey", count_draft(9, count=3), token=ana.token)["id"])
    moderate(engine, ids["cat"], "trash", actor="test")
    counting.rows = 0
    second = public.observations("survey")
    assert set(second["id"]) == {ids["fox"], ids["hidden"], ids["bird"], new}
    assert second.set_index("id").loc[ids["fox"], "field.count"] == 7
    assert counting.rows == 2  # the edit and the new one, not the whole project
    fresh = Observatory.local(engine=engine, public=True, cache=False).observations("survey")
    pd.testing.assert_frame_equal(second, fresh)
    assert len(first) == 4
    assert list(public.observations("survey", refresh=False)["id"]) == list(second["id"])
