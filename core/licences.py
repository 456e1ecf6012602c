"""The licences observations may carry, with their URIs and whether GBIF accepts them.

GBIF publishes occurrences under CC0 1.0, CC BY 4.0 and CC BY-NC 4.0 only
(https://www.gbif.org/terms/licences); the others are accepted here for projects that need them,
and the exports say which records qualify.
"""

from __future__ import annotations

LICENCE_URIS: dict[str, str] = {
    "CC0-1.0": "http://creativecommons.org/publicdomain/zero/1.0/legalcode",
    "CC-BY-4.0": "http://creativecommons.org/licenses/by/4.0/legalcode",
    "CC-BY-NC-4.0": "http://creativecommons.org/licenses/by-nc/4.0/legalcode",
    "CC-BY-SA-4.0": "http://creativecommons.org/licenses/by-sa/4.0/legalcode",
    "CC-BY-NC-SA-4.0": "http://creativecommons.org/licenses/by-nc-sa/4.0/legalcode",
    "CC-BY-ND-4.0": "http://creativecommons.org/licenses/by-nd/4.0/legalcode",
    "CC-BY-NC-ND-4.0": "http://creativecommons.org/licenses/by-nc-nd/4.0/legalcode",
    "all-rights-reserved": "",
}
KNOWN_LICENCES: tuple[str, ...] = tuple(LICENCE_URIS)
GBIF_LICENCES: frozenset[str] = frozenset({"CC0-1.0", "CC-BY-4.0", "CC-BY-NC-4.0"})


def licence_uri(licence: str) -> str:
    """The licence's URI (empty for all rights reserved)."""
    return LICENCE_URIS.get(licence, "")


def gbif_eligible(licence: str) -> bool:
    return licence in GBIF_LICENCES
