"""The console's message catalogs: `make translations` extracts every message into the `.po` files.

    python -m tools.translations extract   # add new messages (untranslated) to en and zh_CN, drop stale ones
    python -m tools.translations check     # non-zero exit when a message has no zh_CN translation
    python -m tools.translations fill zh.json  # take zh_CN translations from a JSON object {msgid: msgstr}

Messages come from the console's templates (`{{ _("...") }}`, `{% trans %}`) and its Python code
(`gettext("...")`). Translators fill `msgstr` in services/console/console/locales/zh_CN/LC_MESSAGES/messages.po.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

CONSOLE = Path(__file__).resolve().parents[1] / "services" / "console" / "console"
LOCALES = CONSOLE / "locales"
METHODS = [("templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "false"}}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2)}


def extracted() -> Catalog:
    """Every message the console can show, with where it is used."""
    template = Catalog(project="alliance-loyalty-console")
    for filename, lineno, message, comments, context in extract_from_dir(
        CONSOLE, METHODS, OPTIONS, KEYWORDS, strip_comment_tags=True
    ):
        template.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return template


def po_path(locale: str) -> Path:
    return LOCALES / locale / "LC_MESSAGES" / "messages.po"


def read(locale: str) -> Catalog:
    path = po_path(locale)
    if not path.exists():
        return Catalog(locale=locale, project="alliance-loyalty-console")
    with path.open("rb") as source:
        return read_po(source, locale=locale)


def extract() -> dict[str, int]:
    """Bring en and zh_CN up to date with the code; returns how many zh_CN messages still need a translation."""
    template = extracted()
    missing: dict[str, int] = {}
    for locale in ("en", "zh_CN"):
        catalog = read(locale)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        path = po_path(locale)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as target:
            write_po(target, catalog, width=0, omit_header=False, sort_output=True, include_lineno=False)
        missing[locale] = len(untranslated(catalog))
    return missing


def untranslated(catalog: Catalog) -> list[str]:
    return [str(m.id) for m in catalog if m.id and (not m.string or m.fuzzy)]


def problems() -> list[str]:
    """Messages in the code that zh_CN lacks or leaves untranslated."""
    zh = read("zh_CN")
    known = {str(m.id): m for m in zh if m.id}
    found = []
    for message in extracted():
        if not message.id:
            continue
        key = str(message.id)
        entry = known.get(key)
        if entry is None or not entry.string or entry.fuzzy:
            where = ", ".join(f"{f}:{n}" for f, n in message.locations[:2])
            found.append(f"{key!r} ({where})")
    return found


def fill(translations: dict[str, str]) -> int:
    """Set zh_CN msgstr from a mapping (a translator's file); returns how many messages it set."""
    catalog = read("zh_CN")
    changed = 0
    for message in catalog:
        if message.id and str(message.id) in translations:
            message.string = translations[str(message.id)]
            message.flags.discard("fuzzy")
            changed += 1
    with po_path("zh_CN").open("wb") as target:
        write_po(target, catalog, width=0, sort_output=True, include_lineno=False)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["extract", "check", "fill"])
    parser.add_argument("file", nargs="?", type=Path, help="fill: a JSON object of msgid to zh_CN msgstr")
    options = parser.parse_args(argv)
    if options.command == "fill":
        import json

        if options.file is None:
            parser.error("fill needs the JSON file")
        print(f"[translations] zh_CN messages set: {fill(json.loads(options.file.read_text(encoding='utf-8')))}")
        return 0
    if options.command == "extract":
        missing = extract()
        print(f"[translations] catalogs updated; zh_CN messages without a translation: {missing['zh_CN']}")
        return 0
    found = problems()
    for line in found:
        print(f"[translations] no zh_CN translation: {line}", file=sys.stderr)
    if found:
        print("[translations] run `make translations`, then fill msgstr in the zh_CN messages.po", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
