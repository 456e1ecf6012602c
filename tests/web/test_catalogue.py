"""Every text of the pages is translated: each message the templates and ``core/web`` code pass
through gettext has a Spanish translation, and no Spanish entry is left over from a removed text
(so the catalogue stays complete as pages change)."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir

from core.web.i18n import LOCALE_DIR, read_catalog

WEB = Path(__file__).resolve().parents[2] / "core" / "web"
METHODS = [("**/templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true",
                                    "trimmed": "false"}}


def used_messages() -> dict[str, str]:
    found: dict[str, str] = {}
    for filename, line, message, _comments, _context in extract_from_dir(str(WEB), METHODS, OPTIONS):
        for text in (message if isinstance(message, tuple) else (message,)):
            if text:
                found.setdefault(text, f"{filename}:{line}")
    return found


def spanish() -> dict[str, object]:
    entries: dict[str, object] = {}
    for po_file in sorted((LOCALE_DIR / "es").glob("*.po")):
        for message in read_catalog(po_file, "es"):
            if message.id:
                key = message.id[0] if isinstance(message.id, tuple) else message.id
                entries[key] = message.string
                if isinstance(message.id, tuple):
                    entries[message.id[1]] = message.string
    return entries


def test_every_page_text_has_a_spanish_translation() -> None:
    used = used_messages()
    catalogue = spanish()
    assert len(used) > 10
    missing = {text: where for text, where in used.items()
               if not catalogue.get(text) or (isinstance(catalogue[text], tuple) and not all(catalogue[text]))}
    assert not missing, "texts without a Spanish translation (add them to core/web/locale/es/*.po):\n" + "\n".join(
        f"  {where}: {text!r}" for text, where in sorted(missing.items(), key=lambda item: item[1]))


def test_the_spanish_catalogue_holds_no_text_the_pages_no_longer_use() -> None:
    stale = sorted(set(spanish()) - set(used_messages()))
    assert not stale, f"Spanish entries no page uses (remove them): {stale[:20]}"


def test_spanish_plurals_read_back_in_both_forms() -> None:
    from core.web.i18n import translations

    spanish_text = translations("es")
    assert spanish_text.ngettext("%(num)s observation.", "%(num)s observations.", 1) == "%(num)s observación."
    for n in (0, 3, 1_000_000):
        assert spanish_text.ngettext("%(num)s observation.", "%(num)s observations.", n) == "%(num)s observaciones."
