"""The pages' languages: English and Spanish catalogues, chosen by a switch or the browser.

Catalogues are gettext ``.po`` files under ``locale/<language>/``; every ``.po`` file of a
language is read and merged at first use (no compile step, no binary in the repository), so
each area of the pages keeps its own file. The language of a request is, in order: the
``lang`` cookie the switch sets, then the browser's ``Accept-Language``, then English.
"""

from __future__ import annotations

import gettext
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from babel.core import Locale, UnknownLocaleError, negotiate_locale
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from starlette.requests import Request

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES: dict[str, str] = {"en": "English", "es": "Español"}
DEFAULT_LANGUAGE = "en"
LANG_COOKIE = "observatory_lang"
# gettext's two forms (one, other), as the catalogues are written: CLDR gives Spanish a third form
# (for millions) that no catalogue fills, and a missing form falls back to English
PLURAL_FORMS: dict[str, tuple[int, str]] = {"es": (2, "(n != 1)")}


def read_catalog(po_file: Path, language: str) -> Catalog:
    """One ``.po`` file of ``language``, with the plural rule its entries are written for."""
    with po_file.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    if language in PLURAL_FORMS:
        forms, catalog._plural_expr = PLURAL_FORMS[language]  # read_po keeps no header's rule
        catalog._num_plurals = forms
        for message in catalog:
            if isinstance(message.string, tuple):
                message.string = message.string[:forms]
    return catalog


@lru_cache(maxsize=None)
def translations(language: str) -> gettext.NullTranslations:
    """The merged catalogue of ``language`` (English: the messages as written)."""
    if language == DEFAULT_LANGUAGE or language not in LANGUAGES:
        return gettext.NullTranslations()
    merged: Translations | None = None
    for po_file in sorted((LOCALE_DIR / language).glob("*.po")):
        catalog = read_catalog(po_file, language)
        buffer = BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        part = Translations(buffer)
        if merged is None:
            merged = part
        else:
            merged.merge(part)
    return merged or gettext.NullTranslations()


def _accepted(header: str) -> list[str]:
    """The languages of an ``Accept-Language`` header, most wanted first."""
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        name, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if name and quality > 0:
            weighted.append((-quality, index, name.strip().replace("-", "_")))
    return [name for _, _, name in sorted(weighted)]


def negotiate(request: Request) -> str:
    """The language to answer ``request`` in (a key of :data:`LANGUAGES`)."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    wanted = _accepted(request.headers.get("accept-language", ""))
    found = negotiate_locale(wanted, list(LANGUAGES), sep="_") if wanted else None
    if found is None:
        for name in wanted:
            try:
                language = Locale.parse(name).language
            except (UnknownLocaleError, ValueError):
                continue
            if language in LANGUAGES:
                return language
        return DEFAULT_LANGUAGE
    return found.split("_")[0]


def gettext_for(language: str) -> gettext.NullTranslations:
    """``translations(language)``, for code that builds text outside a template."""
    return translations(language)
