import json
from datetime import UTC, date, datetime

import pytest

from plugins.odour.catalogue import DURATIONS, SUBTYPES
from plugins.odour.compat import (
    FilterError,
    error_response,
    list_response,
    parse_filters,
    pseudonymous_user_id,
    render_report,
)
from plugins.odour.reports import Report

KEY = b"test-secret"


def rep(i, who="alice@example.org", category=5, subtype=53, intensity=4, hedonic=-3, when=None, duration=2):
    return Report(
        id=i,
        contributor=who,
        category=category,
        subtype=subtype,
        observed_at=when or datetime(2021, 6, 15, 10, 30, tzinfo=UTC),
        lat=41.385063,
        lon=2.173404,
        intensity=intensity,
        hedonic_tone=hedonic,
        duration=duration,
    )


def test_row_as_odourcollect_renders_it():
    row = render_report(rep(7), key=KEY)
    assert set(row) == {
        "id",
        "id_odor_type",
        "id_user",
        "color",
        "id_odor_intensity",
        "id_odor_duration",
        "id_odor_annoy",
        "published_at",
        "latitude",
        "longitude",
    }
    assert row["id"] == 7
    assert row["id_odor_type"] == 53
    assert row["id_odor_intensity"] == 5  # intensity 4 + 1
    assert row["id_odor_annoy"] == 2  # hedonic tone -3 + 5
    assert row["id_odor_duration"] == 2
    assert row["color"] == 7  # OdorColor: int((1.5 * 8 * 10/9 + 4 * 10/9) / 2.5) = int(7.11)
    assert row["published_at"] == "2021-06-15 10:30:00"
    assert row["published_at"] == render_report(rep(7), key=KEY, timezone="UTC")["published_at"]
    assert render_report(rep(7), key=KEY, timezone="Europe/Madrid")["published_at"] == "2021-06-15 12:30:00"
    assert render_report(rep(7), key=KEY, precision=3)["latitude"] == 41.385
    assert render_report(rep(8, duration=None), key=KEY)["id_odor_duration"] == 0


def test_user_number_is_stable_and_reveals_nothing():
    a = pseudonymous_user_id("alice@example.org", KEY)
    assert a == pseudonymous_user_id("alice@example.org", KEY)
    assert a != pseudonymous_user_id("bob@example.org", KEY)
    assert a != pseudonymous_user_id("alice@example.org", b"another-secret")
    assert 0 < a < 2**53
    row = render_report(rep(1), key=KEY)
    assert "alice" not in json.dumps(row)
    assert render_report(rep(1, who=None), key=KEY)["id_user"] == 0
    with pytest.raises(ValueError, match="secret"):
        pseudonymous_user_id("alice", b"")


def _pyodcollect_reads(response_text):
    """What pyodcollect 1.1.0's build_df does with the answer, without pandas."""
    rows = json.loads(response_text)["content"]
    type_list = {k: v.name for k, v in SUBTYPES.items()}
    duration_list = {0: "(No odour)", **DURATIONS}
    out = []
    for row in rows:
        out.append(
            {
                "user": "u" + str(row["id_user"]),
                "type": type_list[row["id_odor_type"]],
                "duration": duration_list[row["id_odor_duration"]],
                "hedonic_tone_n": row["id_odor_annoy"] - 5,
                "intensity_n": row["id_odor_intensity"] - 1,
                "date": datetime.fromisoformat(row["published_at"]).date(),
                "lat": float(row["latitude"]),
                "lon": float(row["longitude"]),
            }
        )
    return out


def test_response_serves_pyodcollect_and_odourcollect_clients():
    reports = [
        rep(1),
        rep(2, category=2, subtype=11, intensity=2, hedonic=-1),
        rep(3, category=9, subtype=88, intensity=0, hedonic=0, duration=None),
    ]
    # pyodcollect posts every filter, unset ones as null, 0 meaning "all"
    body = {
        "type": 0,
        "subtype": None,
        "minAnnoy": None,
        "maxAnnoy": None,
        "minIntensity": None,
        "maxIntensity": None,
        "date_init": "2021-01-01",
        "date_end": "2021-12-31",
    }
    response = list_response(reports, body, key=KEY)
    assert response["status_code"] == 200
    assert response["content"] == response["data"]["content"]
    assert response["data"]["date_init"] == "2021-01-01"
    read = _pyodcollect_reads(json.dumps(response))
    assert [(r["type"], r["intensity_n"], r["hedonic_tone_n"]) for r in read] == [
        ("Sulphur", 4, -3),
        ("Rotten eggs", 2, -1),
        ("No odour", 0, 0),
    ]
    assert read[2]["duration"] == "(No odour)"


def test_filters_select_reports():
    reports = [
        rep(1),
        rep(2, category=2, subtype=11, intensity=2, hedonic=-1),
        rep(3, when=datetime(2021, 6, 30, 23, 0, tzinfo=UTC)),
        rep(4, when=datetime(2021, 7, 1, 0, 0, tzinfo=UTC)),
    ]

    def ids(params, **kw):
        return [r["id"] for r in list_response(reports, params, key=KEY, **kw)["content"]]

    assert ids({"type": 2}) == [2]
    assert ids({"type": "5", "subtype": "53"}) == [1, 3, 4]
    assert ids({"minIntensity": 3}) == [1, 3, 4]
    assert ids({"maxAnnoy": -2}) == [1, 3, 4]
    assert ids({"minAnnoy": -1, "maxAnnoy": -1}) == [2]
    assert ids({"date_end": "2021-06-30"}) == [1, 2, 3], "the end day is included"
    assert ids({"date_init": "2021-07-01"}) == [4]
    assert ids({"date_init": "2021-07-01"}, timezone="Europe/Madrid") == [3, 4]


@pytest.mark.parametrize(
    "params, field, words",
    [
        ({"type": 10}, "type", ["type 10", "0 to 9"]),
        ({"subtype": 90}, "subtype", ["subtype 90", "0 to 89"]),
        ({"minAnnoy": -5}, "minAnnoy", ["minAnnoy -5", "-4 to 4"]),
        ({"maxIntensity": 7}, "maxIntensity", ["maxIntensity 7", "0 to 6"]),
        ({"minIntensity": "strong"}, "minIntensity", ["'strong'", "whole number"]),
        ({"date_init": "01/02/2021"}, "date_init", ["'01/02/2021'", "yyyy-mm-dd"]),
        ({"date_end": "2021-02-30"}, "date_end", ["not a real date"]),
    ],
)
def test_invalid_filters_are_refused_clearly(params, field, words):
    with pytest.raises(FilterError) as caught:
        parse_filters(params)
    messages = " ".join(caught.value.errors[field])
    for word in words:
        assert word in messages
    answer = error_response(caught.value)
    assert answer["status_code"] == 400 and answer["content"] == []
    assert answer["data"]["errors"][field]


@pytest.mark.parametrize(
    "params, field, words",
    [
        ({"minIntensity": 5, "maxIntensity": 2}, "minIntensity", ["greater than maxIntensity 2"]),
        ({"date_init": "2021-05-01", "date_end": "2021-04-01"}, "date_init", ["later than date_end"]),
        ({"type": 1, "subtype": 11}, "subtype", ["belongs to type 2"]),
    ],
)
def test_filters_no_report_can_pass_together_give_an_empty_list_that_says_why(params, field, words):
    """Each is valid alone (the OpenAPI document accepts it); together they select nothing, as
    OdourCollect's database answered them, with 200 (pyodcollect requires it)."""
    filters = parse_filters(params)
    assert [name for name, _ in filters.contradictions] == [field]
    answer = list_response([rep(1), rep(2, category=2, subtype=11, intensity=2, hedonic=-1)], params, key=KEY)
    assert answer["status_code"] == 200 and answer["content"] == [] and answer["data"]["content"] == []
    for word in words:
        assert word in answer["data"]["message"] and word in " ".join(answer["data"]["warnings"][field])


def test_defaults():
    filters = parse_filters({})
    assert (filters.min_intensity, filters.max_intensity, filters.min_annoy, filters.max_annoy) == (0, 6, -4, 4)
    assert filters.category is None and filters.subtype is None
    assert parse_filters({"date_init": date(2021, 1, 2)}).date_init == date(2021, 1, 2)


# --------------------------------------------------------------------------- the schema says what the parser takes


def test_the_filter_patterns_of_the_schema_accept_exactly_what_the_parser_takes():
    import re as re_module

    from plugins.odour.compat import DATE_PATTERN, FILTER_PATTERNS, FilterError, parse_filters

    samples = ["", "0", "5", "05", "+5", "-0", "-4", "-5", "4", "9", "10", "89", "90", " 5", "5 ", "5.0", "1e1",
               "٥", "0_5", "docs-assets", "9" * 50, "-", "+", "00000000000000000001"]
    for name, pattern in FILTER_PATTERNS.items():
        for text in samples:
            try:
                parse_filters({name: text})
                taken = True
            except FilterError as exc:
                assert name in exc.errors
                taken = False
            assert (re_module.fullmatch(pattern, text) is not None) == taken, (name, text)
    for text in ["2024-03-05", "0001-01-01", "0000-01-01", "2024-3-5", " 2024-03-05", "2024-03-05T00:00",
                 "docs-assets", "٢٠٢٤-03-05"]:
        try:
            parse_filters({"date_end": text})
            taken = True
        except FilterError:
            taken = False
        assert (re_module.fullmatch(DATE_PATTERN, text) is not None) == taken, text
