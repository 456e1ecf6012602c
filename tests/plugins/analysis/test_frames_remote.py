"""Observatory(url, token): the same frames over a live server's API as Observatory.local() gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import httpx
import pandas as pd
import pytest

from plugins.analysis import Observatory
from plugins.analysis.frames import FilterError
from plugins.analysis.frames.remote import RemoteSource
from tests.support.serving import api_server

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def server(engine: Any, tmp_path: Path) -> Iterator[str]:
    with api_server(tmp_path, ROOT) as base:
        yield base


def test_remote_frames_equal_local_ones_for_staff_and_the_public(engine: Any, filled: Any, server: str) -> None:
    staff = Observatory(server, token=filled.people["op"].token, cache=False, progress=False)
    remote = staff.observations("survey")
    pd.testing.assert_frame_equal(remote, Observatory.local(engine=engine, cache=False).observations("survey"))
    anonymous = Observatory(server, cache=False, progress=False).observations("survey")
    public = Observatory.local(engine=engine, public=True, cache=False).observations("survey")
    pd.testing.assert_frame_equal(anonymous, public)
    assert anonymous["contributor_id"].isna().all()
    local_staff = Observatory.local(engine=engine, cache=False)
    anonymous_reader = Observatory(server, cache=False, progress=False)
    for frame in ("media", "identifications"):  # the related frames too, for either caller
        pd.testing.assert_frame_equal(getattr(staff, frame)("survey"), getattr(local_staff, frame)("survey"))
        pd.testing.assert_frame_equal(getattr(anonymous_reader, frame)("survey"),
                                      getattr(Observatory.local(engine=engine, public=True, cache=False), frame)("survey"))
    assert staff.identifications("survey")["identifier_id"].notna().all()
    before = anonymous_reader.source.requests
    anonymous_reader.identifications("survey")
    assert anonymous_reader.source.requests - before == 3  # the project, one page, one bulk read of its identifications
    assert staff.media("survey")["attribution"].tolist() == ["Survey"]
    filtered = staff.observations("survey", filters={"field.count>": 2})
    assert set(filtered["id"]) == {filled.ids["fox"], filled.ids["hidden"]}
    with pytest.raises(FilterError, match="colour"):  # the API's own message, not an httpx traceback
        staff.observations("survey", colour="red")
    with pytest.raises(FilterError, match="unknown field 'size'"):
        staff.observations("survey", filters={"field.size": 3})


def test_retries_on_429_and_503_honouring_retry_after() -> None:
    answers = [httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(503),
               httpx.Response(200, json={"ok": True})]
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return answers[len(seen) - 1]

    source = RemoteSource("http://engine.test", transport=httpx.MockTransport(handler), progress=False)
    assert source.get("/api/v1/health") == {"ok": True}
    assert source.requests == 3
