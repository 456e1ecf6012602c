"""Ranks, iconic groups and name normalisation, as iNaturalist has them."""

from __future__ import annotations

import re
import unicodedata

RANK_LEVELS: dict[str, float] = {
    "stateofmatter": 100, "kingdom": 70, "subkingdom": 67, "phylum": 60, "subphylum": 57,
    "superclass": 53, "class": 50, "subclass": 47, "infraclass": 45, "subterclass": 44,
    "superorder": 43, "order": 40, "suborder": 37, "infraorder": 35, "parvorder": 34.5,
    "zoosection": 34, "zoosubsection": 33.5, "superfamily": 33, "epifamily": 32, "family": 30,
    "subfamily": 27, "supertribe": 26, "tribe": 25, "subtribe": 24, "genus": 20, "genushybrid": 20,
    "subgenus": 15, "section": 13, "subsection": 12, "complex": 11, "species": 10, "hybrid": 10,
    "subspecies": 5, "variety": 5, "form": 5, "infrahybrid": 5,
}
"""iNaturalist's rank levels (``Taxon::RANK_LEVELS``): a lower number is a lower rank."""

RANK_ALIASES: dict[str, str] = {
    "division": "phylum", "subdivision": "subphylum", "gen": "genus", "sp": "species", "spp": "species",
    "ssp": "subspecies", "subsp": "subspecies", "infraspecies": "subspecies", "trinomial": "subspecies",
    "var": "variety", "f": "form", "forma": "form", "fo": "form", "cultivar group": "variety",
}
"""Other words for ranks, as checklists write them (GBIF, Catalogue of Life, Darwin Core)."""

ICONIC_NAMES: tuple[str, ...] = (
    "Animalia", "Plantae", "Fungi", "Aves", "Mammalia", "Reptilia", "Amphibia", "Actinopterygii",
    "Mollusca", "Arachnida", "Insecta", "Chromista", "Protozoa",
)
"""iNaturalist's iconic groups: a taxon's iconic taxon is its nearest ancestor (or itself) named so."""

CLASSIFICATION_RANKS: tuple[str, ...] = (
    "kingdom", "phylum", "class", "order", "superfamily", "family", "subfamily", "tribe", "subtribe",
    "genus", "subgenus",
)
"""The higher ranks a Darwin Core record may name (``kingdom`` ... ``subgenus``), highest first."""

_SPACES = re.compile(r"\s+")


def rank_of(value: str | None) -> str | None:
    """A rank as the engine spells it (lower case, aliases resolved), or None when unknown."""
    if not value:
        return None
    word = _SPACES.sub(" ", value.strip().lower()).rstrip(".")
    word = RANK_ALIASES.get(word, word)
    return word if word in RANK_LEVELS else None


def search_key(name: str) -> str:
    """A name as ``search`` holds it: lower case, accents removed, spaces collapsed
    ("Mésange charbonnière" -> "mesange charbonniere")."""
    if name.isascii():
        return " ".join(name.lower().split())
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.casefold().split())


def clean_name(name: str | None) -> str:
    """A name with its spaces collapsed and trimmed ("" for None)."""
    return " ".join(name.split()) if name else ""


LANGUAGE_CODES: dict[str, str] = {
    "eng": "en", "english": "en", "spa": "es", "spanish": "es", "español": "es", "cat": "ca", "catalan": "ca",
    "català": "ca", "fra": "fr", "fre": "fr", "french": "fr", "deu": "de", "ger": "de", "german": "de",
    "ita": "it", "italian": "it", "por": "pt", "portuguese": "pt", "nld": "nl", "dut": "nl", "dutch": "nl",
    "eus": "eu", "baq": "eu", "basque": "eu", "glg": "gl", "galician": "gl", "pol": "pl", "swe": "sv",
    "dan": "da", "nor": "no", "nob": "nb", "fin": "fi", "ell": "el", "gre": "el", "ron": "ro", "rum": "ro",
    "ces": "cs", "cze": "cs", "hun": "hu", "rus": "ru", "jpn": "ja", "zho": "zh", "chi": "zh", "ara": "ar",
}


def lexicon_of(language: str | None) -> str:
    """A vernacular name's language as a lexicon: an ISO 639-1 code where we know one (``eng``,
    ``English`` -> ``en``), the code as given (lower case) otherwise, ``und`` when none is given."""
    value = clean_name(language).lower()
    if not value:
        return "und"
    return LANGUAGE_CODES.get(value, value.split("-")[0].split("_")[0] if len(value) > 3 and value[2] in "-_" else value)[:32]
