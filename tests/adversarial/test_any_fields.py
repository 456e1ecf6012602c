"""Issue 9, finding 2, as a property: whatever JSON a contributor sends as ``fields`` (any unicode,
lone surrogates and NUL included, deep nesting, big integers, extreme floats, long strings, many
keys), the draft is either refused with 422 and nothing is stored, or it can be read, listed
(by staff and by the public), exported as CSV and GeoJSON, edited and audited without error, and
every one of those gives back the value that was sent.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from core.api.ratelimit import RateLimiter
from core.db.models import Base, Observation
from tests.conftest import draft

API = "/api/v1"
PROJECT = "gamma"  # public and auto-published: what is accepted is at once in the public list and export

# characters of every category, surrogates (Cs) and NUL included, and some that break things
ODD = ["\x00", "\ud800", "\udc00", "\udfff", "\ud83d", "\ude00", "\ufeff", "\uffff", "\u2028",
       "\U0001f98a", '"', "\\", "\n", "\r", ",", "\x7f"]
CHARACTERS = st.one_of(st.characters(exclude_categories=()), st.sampled_from(ODD))
SHORT = st.text(CHARACTERS, max_size=6)
TEXT = st.one_of(  # hypothesis draws short and plain strings often: one odd character in the middle, often
    st.text(CHARACTERS, max_size=12),
    # a surrogate pair as two escapes (\ud83d\ude00) is one character to a JSON reader
    st.builds(lambda a, odd, b: a + odd + b, SHORT, st.sampled_from([*ODD, "\ud83d\ude00"]), SHORT),
)
LONG_TEXT = st.builds(lambda c, n: c * n, st.sampled_from(["a", "é", "🦊", "\x00"]),
                      st.integers(60 * 1024 // 4, 70 * 1024))
INTEGERS = st.one_of(
    st.integers(-(2**53), 2**53),
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**53 - 1, 2**53, -(2**53 - 1), -(2**53), 2**63 - 1, 2**63, 2**64, -(2**63)]),
)
FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([5e-324, 1.7976931348623157e308, -0.0, 1e16, 0.1, 1e-7, 2.0**53 + 1]),
)
SCALARS = st.one_of(st.none(), st.booleans(), INTEGERS, FLOATS, TEXT)


def _nested(depth: int, leaf: Any, key: str) -> Any:
    for i in range(depth):
        leaf = {key: leaf} if i % 2 else [leaf]
    return leaf


DEEP = st.builds(_nested, st.one_of(st.integers(25, 40), st.sampled_from([300])), SCALARS, TEXT)
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(TEXT, inner, max_size=4)), max_leaves=12)
MANY_KEYS = st.builds(lambda n: {f"k{i}": i for i in range(n)}, st.integers(990, 1010))
LARGE = st.builds(lambda n: {f"k{i}": "v" * 60_000 for i in range(n)}, st.integers(3, 5))
FIELDS = st.one_of(
    st.dictionaries(TEXT, JSON, max_size=6),
    st.dictionaries(TEXT, st.one_of(JSON, DEEP, LONG_TEXT), min_size=1, max_size=3),
    st.one_of(MANY_KEYS, LARGE),
)


def as_json(value: Any) -> Any:
    """``value`` as a JSON reader gets it (escaped surrogate pairs joined, tuples as lists)."""
    return json.loads(json.dumps(value, allow_nan=True))


def same(a: Any, b: Any) -> bool:
    """Equal as JSON texts: 1 and 1.0, or 0 and false, are not the same value."""
    return json.dumps(a, sort_keys=True, allow_nan=True) == json.dumps(b, sort_keys=True, allow_nan=True)


def csv_rows(text: str) -> dict[str, dict[str, str]]:
    """The rows of a CSV export by id. A fields cell may pass the csv module's default limit of 128 KiB
    (max_fields_bytes is 256 KiB, and CSV doubles quotes), so a reader has to lift it, as here."""
    limit = csv.field_size_limit(sys.maxsize)
    try:
        return {row["id"]: row for row in csv.DictReader(io.StringIO(text))}
    finally:
        csv.field_size_limit(limit)


def forget_observations(engine: Any) -> None:
    """Every observation gone (accounts and tokens kept): each example exports one row, not all before it."""
    with engine.db.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name not in ("accounts", "memberships", "api_tokens", "media_blobs"):
                conn.execute(table.delete())


def count(engine: Any) -> int:
    with engine.db.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(Observation.__table__)).scalar_one()


@settings(max_examples=70, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(fields=FIELDS, ascii_only=st.booleans())
def test_any_fields_are_refused_or_read_back_everywhere(client, app, engine, operator_token, fields, ascii_only):
    app.state.rate_limiter = RateLimiter(0)  # many requests per example
    forget_observations(engine)
    headers = {"Authorization": f"Bearer {operator_token}"}
    # a lone surrogate can only travel escaped (\udc00); unescaped, it is not UTF-8 and must be refused too
    body = json.dumps(draft(fields=fields), ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    before = count(engine)
    created = client.post(f"{API}/projects/{PROJECT}/observations", content=body,
                          headers={**headers, "Content-Type": "application/json"})
    assert created.status_code in (201, 422), created.text
    if created.status_code == 422:
        error = created.json()["error"]
        assert error["code"] in ("validation_failed",) and error["details"], error
        event(f"refused: {error['details'][0]['code']}")
        assert count(engine) == before
        return
    assert count(engine) == before + 1
    event("accepted")
    sent = as_json(fields)
    obs_id = created.json()["id"]
    assert same(created.json()["fields"], sent)

    # read, listed (staff and public)
    one = client.get(f"{API}/observations/{obs_id}", headers=headers)
    assert one.status_code == 200 and same(one.json()["fields"], sent)
    for who in (headers, {}):
        page = client.get(f"{API}/projects/{PROJECT}/observations?limit=1", headers=who)
        assert page.status_code == 200, page.text
        assert page.json()["items"][0]["id"] == obs_id and same(page.json()["items"][0]["fields"], sent)

    # exported, whole (a stream cut in the middle would not parse)
    for scope in ("public", "all"):
        table = client.get(f"{API}/projects/{PROJECT}/export?format=csv&scope={scope}", headers=headers)
        assert table.status_code == 200
        rows = csv_rows(table.content.decode("utf-8"))
        # the project's only kind (generic) names no field: every key is in the fields_other cell
        assert same(json.loads(rows[str(obs_id)]["fields_other"] or "{}"), sent)
        geo = client.get(f"{API}/projects/{PROJECT}/export?format=geojson&scope={scope}", headers=headers)
        assert geo.status_code == 200
        features = {f["properties"]["id"]: f for f in json.loads(geo.content.decode("utf-8"))["features"]}
        assert same(features[obs_id]["properties"]["fields"], sent)

    # edited: one value replaced (or one added), so that no limit is crossed by the edit itself
    key = next(iter(sent), "_edited")
    edited = client.patch(f"{API}/observations/{obs_id}", json={"fields": {key: "edited"}}, headers=headers)
    expected = {**sent, key: "edited"}
    if edited.status_code == 422:  # only when the value was tiny and the fields were at the size limit
        assert [d["code"] for d in edited.json()["error"]["details"]] == ["fields_too_large"]
        expected = sent
    else:
        assert edited.status_code == 200, edited.text
        assert same(edited.json()["fields"], expected)

    # audited: the edit's before and after, as stored
    log = client.get(f"{API}/projects/{PROJECT}/audit?observation_id={obs_id}", headers=headers)
    assert log.status_code == 200, log.text
    if edited.status_code == 200:
        entry = log.json()["items"][0]
        assert entry["action"] == "edit"
        assert same(entry["before"]["fields"], sent) and same(entry["after"]["fields"], expected)
    assert client.get(f"{API}/projects/{PROJECT}/audit", headers=headers).status_code == 200
