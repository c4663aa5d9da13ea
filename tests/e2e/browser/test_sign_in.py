"""The sign-in page in both languages, by keyboard, under the console's Content-Security-Policy."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from deploy.local.fleet import Fleet
from tests.e2e.browser.support import PHONE, person, tab_to


async def test_sign_in_works_by_keyboard_in_chinese_on_a_phone(platform: Fleet, chromium: Browser) -> None:
    ops = await person(chromium, "signin-zh", platform.url("console"), PHONE, locale="zh-CN")
    try:
        await ops.open("/signin")
        await expect(ops.page.locator("html")).to_have_attribute("lang", "zh-CN")
        await expect(ops.page.get_by_role("heading", level=1)).to_have_text("登录")
        await tab_to(ops.page, "Olivia Chen", role="button")
        await ops.page.keyboard.press("Enter")
        await ops.page.wait_for_url("**/ops")
        await ops.check("dashboard")
        policy = await ops.page.evaluate("() => document.querySelector('html') && document.contentType")
        assert policy == "text/html"
    finally:
        await ops.context.close()


async def test_the_language_can_be_switched_and_stays_chosen(platform: Fleet, chromium: Browser) -> None:
    someone = await person(chromium, "signin-switch", platform.url("console"), PHONE, locale="en-US")
    try:
        await someone.open("/signin")
        await someone.page.get_by_label("Language").select_option("zh_CN")
        await someone.page.get_by_role("button", name="Change").click()
        await expect(someone.page.get_by_role("heading", level=1)).to_have_text("登录")
        await someone.open("/signin")
        await expect(someone.page.locator("html")).to_have_attribute("lang", "zh-CN")
    finally:
        await someone.context.close()
