import jsonschema

from core.types import ObservationType
from plugins.odour.schema import ODOUR_SCHEMA, odour_type

VALID = {"category": 5, "subtype": 53, "intensity": 4, "hedonic_tone": -3, "duration": 2}


def _validator():
    return jsonschema.Draft202012Validator(ODOUR_SCHEMA)


def test_schema_is_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(ODOUR_SCHEMA)


def test_every_enumerated_property_has_title_and_a_label_per_value():
    properties = ODOUR_SCHEMA["properties"]
    assert set(properties) == {
        "category",
        "subtype",
        "intensity",
        "hedonic_tone",
        "duration",
        "suspected_origin",
        "description",
    }
    for name, prop in properties.items():
        assert prop.get("title"), name
        if "enum" in prop:
            assert set(prop["x-labels"]) == {str(v) for v in prop["enum"]}, name
    assert properties["intensity"]["x-labels"]["3"] == "Distinct"
    assert properties["hedonic_tone"]["x-labels"]["-4"] == "Extremely unpleasant"
    assert properties["category"]["x-labels"]["9"] == "No odour"
    assert properties["subtype"]["x-category"]["88"] == 9


def test_schema_accepts_a_report_and_refuses_bad_ones():
    assert not list(_validator().iter_errors(VALID))
    assert list(_validator().iter_errors({**VALID, "intensity": 7}))
    assert list(_validator().iter_errors({**VALID, "hedonic_tone": -5}))
    assert list(_validator().iter_errors({**VALID, "intensty": 3}))
    missing = dict(VALID)
    del missing["subtype"]
    assert list(_validator().iter_errors(missing))


def test_odour_type():
    kind = odour_type()
    assert isinstance(kind, ObservationType)
    assert kind.name == "odour"
    assert kind.plugin == "odour"
    kind.schema["properties"]["intensity"]["maximum"] = 99
    assert ODOUR_SCHEMA["properties"]["intensity"]["maximum"] == 6, "callers get their own copy"


def test_settings_schema_defaults_are_the_modules_defaults():
    from plugins.odour import events, quality
    from plugins.odour.schema import ODOUR_SETTINGS_SCHEMA

    jsonschema.Draft202012Validator.check_schema(ODOUR_SETTINGS_SCHEMA)
    defaults = {k: v["default"] for k, v in ODOUR_SETTINGS_SCHEMA["properties"].items()}
    assert defaults["window_h"] * 3600 == events.DEFAULT_WINDOW.total_seconds()
    assert defaults["distance_m"] == events.DEFAULT_DISTANCE_M
    assert defaults["min_contributors"] == events.DEFAULT_MIN_CONTRIBUTORS
    assert defaults["burst_reports"] == quality.DEFAULT_BURST_REPORTS
    assert defaults["burst_minutes"] == quality.DEFAULT_BURST_MINUTES
    validator = jsonschema.Draft202012Validator(ODOUR_SETTINGS_SCHEMA)
    assert not list(validator.iter_errors({"zones": [{"name": "A", "polygon": [[2, 41], [2.1, 41], [2.1, 41.1]]}]}))
    assert list(validator.iter_errors({"window_h": "four"}))
