"""Each kind of user's main journey, end to end, in Chromium on the running platform.

Ops onboard a partner, register a member and start a targeted give-away for her; the partner's staff
publish a voucher offer; the member (on a phone, by keyboard alone) sees the points the partner's system
posted, claims the give-away, redeems the offer at that partner and sees her voucher; the partner's staff
then find the redemption in their month's statement. Every page passes axe-core; screenshots of each
step are in .local/artefacts/browser/.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from playwright.async_api import Browser, Page, expect

from deploy.local.fleet import Fleet
from tests.e2e.browser.support import DESK, PHONE, Person, person, tab_to
from tests.support.partner_client import PartnerCredentials, SignedPartnerClient, purchase_item
from tests.support.waiting import eventually

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the console's display time zone: forms read times in it
PRICE = 300
GIVEAWAY = 50


def local(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


async def test_ops_partner_and_member_journeys(platform: Fleet, chromium: Browser) -> None:
    run = uuid.uuid4().hex[:6]
    partner_id, customer_ref = f"books{run}", f"reader-{run}"
    base = platform.url("console")
    ops = await person(chromium, "ops", base, DESK)
    staff = await person(chromium, "partner", base, DESK)
    member = await person(chromium, "member", base, PHONE)
    try:
        credentials = await ops_onboard_a_partner(ops, partner_id)
        member_id = await ops_register_and_link_a_member(ops, partner_id, customer_ref)
        await ops_start_a_targeted_giveaway(ops, member_id, run)
        await partner_publishes_an_offer(staff, "tea-year")
        await partner_system_posts_a_purchase(platform, credentials, customer_ref, run)
        await member_earns_claims_and_redeems_by_keyboard(member, partner_id)
        await partner_sees_the_redemption_in_its_statement(staff)
    finally:
        for someone in (ops, staff, member):
            await someone.context.close()


async def ops_onboard_a_partner(ops: Person, partner_id: str) -> PartnerCredentials:
    await ops.sign_in("Sign in as Olivia Chen")
    await ops.check("dashboard")
    await ops.open("/ops/partners/new")
    page = ops.page
    await page.get_by_label("Partner id").fill(partner_id)
    await page.get_by_label(re.compile(r"^Name")).fill("Harbour Books")
    await page.get_by_label("Valid from").fill("2020-01-01")
    await page.get_by_label("Points per unit").fill("1")
    await page.get_by_label("Issue price (minor units per point)").fill("1.0")
    await page.get_by_label("Redemption price (minor units per point)").fill("0.8")
    await page.get_by_role("button", name="Register partner").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Partner registered")
    await ops.check("partner-registered")
    secret = (await page.locator("#api-secret").inner_text()).strip()
    key_id = await key_id_on(page)
    return PartnerCredentials(partner_id, key_id, secret)


async def key_id_on(page: Page) -> str:
    text = await page.locator(".stats").inner_text()
    found = re.search(r"Key id\s+(\S+)", text)
    assert found, text
    return found.group(1)


async def ops_register_and_link_a_member(ops: Person, partner_id: str, customer_ref: str) -> str:
    await ops.open("/ops/members/new")
    page = ops.page
    await page.get_by_label("Display name").fill("Mei")
    await page.get_by_role("button", name="Register member").click()
    await page.wait_for_url(re.compile(r"/ops/members/[0-9a-f-]{36}$"))
    member_id = page.url.rsplit("/", 1)[-1]
    await ops.check("member")
    await ops.open(f"/ops/members/{member_id}/link")
    await page.get_by_label("What to link").select_option("partner")
    await page.get_by_label("Partner id").fill(partner_id)
    await page.get_by_label("Customer reference").fill(customer_ref)
    await page.get_by_role("button", name="Link identifier").click()
    await expect(page.get_by_text(f"partner:{partner_id}:{customer_ref}").first).to_be_visible()
    return member_id


async def ops_start_a_targeted_giveaway(ops: Person, member_id: str, run: str) -> None:
    page = ops.page
    await ops.open("/ops/segments/new")
    await page.get_by_label("Segment name").fill(f"Mei only {run}")
    await page.get_by_label("Field").select_option("member")
    # htmx redraws the condition for its field; typing before that swap lands would be typed into the old row.
    await expect(page.get_by_label("Member ids")).to_be_visible()
    await page.get_by_label("Member ids").fill(member_id)
    await page.keyboard.press("Tab")  # leaving the field changes it: the live preview follows
    await expect(page.locator("#segment-preview")).to_contain_text("Members who meet every condition")
    await ops.check("segment-preview")
    await page.get_by_role("button", name="Save segment").click()
    await expect(page.locator(".flash")).to_contain_text("Segment saved")

    await ops.open("/ops/activities/new?kind=limited_claim")
    await page.get_by_label("Activity name").fill(f"Welcome gift {run}")
    await page.get_by_label("Points per claim").fill(str(GIVEAWAY))
    await page.get_by_label("Budget (points)").fill("10000")
    await page.get_by_label("Most bonuses in total").fill("100")
    await page.get_by_label("Segment", exact=True).select_option(label=f"Mei only {run}")
    await page.get_by_label("Holdout, per cent of the segment").fill("0")
    await page.get_by_role("button", name="Create activity").click()
    await expect(page.locator(".flash")).to_contain_text("Activity created")
    await ops.check("activity-draft")
    await page.get_by_label("Runs until").first.fill(local(datetime.now(UTC) + timedelta(days=30)))
    await page.get_by_role("button", name="Activate now").click()
    await expect(page.get_by_role("button", name="Pause")).to_be_visible()
    await ops.check("activity-active")


async def partner_publishes_an_offer(staff: Person, offer_id: str) -> None:
    await staff.sign_in("Sign in as Harbour Books")
    await staff.check("portal")
    await staff.open("/portal/offers/new")
    page = staff.page
    now = datetime.now(UTC)
    await page.get_by_label("Offer id").fill(offer_id)
    await page.get_by_label("Kind").select_option("voucher")
    await page.get_by_label("Title").fill("Tea for a year")
    await page.get_by_label("Category").fill("food")
    await page.get_by_label("Price in points").fill(str(PRICE))
    await page.get_by_label("Stock").fill("20")
    await page.get_by_label("Valid from").fill(local(now - timedelta(days=1)))
    await page.get_by_label("Valid until").fill(local(now + timedelta(days=365)))
    await page.get_by_role("button", name="Publish offer").click()
    await page.wait_for_url(f"**/portal/offers/{offer_id}")
    await staff.check("offer")


async def partner_system_posts_a_purchase(
    platform: Fleet, credentials: PartnerCredentials, customer_ref: str, run: str
) -> None:
    """The partner's own system (not a person): a signed purchase of 500.00 CNY, 500 points."""
    async with httpx.AsyncClient(base_url=platform.url("partners"), timeout=15) as client:
        partner = SignedPartnerClient(client, credentials)
        item = purchase_item(f"k-{run}", 50_000, customer_ref=customer_ref, occurred_at=datetime.now(UTC).isoformat())
        answer = await partner.purchase(item)
        assert answer.status_code == 202, answer.text


async def member_earns_claims_and_redeems_by_keyboard(member: Person, partner_id: str) -> None:
    page = member.page
    await member.open("/signin")
    await tab_to(page, "Sign in as Mei", role="button")
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/wallet")

    async def earned() -> bool:
        await page.reload()
        return (await page.get_by_test_id("available").inner_text()).strip() == "500"

    await eventually(earned, timeout=20, what="the partner's purchase in Mei's wallet")
    await member.check("wallet")

    await tab_to(page, "Activities", role="a")
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/wallet/activities")
    await member.check("activities")
    await tab_to(page, "Claim", role="button")
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    await expect(page.locator(".flash")).to_be_visible()
    await member.check("claimed")

    await tab_to(page, "Rewards", role="a")
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/wallet/catalog*")
    await member.check("catalog")
    await tab_to(page, "Tea for a year", role="a")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"**/wallet/catalog/{partner_id}/tea-year")
    await member.check("offer")
    await tab_to(page, "Redeem", role="button")
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(r"/wallet/orders/[0-9a-f-]{36}$"))
    await expect(page.get_by_test_id("voucher")).to_be_visible(timeout=30_000)  # the page follows the order itself
    await member.check("voucher")

    await tab_to(page, "Wallet", role="a")
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/wallet")
    await expect(page.get_by_test_id("available")).to_have_text(str(500 + GIVEAWAY - PRICE))


async def partner_sees_the_redemption_in_its_statement(staff: Person) -> None:
    page = staff.page

    async def redeemed() -> bool:
        await page.goto(staff.base + "/portal/statements")
        stats = await page.locator(".stats").first.inner_text()
        return bool(re.search(rf"Points redeemed\s+{PRICE}\b", stats))

    await eventually(redeemed, timeout=30, what="the redemption in the partner's statement")
    await staff.check("statement")
