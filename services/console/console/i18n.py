"""Languages of the console (English, Simplified Chinese), their message catalogs, and locale-aware formatting.

The catalogs are gettext `.po` files under `locales/`, read and compiled in memory at start, so no build
step runs before serving. `make translations` extracts new messages into them.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import dates, negotiate_locale, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES = Path(__file__).resolve().parent / "locales"
SUPPORTED = ("en", "zh_CN")
DEFAULT = "en"
LANGUAGE_NAMES = {"en": "English", "zh_CN": "简体中文"}
COOKIE = "console_locale"


def load_catalogs(directory: Path = LOCALES) -> dict[str, NullTranslations]:
    """Each supported locale's translations, compiled from its `.po` file; English needs none."""
    catalogs: dict[str, NullTranslations] = {"en": NullTranslations()}
    for locale in SUPPORTED:
        po = directory / locale / "LC_MESSAGES" / "messages.po"
        if locale == "en" or not po.exists():
            continue
        with po.open("rb") as source:
            catalog = read_po(source, locale=locale)
        compiled = io.BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        catalogs[locale] = Translations(compiled)
    return catalogs


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    """The person's choice (cookie) first, then the browser's languages, then English."""
    if cookie in SUPPORTED:
        return cookie
    wanted = []
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().replace("-", "_")
        if tag and tag != "*":
            wanted.append(tag)
    for tag in wanted:
        chosen = negotiate_locale([tag], list(SUPPORTED), sep="_")
        if chosen is not None:
            return chosen
        if tag.lower().startswith("zh"):
            return "zh_CN"  # zh, zh_Hans, zh_TW: simplified Chinese is the closest we have
        if tag.lower().startswith("en"):
            return "en"
    return DEFAULT


class Formats:
    """Numbers, points, money and times as people of one locale read them."""

    def __init__(self, locale: str, timezone: str) -> None:
        self.locale = locale
        self.zone = ZoneInfo(timezone)

    def points(self, value: int | None) -> str:
        return "—" if value is None else numbers.format_decimal(int(value), locale=self.locale)

    def money(self, minor: int | None, currency: str) -> str:
        """Integer minor units shown in major units: exact, through Decimal."""
        if minor is None:
            return "—"
        digits = numbers.get_currency_precision(currency)
        return numbers.format_currency(Decimal(int(minor)).scaleb(-digits), currency, locale=self.locale)

    def rate(self, value: str | Decimal | None) -> str:
        return "—" if value is None else numbers.format_decimal(Decimal(str(value)), locale=self.locale)

    def percent(self, value: str | Decimal | None) -> str:
        return "—" if value is None else numbers.format_percent(Decimal(str(value)), "#,##0.0%", locale=self.locale)

    def date(self, value: str | date | datetime | None) -> str:
        if value is None or value == "":
            return "—"
        moment = _parse(value)
        if isinstance(moment, datetime):
            moment = moment.astimezone(self.zone).date()
        return dates.format_date(moment, "medium", locale=self.locale)

    def datetime(self, value: str | datetime | None) -> str:
        if value is None or value == "":
            return "—"
        moment = _parse(value)
        assert isinstance(moment, datetime)
        return dates.format_datetime(moment, "medium", tzinfo=self.zone, locale=self.locale)

    def month(self, period: str) -> str:
        """'2026-11' as the locale names a month and year."""
        year, month = (int(part) for part in period.split("-"))
        return dates.format_skeleton("yMMMM", date(year, month, 1), locale=self.locale)


def _parse(value: str | date | datetime) -> date | datetime:
    if isinstance(value, date):
        return value
    if "T" in value or " " in value:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return date.fromisoformat(value)


def gettext_for(catalogs: Mapping[str, NullTranslations], locale: str) -> NullTranslations:
    return catalogs.get(locale) or catalogs[DEFAULT]
