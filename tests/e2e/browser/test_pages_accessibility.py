"""Every page of the three areas passes axe-core, in the language its users read: each area's menu, and the
detail pages its lists link to (a member, a partner, an activity, a segment, an offer, an order)."""

from __future__ import annotations

import re
import uuid

from playwright.async_api import Browser

from deploy.local.fleet import Fleet
from tests.e2e.browser.support import DESK, PHONE, Person, person

DETAILS = {
    "ops": [r"^/ops/members/[0-9a-f-]{36}$", r"^/ops/partners/(?!new$)[a-z0-9-]+$", r"^/ops/activities/[0-9a-f-]{36}$",
            r"^/ops/activities/[0-9a-f-]{36}/report$", r"^/ops/segments/[0-9a-f-]{36}$",
            r"^/ops/dead-letters/[a-z]+/\d+$"],
    "portal": [r"^/portal/offers/(?!new$)[^/]+$"],
    "wallet": [r"^/wallet/orders/[0-9a-f-]{36}$", r"^/wallet/catalog/[^/]+/[^/]+$"],
}  # fmt: skip
FORMS = {"ops": ["/ops/partners/new", "/ops/members/new", "/ops/segments/new", "/ops/activities/new"],
         "portal": ["/portal/offers/new"], "wallet": []}  # fmt: skip


async def visit_every_page(someone: Person, area: str) -> list[str]:
    """The area's menu, its forms, and the first detail page of each kind its pages link to."""
    await someone.open(f"/{area}")
    menu = await links_on(someone, rf"^/{area}(/[a-z-]+)?$")
    seen: list[str] = []
    found: dict[str, str] = {}
    for path in [*menu, *FORMS[area]]:
        await someone.open(path)
        seen.append(path)
        for link in await links_on(someone, "|".join(DETAILS[area])):
            kind = next(p for p in DETAILS[area] if re.match(p, link))
            found.setdefault(kind, link)
    for path in found.values():
        await someone.open(path)
        seen.append(path)
    return seen


async def links_on(someone: Person, pattern: str) -> list[str]:
    hrefs: list[str] = await someone.page.eval_on_selector_all(
        "a[href^='/']", "els => els.map(e => e.getAttribute('href'))"
    )
    unique = dict.fromkeys(h.split("?")[0] for h in hrefs if re.match(pattern, h.split("?")[0]))
    return list(unique)


async def test_every_page_of_every_area_passes_axe(platform: Fleet, chromium: Browser) -> None:
    base = platform.url("console")
    name = f"Crawler {uuid.uuid4().hex[:4]}"
    ops = await person(chromium, "a11y-ops", base, DESK)
    try:
        await ops.sign_in("Sign in as Olivia Chen")
        await ops.open("/ops/members/new")
        await ops.page.get_by_label("Display name").fill(name)
        await ops.page.get_by_role("button", name="Register member").click()
        await ops.open("/ops/partners/new")  # a partner whose staff can sign in, should none exist yet
        await ops.page.get_by_label("Partner id").fill(f"crawl{name.split()[1]}")
        await ops.page.get_by_label(re.compile(r"^Name")).fill(name)
        await ops.page.get_by_label("Valid from").fill("2020-01-01")
        await ops.page.get_by_label("Points per unit").fill("1")
        await ops.page.get_by_label("Issue price (minor units per point)").fill("1.0")
        await ops.page.get_by_label("Redemption price (minor units per point)").fill("0.8")
        await ops.page.get_by_role("button", name="Register partner").click()
        seen = await visit_every_page(ops, "ops")
        assert len(seen) >= 12, seen
    finally:
        await ops.context.close()

    partner = await person(chromium, "a11y-portal", base, DESK)
    try:
        await partner.open("/signin")
        staff = partner.page.locator("#signin-partner ~ ul button, section:has(#signin-partner) button").first
        await staff.click()
        await partner.page.wait_for_url("**/portal")
        assert len(await visit_every_page(partner, "portal")) >= 6
    finally:
        await partner.context.close()

    for locale in ("zh-CN", "en-US"):
        member = await person(chromium, f"a11y-wallet-{locale}", base, PHONE, locale=locale)
        try:
            await member.open(f"/signin?find={name.split()[1]}")
            await member.page.locator("section:has(#signin-member) form button[type=submit]").last.click()
            await member.page.wait_for_url("**/wallet")
            assert len(await visit_every_page(member, "wallet")) >= 8
        finally:
            await member.context.close()
