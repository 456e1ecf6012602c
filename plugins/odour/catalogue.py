"""OdourCollect's catalogue: categories, subtypes, intensity, hedonic tone, durations, colours.

Sources (public repositories of ScienceForChange, the makers of OdourCollect):

* Categories ("odour types") and subtypes with their ids: OdourCollect 2.0's seed dump
  ``api/database/sql_dump_seeder_files/odour_types.sql`` and ``odour_subtypes.sql``
  (ScienceForChange/odourCollect_2.0, the version whose ids match the classic odourcollect.eu
  API), cross-checked with ``TYPE_LIST`` / ``CATEGORY_LIST`` of PyOdourCollect and of the PyPI
  client ``pyodcollect`` 1.1.0. Note the real ids: **8 is "Other" and 9 is "No odour"**
  (subtype 88 "No Odour" belongs to category 9, subtype 89 "NA" to category 8).
  Subtype 64 is "Marihuana" in the seed dump; PyOdourCollect lists it as "<not used>".
* Intensity (VDI 3882 part 1) and hedonic tone (VDI 3882 part 2) labels: the 2.0 seeders
  ``OdourIntensitiesSeeder.php`` / ``OdourHedonicTonesSeeder.php``. OdourCollect's API numbers
  them from 1 (``id_odor_intensity = intensity + 1``, ``id_odor_annoy = hedonic tone + 5``).
* Durations: ``DURATION_LIST`` of pyodcollect (0 "(No odour)", 1 punctual, 2 continuous in the
  last hour, 3 continuous throughout the day).
* Category colours: the OdourCollect 2.0 web app draws five categories on coloured blobs
  (``frontend/src/assets/images/*-bolb.svg``, mapped in ``odour-type-icon.component.scss``):
  waste water ``#8AD1F9``, agriculture / livestock ``#CBE87C``, food industries ``#D7B1F2``,
  industrial ``#FF8133``, urban ``#FFFF7D``. It shows no colour for waste, nice, other and no
  odour; those four are our choice from the same palette (``frontend/src/styles/_colors.scss``)
  and are marked ``colour_from_odourcollect=False``.
* Marker colour: the classic server stores a ``color`` number 1..7 per report, computed from
  hedonic tone and intensity (``app/Services/OdorColor.php``); see :func:`odourcollect_colour`.
"""

from __future__ import annotations

from dataclasses import dataclass

WASTE = 1
WASTE_WATER = 2
AGRICULTURE_LIVESTOCK = 3
FOOD_INDUSTRIES = 4
INDUSTRIAL = 5
URBAN = 6
NICE = 7
OTHER = 8
NO_ODOUR = 9

NO_ODOUR_SUBTYPE = 88
OTHER_SUBTYPE = 89

DURATION_PUNCTUAL = 1
DURATION_LAST_HOUR = 2
DURATION_ALL_DAY = 3
NO_DURATION = 0
"""What OdourCollect's API reports as ``id_odor_duration`` for a report with no duration."""


@dataclass(frozen=True)
class Category:
    """An odour category (OdourCollect's "odour type", ``id_odor_parent_type``)."""

    id: int
    slug: str
    name: str
    colour: str
    colour_from_odourcollect: bool


@dataclass(frozen=True)
class Subtype:
    """An odour subtype (OdourCollect's ``id_odor_type``) and the category it belongs to."""

    id: int
    category_id: int
    name: str
    slug: str


CATEGORIES: dict[int, Category] = {
    c.id: c
    for c in (
        Category(WASTE, "waste", "Waste", "#7CBCE0", False),
        Category(WASTE_WATER, "waste-water", "Waste water", "#8AD1F9", True),
        Category(AGRICULTURE_LIVESTOCK, "agriculture-livestock", "Agriculture / Livestock", "#CBE87C", True),
        Category(FOOD_INDUSTRIES, "food-industries", "Food industries", "#D7B1F2", True),
        Category(INDUSTRIAL, "industrial", "Industrial", "#FF8133", True),
        Category(URBAN, "urban", "Urban", "#FFFF7D", True),
        Category(NICE, "nice", "Nice", "#DAF299", False),
        Category(OTHER, "other", "Other", "#A0A19F", False),
        Category(NO_ODOUR, "no-odour", "No odour", "#DCDCDA", False),
    )
}

_SUBTYPE_ROWS: tuple[tuple[int, int, str, str], ...] = (
    (1, 1, "Fresh waste", "fresh-waste"),
    (2, 1, "Decomposed waste", "decomposed-waste"),
    (3, 1, "Leachate", "leachate"),
    (4, 1, "Biogas", "biogas"),
    (5, 1, "Biofilter", "biofilter"),
    (6, 1, "Ammonia", "ammonia"),
    (7, 1, "Amines", "amines"),
    (8, 1, "Other", "other-waste"),
    (9, 1, "I don't know", "i-dont-know-waste"),
    (10, 2, "Waste water", "waste-water"),
    (11, 2, "Rotten eggs", "rotten-eggs"),
    (12, 2, "Sludge", "sludge"),
    (13, 2, "Chlorine", "chlorine"),
    (14, 2, "Other", "other-waste-water"),
    (15, 2, "I don't know", "i-dont-know-waste-water"),
    (16, 3, "Dead animal", "dead-animal"),
    (17, 3, "Cooked meat", "cooked-meat"),
    (18, 3, "Organic fertilizers (manure/slurry)", "organic-fertilizers"),
    (19, 3, "Animal feed", "animal-feed"),
    (20, 3, "Cabbage soup", "cabbage-soup"),
    (21, 3, "Rotten eggs", "rotten-eggs-agriculture"),
    (22, 3, "Ammonia", "ammonia-agriculture"),
    (23, 3, "Amines", "amines-agriculture"),
    (24, 3, "Other", "other-agriculture"),
    (25, 3, "I don't know", "i-dont-know-agriculture"),
    (26, 4, "Fat / Oil", "fat-oil"),
    (27, 4, "Coffee", "coffee"),
    (28, 4, "Cocoa", "cocoa"),
    (29, 4, "Milk / Dairy", "milk-dairy"),
    (30, 4, "Animal food", "animal-food"),
    (31, 4, "Ammonia", "ammonia-food"),
    (32, 4, "Malt / Hop", "malt-hop"),
    (33, 4, "Fish", "fish"),
    (34, 4, "Bakeries", "bakeries"),
    (35, 4, "Raw meat", "raw-meat"),
    (36, 4, "Amines", "ammines-food"),
    (37, 4, "Cabbage soup", "cabbage-soup-food"),
    (38, 4, "Rotten eggs", "rotten-eggs-food"),
    (39, 4, "Bread / Cookies", "bread-cookies"),
    (40, 4, "Alcohol", "alcohol"),
    (41, 4, "Aroma / Flavour", "aroma-flavour"),
    (42, 4, "Other", "other-food"),
    (43, 4, "I don't know", "i-dont-know-food"),
    (44, 5, "Cabbage soup", "cabbage-soup-industrial"),
    (45, 5, "Oil / Petrochemical", "oil-petrochemical"),
    (46, 5, "Gas", "gas"),
    (47, 5, "Asphalt / Rubber", "asphalt-rubber"),
    (48, 5, "Chemical", "chemical"),
    (49, 5, "Ammonia", "ammonia-industrial"),
    (50, 5, "Leather", "leather"),
    (51, 5, "Metal", "metal"),
    (52, 5, "Plastic", "plastic"),
    (53, 5, "Sulphur", "sulphur"),
    (54, 5, "Alcohol", "alcohol-industrial"),
    (55, 5, "Ketone / Ester / Acetate / Ether", "ketone-ester-acetate-ether"),
    (56, 5, "Amines", "amines-industrial"),
    (57, 5, "Glue / Adhesive", "glue-adhesive"),
    (58, 6, "Urine", "urine"),
    (59, 6, "Traffic", "traffic"),
    (60, 6, "Sewage", "sewage"),
    (61, 6, "Waste bin", "waste-bin"),
    (62, 6, "Waste truck", "waste-truck"),
    (63, 6, "Sweat", "sweat-urban"),
    (64, 6, "Marihuana", "marihuana"),
    (65, 6, "Fresh grass", "fresh-grass-urban"),
    (66, 6, "Humidity / Wet soil", "humidity-wet-soil-urban"),
    (67, 6, "Flowers", "flowers-urban"),
    (68, 6, "Food", "food-urban"),
    (69, 6, "Chimney (burnt wood)", "chimney-burnt-wood-urban"),
    (70, 6, "Paint", "paint-urban"),
    (71, 6, "Fuel", "fuel-urban"),
    (72, 6, "Other", "other-urban"),
    (73, 6, "I don't know", "i-dont-know-urban"),
    (74, 7, "Flowers", "flowers-nice"),
    (75, 7, "Food", "food-nice"),
    (76, 7, "Bread / Cookies", "bread-cookies-nice"),
    (77, 7, "Fruit", "fruit-nice"),
    (78, 7, "Fresh grass", "fresh-grass-nice"),
    (79, 7, "Forest / Trees / Nature", "forest-trees-nature-nice"),
    (80, 7, "Mint / Rosemary / Lavender", "mint-rosemary-lavander-nice"),
    (81, 7, "Sea", "sea-nice"),
    (82, 7, "Perfume", "perfume-nice"),
    (83, 7, "Chimney (burnt wood)", "chimney-burnt-wood-nice"),
    (84, 7, "Wood", "wood-nice"),
    (85, 7, "New book", "new-book-nice"),
    (86, 7, "Other", "other-nice"),
    (87, 7, "I don't know", "i-dont-know-nice"),
    (88, 9, "No odour", "no-odour"),
    (89, 8, "NA", "na"),
)

SUBTYPES: dict[int, Subtype] = {row[0]: Subtype(*row) for row in _SUBTYPE_ROWS}

INTENSITY_LABELS: dict[int, str] = {
    0: "Not perceptible",
    1: "Very weak",
    2: "Weak",
    3: "Distinct",
    4: "Strong",
    5: "Very strong",
    6: "Extremely strong",
}
"""VDI 3882 part 1 intensity scale."""

HEDONIC_TONE_LABELS: dict[int, str] = {
    -4: "Extremely unpleasant",
    -3: "Very unpleasant",
    -2: "Unpleasant",
    -1: "Slightly unpleasant",
    0: "Neutral",
    1: "Slightly pleasant",
    2: "Pleasant",
    3: "Very pleasant",
    4: "Extremely pleasant",
}
"""VDI 3882 part 2 hedonic tone scale."""

DURATIONS: dict[int, str] = {
    DURATION_PUNCTUAL: "Punctual",
    DURATION_LAST_HOUR: "Continuous in the last hour",
    DURATION_ALL_DAY: "Continuous throughout the day",
}
"""Duration ids as OdourCollect numbers them (``id_odor_duration``); 0 means none (no odour)."""

INTENSITY_MIN, INTENSITY_MAX = 0, 6
HEDONIC_MIN, HEDONIC_MAX = -4, 4

ODOURCOLLECT_MARKER_COLOURS: dict[int, str] = {
    1: "#36e8ca",
    2: "#6ff38a",
    3: "#e6f9e5",
    4: "#ffff00",
    5: "#ff9933",
    6: "#fc4b04",
    7: "#ff0000",
}
"""Hex colour of each ``color`` number, from ``OdorColor::getColorFromMatrixNumber``."""


def category_of(subtype_id: int) -> int | None:
    """The category id a subtype belongs to, or None for an unknown subtype."""
    subtype = SUBTYPES.get(subtype_id)
    return subtype.category_id if subtype else None


def subtypes_of(category_id: int) -> list[Subtype]:
    """The subtypes of a category, in id order (empty for an unknown category)."""
    return [s for s in SUBTYPES.values() if s.category_id == category_id]


def category_colour(category_id: int) -> str:
    """The hex colour of a category (KeyError for an unknown one)."""
    return CATEGORIES[category_id].colour


def odourcollect_colour(hedonic_tone: int, intensity: int) -> int:
    """OdourCollect's ``color`` number (1..7) for a report, as its server computes it.

    ``OdorColor::getOdorColor``: the hedonic tone is turned into 1 (+4, extremely pleasant)
    .. 9 (-4, extremely unpleasant); then ``int((1.5 * an * 10/9 + intensity * 10/9) / 2.5)``,
    capped at 7 and raised to 1 when 0. The exact integer form ``(6 an + 4 i) // 9`` equals the
    server's floating-point result for every one of the 63 combinations.
    """
    if not HEDONIC_MIN <= hedonic_tone <= HEDONIC_MAX:
        raise ValueError(f"hedonic_tone {hedonic_tone} is outside -4..4")
    if not INTENSITY_MIN <= intensity <= INTENSITY_MAX:
        raise ValueError(f"intensity {intensity} is outside 0..6")
    annoy = 5 - hedonic_tone
    return max(1, min(7, (6 * annoy + 4 * intensity) // 9))
