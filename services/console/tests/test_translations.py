"""Every message the console can show has its Simplified Chinese translation, and the catalogs compile."""

from __future__ import annotations

from console import i18n
from tools import translations


def test_every_message_has_a_simplified_chinese_translation() -> None:
    assert translations.problems() == [], "run `make translations` and translate the new zh_CN messages"


def test_the_catalogs_compile_and_translate() -> None:
    catalogs = i18n.load_catalogs()
    assert catalogs["zh_CN"].gettext("Sign in") == "登录"
    assert catalogs["en"].gettext("Sign in") == "Sign in"


def test_amounts_and_dates_are_formatted_for_the_locale() -> None:
    english, chinese = i18n.Formats("en", "Asia/Shanghai"), i18n.Formats("zh_CN", "Asia/Shanghai")
    assert english.points(1234567) == "1,234,567"
    assert english.money(399_950, "CNY") == "CN¥3,999.50"
    assert chinese.money(399_950, "CNY") == "¥3,999.50"
    assert english.money(1_000, "JPY") == "¥1,000"  # no minor units in yen
    assert english.date("2026-12-01T20:00:00+00:00") == "Dec 2, 2026"  # 04:00 the next day in Shanghai
    assert chinese.date("2026-12-01") == "2026年12月1日"


def test_the_browsers_languages_choose_the_locale() -> None:
    assert i18n.negotiate(None, "zh-CN,zh;q=0.9") == "zh_CN"
    assert i18n.negotiate(None, "zh-TW") == "zh_CN"
    assert i18n.negotiate(None, "fr-FR,en;q=0.5") == "en"
    assert i18n.negotiate(None, None) == "en"
    assert i18n.negotiate("zh_CN", "en-US") == "zh_CN"
    assert i18n.negotiate("xx", "en-US") == "en"  # a forged cookie is ignored
