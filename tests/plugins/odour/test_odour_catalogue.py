import re

import pytest

from plugins.odour import catalogue as c


def test_nine_categories_with_odourcollect_ids():
    assert sorted(c.CATEGORIES) == list(range(1, 10))
    names = {k: v.name for k, v in c.CATEGORIES.items()}
    assert names[1] == "Waste"
    assert names[2] == "Waste water"
    assert names[5] == "Industrial"
    assert names[7] == "Nice"
    # OdourCollect numbers "Other" 8 and "No odour" 9
    assert names[8] == "Other"
    assert names[9] == "No odour"


def test_subtypes_1_to_89_each_in_a_known_category():
    assert sorted(c.SUBTYPES) == list(range(1, 90))
    assert all(s.category_id in c.CATEGORIES for s in c.SUBTYPES.values())
    assert all(c.subtypes_of(k) for k in c.CATEGORIES), "every category offers a subtype"


@pytest.mark.parametrize(
    "subtype, category, name",
    [
        (1, c.WASTE, "Fresh waste"),
        (11, c.WASTE_WATER, "Rotten eggs"),
        (18, c.AGRICULTURE_LIVESTOCK, "Organic fertilizers (manure/slurry)"),
        (53, c.INDUSTRIAL, "Sulphur"),
        (59, c.URBAN, "Traffic"),
        (81, c.NICE, "Sea"),
        (88, c.NO_ODOUR, "No odour"),
        (89, c.OTHER, "NA"),
    ],
)
def test_known_subtypes(subtype, category, name):
    assert c.category_of(subtype) == category
    assert c.SUBTYPES[subtype].name == name


def test_unknown_subtype_has_no_category():
    assert c.category_of(90) is None
    assert c.subtypes_of(10) == []


def test_vdi_3882_scales():
    assert c.INTENSITY_LABELS == {
        0: "Not perceptible",
        1: "Very weak",
        2: "Weak",
        3: "Distinct",
        4: "Strong",
        5: "Very strong",
        6: "Extremely strong",
    }
    assert sorted(c.HEDONIC_TONE_LABELS) == list(range(-4, 5))
    assert c.HEDONIC_TONE_LABELS[-4] == "Extremely unpleasant"
    assert c.HEDONIC_TONE_LABELS[0] == "Neutral"
    assert c.HEDONIC_TONE_LABELS[4] == "Extremely pleasant"


def test_durations_with_odourcollect_ids():
    assert c.DURATIONS == {
        1: "Punctual",
        2: "Continuous in the last hour",
        3: "Continuous throughout the day",
    }


def test_category_colours():
    for category in c.CATEGORIES.values():
        assert re.fullmatch(r"#[0-9A-Fa-f]{6}", category.colour)
    assert len({k.colour for k in c.CATEGORIES.values()}) == 9, "colours tell categories apart"
    # the five OdourCollect 2.0 shows
    assert c.category_colour(c.WASTE_WATER) == "#8AD1F9"
    assert c.category_colour(c.INDUSTRIAL) == "#FF8133"
    assert c.category_colour(c.URBAN) == "#FFFF7D"


def _php_colour(hedonic, intensity):
    """OdorColor::getOdorColor, step by step as the PHP does it."""
    an = {4: 1, 3: 2, 2: 3, 1: 4, 0: 5, -1: 6, -2: 7, -3: 8, -4: 9}[hedonic]
    x = an * 10 / 9
    y = intensity * 10 / 9
    result = min(7, int((1.5 * x + y) / 2.5))
    return 1 if result == 0 else result


def test_odourcollect_colour_matches_the_server_everywhere():
    for hedonic in range(-4, 5):
        for intensity in range(7):
            assert c.odourcollect_colour(hedonic, intensity) == _php_colour(hedonic, intensity)
    assert c.odourcollect_colour(-4, 6) == 7  # worst: red
    assert c.odourcollect_colour(4, 0) == 1
    assert set(c.ODOURCOLLECT_MARKER_COLOURS) == set(range(1, 8))


def test_odourcollect_colour_refuses_out_of_scale():
    with pytest.raises(ValueError, match="intensity 7"):
        c.odourcollect_colour(0, 7)
