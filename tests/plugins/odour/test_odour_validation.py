import pytest

from plugins.odour.validation import validate_odour

VALID = {"category": 5, "subtype": 53, "intensity": 4, "hedonic_tone": -3, "duration": 2}


def _only(problems):
    assert len(problems) == 1, problems
    return problems[0]


def test_valid_reports_pass():
    assert validate_odour(VALID) == []
    assert validate_odour({"category": 9, "subtype": 88, "intensity": 0, "hedonic_tone": 0}) == []
    assert validate_odour({**VALID, "description": "smells of rotten eggs", "suspected_origin": "plant"}) == []
    assert validate_odour({**VALID, "intensity": 4.0}) == []


def test_out_of_range_intensity_is_refused_naming_field_value_and_range():
    problem = _only(validate_odour({**VALID, "intensity": 7}))
    assert problem.path == ("fields", "intensity")
    assert problem.code == "out_of_range"
    assert "intensity 7" in problem.message
    assert "0 (not perceptible)" in problem.message and "6 (extremely strong)" in problem.message
    assert problem.severity == "error"


def test_out_of_range_hedonic_tone():
    problem = _only(validate_odour({**VALID, "hedonic_tone": -5}))
    assert problem.path == ("fields", "hedonic_tone")
    assert "-5" in problem.message and "-4" in problem.message and "+4" in problem.message


@pytest.mark.parametrize("field", ["category", "subtype", "intensity", "hedonic_tone"])
def test_required_fields(field):
    fields = dict(VALID)
    del fields[field]
    problem = _only(validate_odour(fields))
    assert problem.path == ("fields", field)
    assert problem.code == "required"


@pytest.mark.parametrize("value", ["3", True, 3.5])
def test_non_numbers_are_refused(value):
    problem = _only(validate_odour({**VALID, "intensity": value}))
    assert problem.code == "type"
    assert repr(value) in problem.message


def test_unknown_category_subtype_duration():
    assert _only(validate_odour({**VALID, "category": 10})).path == ("fields", "category")
    problems = validate_odour({**VALID, "subtype": 0})
    assert [p.path for p in problems] == [("fields", "subtype")]
    problem = _only(validate_odour({**VALID, "duration": 4}))
    assert problem.path == ("fields", "duration") and "punctual" in problem.message


def test_subtype_must_belong_to_category():
    problem = _only(validate_odour({**VALID, "category": 1, "subtype": 11}))
    assert problem.path == ("fields", "subtype")
    assert problem.code == "subtype_mismatch"
    assert "subtype 11" in problem.message
    assert "category 2 (waste water)" in problem.message
    assert "category 1 (waste)" in problem.message
    assert "1 to 9" in problem.message


def test_no_odour_if_and_only_if_intensity_zero():
    problem = _only(validate_odour({"category": 9, "subtype": 88, "intensity": 3, "hedonic_tone": 0}))
    assert problem.path == ("fields", "intensity") and problem.code == "inconsistent"
    assert "intensity 3" in problem.message and "no odour" in problem.message
    problem = _only(validate_odour({**VALID, "intensity": 0}))
    assert problem.path == ("fields", "intensity") and problem.code == "inconsistent"
    assert "category 5 (industrial)" in problem.message


def test_texts():
    problem = _only(validate_odour({**VALID, "description": "x" * 1025}))
    assert problem.path == ("fields", "description") and problem.code == "too_long"
    assert "1025" in problem.message and "1024" in problem.message
    assert _only(validate_odour({**VALID, "suspected_origin": 12})).code == "type"


def test_unknown_field_and_all_problems_at_once():
    problems = validate_odour({"category": 1, "subtype": 11, "intensity": 9, "intensty": 3})
    paths = {p.path for p in problems}
    assert ("fields", "intensty") in paths
    assert ("fields", "intensity") in paths
    assert ("fields", "subtype") in paths
    assert ("fields", "hedonic_tone") in paths


def test_fields_must_be_an_object():
    problem = _only(validate_odour(["intensity", 3]))
    assert problem.path == ("fields",)
