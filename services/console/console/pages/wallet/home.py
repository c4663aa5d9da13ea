"""The wallet's everyday pages: balance, lots, history, rewards and orders, gifts, links, activities, invitations.

Every page is the signed-in member's own (`me` to the points service). A form that creates something carries
an id chosen when the form is rendered (an order's idempotency key, a gift id, a claim id), so that a double
submit acts once: the services answer a repeated id with what the first request did.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request, Response
from fastapi.responses import HTMLResponse

from console import i18n
from console.clients.base import ApiError
from console.clients.services import PointsApi, RedemptionApi
from console.rendering import gettext
from console.web import MemberSession, Points, Redemption, console_of, redirect

Json = dict[str, Any]
Cursor = Annotated[str | None, Query(max_length=400)]
PartnerRef = Annotated[str, Path(min_length=1, max_length=63)]
OfferRef = Annotated[str, Path(min_length=1, max_length=128)]
LATEST = 5
NEXT_LOTS = 3
PAGE_SIZE = 20
MAX_QUANTITY = 100
MAX_GIFT = 10**9
FINAL_STATES = frozenset({"fulfilled", "cancelled", "payment_failed"})
BADGES = {"fulfilled": "fulfilled", "payment_failed": "payment-failed", "cancelled": "cancelled"}
"""The badge colour of an order's state (console.css); every state on its way is `pending`."""


def router() -> APIRouter:
    api = APIRouter(prefix="/wallet", tags=["wallet"])
    for add in (_balance_pages, _reward_pages, _order_pages, _gift_pages, _link_pages, _activity_pages, _invite_pages):
        add(api)
    return api


# --- shared steps ------------------------------------------------------------------------------------------


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return console_of(request).pages.render(request, template, status_code, **context)


def formats(request: Request) -> i18n.Formats:
    """Numbers in flash messages, as the page would show them."""
    return console_of(request).pages.formats(request)


def whole_number(text: str, low: int, high: int) -> int | None:
    """The digits someone typed (thousands separators allowed) as an int within [low, high], or None."""
    digits = text.strip().replace(",", "").replace(" ", "")
    if not digits.isascii() or not digits.isdigit() or len(digits) > 12:
        return None
    value = int(digits)
    return value if low <= value <= high else None


def member_id_or_none(text: str) -> str | None:
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        return None


def new_id() -> str:
    return str(uuid.uuid4())


# --- balance, lots, history ----------------------------------------------------------------------------------


def _balance_pages(api: APIRouter) -> None:
    @api.get("", response_class=HTMLResponse)
    async def wallet(request: Request, session: MemberSession, points: Points) -> HTMLResponse:
        balance, lots, history = await asyncio.gather(
            points.balance(), points.lots(limit=NEXT_LOTS), points.history(limit=LATEST)
        )
        lines = [describe(entry) for entry in history["items"]]
        return render(request, "wallet/home.html", balance=balance, lots=lots["items"], lines=lines)

    @api.get("/lots", response_class=HTMLResponse)
    async def lots(request: Request, session: MemberSession, points: Points, cursor: Cursor = None) -> HTMLResponse:
        page = await points.lots(cursor=cursor, limit=PAGE_SIZE)
        return render(request, "wallet/lots.html", lots=page["items"], next_cursor=page["next_cursor"])

    @api.get("/history", response_class=HTMLResponse)
    async def history(request: Request, session: MemberSession, points: Points, cursor: Cursor = None) -> HTMLResponse:
        page = await points.history(cursor=cursor, limit=PAGE_SIZE)
        lines = [describe(entry) for entry in page["items"]]
        return render(request, "wallet/history.html", lines=lines, next_cursor=page["next_cursor"])


@dataclass(frozen=True)
class Line:
    """One movement of the member's history as the member reads it."""

    occurred_at: str
    words: str
    direction: str | None
    amount: int
    partner: str | None
    source: str
    money: tuple[int, str] | None
    href: str | None
    message: str


def describe(entry: Json) -> Line:
    memo = entry.get("memo") or {}
    order_id = memo.get("order_id")
    return Line(
        occurred_at=entry["occurred_at"],
        words=reason_words(entry["reason"], entry.get("direction")),
        direction=entry.get("direction"),
        amount=int(entry.get("amount") or 0),
        partner=partner_of(entry),
        source=source_of(entry),
        money=money_of(memo),
        href=f"/wallet/orders/{order_id}" if order_id else None,
        message=str(memo.get("message") or "") if entry["reason"] == "gift" else "",
    )


def reason_words(reason: str, direction: str | None) -> str:
    """The ledger's reason codes (points/domain and handlers) in words; an unknown one is shown as it is."""
    if reason == "gift":
        return gettext("Gift received") if direction == "credit" else gettext("Gift sent")
    words = {
        "partner_purchase": gettext("Earned at a partner"),
        "card_purchase": gettext("Earned with your card"),
        "partner_refund": gettext("Refund at a partner: points taken back"),
        "card_reversal": gettext("Card refund: points taken back"),
        "clawback": gettext("Refunded points you had already spent"),
        "clawback_repayment": gettext("Owed points repaid"),
        "bonus_multiplier": gettext("Activity bonus: extra points"),
        "bonus_spend_threshold": gettext("Activity bonus: spending goal reached"),
        "bonus_first_purchase": gettext("Activity bonus: first purchase"),
        "bonus_limited_claim": gettext("Activity claimed"),
        "bonus_referral": gettext("Invitation bonus"),
        "bonus_reversal": gettext("Bonus taken back after a refund"),
        "bonus_clawback": gettext("Refunded bonus you had already spent"),
        "tier_bonus": gettext("Tier bonus: extra points"),
        "tier_bonus_reversal": gettext("Tier bonus taken back after a refund"),
        "claim": gettext("Points brought by a link"),
        "red_packet_funding": gettext("Put in a red packet"),
        "red_packet_grab": gettext("Grabbed from a red packet"),
        "red_packet_return": gettext("Red packet: what nobody grabbed came back"),
        "redemption": gettext("Redeemed for a reward"),
        "expiry": gettext("Points expired"),
        "identifier_linked": gettext("Card or account linked"),
        "identifier_unlinked": gettext("Card or account unlinked"),
    }
    return words.get(reason) or reason.replace("_", " ").capitalize()


def partner_of(entry: Json) -> str | None:
    """The partner a movement is about: the memo's, else the counterparty's, the points' issuer or the identifier's."""
    memo = entry.get("memo") or {}
    if memo.get("partner_id"):
        return str(memo["partner_id"])
    for account in (entry.get("counterparty"), memo.get("issuer"), entry.get("identifier"), memo.get("identifier")):
        if isinstance(account, str) and account.startswith("partner:"):
            return account.split(":")[1]
    return None


def source_of(entry: Json) -> str:
    """What the movement came from: the shop, the friend, the activity, the order, the purchase or the link."""
    memo = entry.get("memo") or {}
    if entry.get("kind") == "identifier":
        return identifier_words(entry.get("identifier") or "")
    if entry["reason"] == "gift":
        friend = str(entry.get("counterparty") or "").removeprefix("member:")
        sent = entry.get("direction") != "credit"
        return (gettext("To member %(member)s") if sent else gettext("From member %(member)s")) % {"member": friend}
    if memo.get("merchant_name"):
        return str(memo["merchant_name"])
    if memo.get("activity"):
        return str(memo["activity"])
    if memo.get("order_id"):
        return gettext("Order %(order)s") % {"order": str(memo["order_id"])[:8]}
    if memo.get("refund_id"):
        return gettext("Refund %(refund)s of purchase %(purchase)s") % {
            "refund": memo["refund_id"], "purchase": memo.get("purchase_id", "")
        }  # fmt: skip
    if memo.get("purchase_id"):
        return gettext("Purchase %(purchase)s") % {"purchase": memo["purchase_id"]}
    if memo.get("original_transaction_id"):
        return gettext("Card payment %(transaction)s") % {"transaction": memo["original_transaction_id"]}
    if memo.get("identifier"):
        return identifier_words(str(memo["identifier"]))
    return ""


def money_of(memo: Json) -> tuple[int, str] | None:
    """The purchase or refund amount behind a movement, in integer minor units and its currency."""
    amount, currency = memo.get("amount_minor"), memo.get("currency")
    if isinstance(amount, int) and isinstance(currency, str):
        return amount, currency
    return None


def identifier_words(identifier: str) -> str:
    kind, _, rest = identifier.partition(":")
    if kind == "card":
        return gettext("Card %(token)s") % {"token": rest}
    if kind == "partner":
        partner, _, ref = rest.partition(":")
        return gettext("Account %(ref)s at %(partner)s") % {"ref": ref, "partner": partner}
    return identifier


# --- rewards: catalog, offer, redeem -------------------------------------------------------------------------


def offer_href(partner_id: str, offer_id: str) -> str:
    return f"/wallet/catalog/{quote(partner_id, safe='')}/{quote(offer_id, safe='/')}"


def priced(offer: Json) -> Json:
    """The offer with the member's own price (the catalog's price_points: its tier's, where there is one), what
    others pay when that differs (`others_pay`), and its page."""
    price = int(offer["price_points"])
    base = int(offer.get("base_price_points") or price)
    href = offer_href(offer["partner_id"], offer["offer_id"])
    return {**offer, "your_price": price, "others_pay": base if base != price else None, "href": href}


def _reward_pages(api: APIRouter) -> None:
    @api.get("/catalog", response_class=HTMLResponse)
    async def catalog(
        request: Request, session: MemberSession, points: Points, redemption: Redemption, cursor: Cursor = None
    ) -> HTMLResponse:
        page, balance = await asyncio.gather(redemption.catalog(cursor=cursor, limit=PAGE_SIZE), points.balance())
        offers = [priced(offer) for offer in page["items"]]
        return render(request, "wallet/catalog.html", offers=offers, next_cursor=page["next_cursor"], balance=balance)

    @api.get("/catalog/{partner_id}/{offer_id:path}", response_class=HTMLResponse)
    async def offer(
        request: Request, session: MemberSession, points: Points, redemption: Redemption,
        partner_id: PartnerRef, offer_id: OfferRef,
    ) -> HTMLResponse:  # fmt: skip
        return await _offer_page(request, points, redemption, partner_id, offer_id, RedeemForm("1", new_id()))

    @api.post("/catalog/{partner_id}/{offer_id:path}", response_class=HTMLResponse)
    async def redeem(
        request: Request, session: MemberSession, points: Points, redemption: Redemption,
        partner_id: PartnerRef, offer_id: OfferRef,
        quantity: Annotated[str, Form(max_length=12)],
        idempotency_key: Annotated[str, Form(min_length=1, max_length=128)],
        unit_points: Annotated[str, Form(max_length=12)] = "",
    ) -> Response:  # fmt: skip
        form = RedeemForm(quantity, idempotency_key)
        units = whole_number(quantity, 1, MAX_QUANTITY)
        if units is None:
            form.quantity_error = gettext("Enter how many you want, from 1 to %(most)s.") % {"most": MAX_QUANTITY}
            return await _offer_page(request, points, redemption, partner_id, offer_id, form, 422)
        body = {"partner_id": partner_id, "offer_id": offer_id, "quantity": units, "idempotency_key": idempotency_key}
        shown_price = whole_number(unit_points, 1, 10**9)
        if shown_price is not None:  # charged the price the member saw, or refused with the price now
            body["expected_unit_points"] = shown_price
        try:
            order = await redemption.place_order(body)
        except ApiError as error:
            if not error.refused:
                raise
            form.problem = error.detail
            return await _offer_page(request, points, redemption, partner_id, offer_id, form, error.status)
        return redirect(request, f"/wallet/orders/{order['order_id']}", gettext("Your order is placed."))


@dataclass
class RedeemForm:
    quantity: str
    idempotency_key: str
    """Chosen when the form is rendered and kept on a refusal: the same key never orders twice."""
    quantity_error: str = ""
    problem: str = ""


async def _offer_page(
    request: Request, points: PointsApi, redemption: RedemptionApi, partner_id: str, offer_id: str,
    form: RedeemForm, status_code: int = 200,
) -> HTMLResponse:  # fmt: skip
    offer, balance = await asyncio.gather(
        redemption.catalog_offer(quote(partner_id, safe=""), quote(offer_id, safe="/")), points.balance()
    )
    shown = priced(offer)
    redeemable = offer.get("status") == "on_sale" and int(offer.get("available") or 0) > 0
    most = min(MAX_QUANTITY, int(offer.get("available") or 0)) or 1
    return render(request, "wallet/offer.html", status_code, offer=shown, balance=balance, form=form, link_id=new_id(),
                  redeemable=redeemable, most=most)  # fmt: skip


# --- orders --------------------------------------------------------------------------------------------------


def order_status(order: Json) -> Json:
    """The order's state in words, what it means for the member, and why it ended when it did not succeed."""
    state = order["state"]
    words = {
        "awaiting_hold": (gettext("Reserving your points"), gettext("We are setting your points aside.")),
        "fulfilling": (gettext("With the partner"), gettext("The partner is preparing your reward.")),
        "capturing": (gettext("Confirming"), gettext("Your reward is ready; we are taking the points.")),
        "cancelling": (gettext("Being cancelled"), gettext("Your points are being given back.")),
        "fulfilled": (gettext("Fulfilled"), gettext("Enjoy your reward.")),
        "cancelled": (gettext("Cancelled"), gettext("Nothing was delivered and your points were given back.")),
        "payment_failed": (gettext("Payment failed"), gettext("The points could not be taken; nothing is owed.")),
    }
    label, note = words.get(state, (state.replace("_", " "), ""))
    badge = BADGES.get(state, "pending")
    reason = cancel_words(order.get("cancel_reason")) if state in ("cancelled", "cancelling", "payment_failed") else ""
    return {"label": label, "note": note, "badge": badge, "reason": reason, "final": state in FINAL_STATES}


def cancel_words(reason: str | None) -> str:
    if not reason:
        return ""
    words = {
        "insufficient_points": gettext("You did not have enough points available."),
        "redemption_limit": gettext("You reached today's limit of redemptions; try again tomorrow."),
        "out_of_stock": gettext("The reward sold out."),
        "fulfilment_timeout": gettext("The partner did not deliver in time."),
        "fulfilment_unconfirmed": gettext("The partner did not confirm the delivery in time."),
        "hold_expired": gettext("The reservation of your points ran out."),
        "hold_released": gettext("The reservation of your points was released."),
        "unknown_member": gettext("Your membership was not found."),
    }
    return words.get(reason) or gettext("Reason: %(reason)s") % {"reason": reason.replace("_", " ")}


OrderRef = Annotated[uuid.UUID, Path()]


def _order_pages(api: APIRouter) -> None:
    @api.get("/orders", response_class=HTMLResponse)
    async def orders(
        request: Request, session: MemberSession, redemption: Redemption, cursor: Cursor = None
    ) -> HTMLResponse:
        page = await redemption.orders(cursor=cursor, limit=PAGE_SIZE)
        shown = [{**order, "status": order_status(order)} for order in page["items"]]
        return render(request, "wallet/orders.html", orders=shown, next_cursor=page["next_cursor"])

    @api.get("/orders/{order_id}", response_class=HTMLResponse)
    async def order(
        request: Request, session: MemberSession, redemption: Redemption, order_id: OrderRef
    ) -> HTMLResponse:
        found = await redemption.order(str(order_id))
        title = await _offer_title(redemption, found)
        return render(request, "wallet/order.html", order=found, status=order_status(found), title=title)

    @api.get("/orders/{order_id}/status", response_class=HTMLResponse)
    async def order_fragment(
        request: Request, session: MemberSession, redemption: Redemption, order_id: OrderRef,
        seen: Annotated[str, Query(max_length=40)] = "",
    ) -> Response:  # fmt: skip
        """The order's status for htmx polling: 204 (nothing to swap) while the state is the one already shown."""
        found = await redemption.order(str(order_id))
        if seen and seen == found["state"]:
            return Response(status_code=204)
        return console_of(request).pages.fragment(
            request, "wallet/_order_status.html", order=found, status=order_status(found)
        )


async def _offer_title(redemption: RedemptionApi, order: Json) -> str:
    """The reward's title from the catalog; the offer id when the catalog no longer has it."""
    try:
        offer = await redemption.catalog_offer(quote(order["partner_id"], safe=""), quote(order["offer_id"], safe="/"))
    except ApiError as error:
        if not error.refused:
            raise
        return str(order["offer_id"])
    return str(offer.get("title") or order["offer_id"])


# --- gifts ---------------------------------------------------------------------------------------------------


@dataclass
class GiftForm:
    to_member_id: str = ""
    points: str = ""
    message: str = ""
    gift_id: str = ""
    errors: dict[str, str] | None = None
    problem: str = ""


def _gift_pages(api: APIRouter) -> None:
    @api.get("/gift", response_class=HTMLResponse)
    async def gift(request: Request, session: MemberSession, points: Points) -> HTMLResponse:
        return await _gift_page(request, points, GiftForm(gift_id=new_id()))

    @api.post("/gift", response_class=HTMLResponse)
    async def give(
        request: Request, session: MemberSession, points: Points,
        to_member_id: Annotated[str, Form(max_length=64)], amount: Annotated[str, Form(alias="points", max_length=16)],
        gift_id: Annotated[str, Form(max_length=64)], message: Annotated[str, Form(max_length=200)] = "",
    ) -> Response:  # fmt: skip
        form = GiftForm(to_member_id.strip(), amount, message.strip(), member_id_or_none(gift_id) or new_id())
        friend, count = member_id_or_none(to_member_id), whole_number(amount, 1, MAX_GIFT)
        form.errors = gift_errors(friend, count)
        if form.errors or friend is None or count is None:
            return await _gift_page(request, points, form, 422)
        body = {"gift_id": form.gift_id, "to_member_id": friend, "amount": count, "message": form.message}
        try:
            await points.gift(body)
        except ApiError as error:
            if not error.refused:
                raise
            form.problem = error.detail
            if error.status == 409:  # the id names another gift: this one needs its own
                form.gift_id = new_id()
            return await _gift_page(request, points, form, error.status)
        done = gettext("You gave %(points)s points to member %(member)s.")
        return redirect(request, "/wallet/gift", done % {"points": formats(request).points(count), "member": friend})


def gift_errors(friend: str | None, count: int | None) -> dict[str, str]:
    errors = {}
    if friend is None:
        errors["to_member_id"] = gettext("Enter your friend's member id, as their Invite page shows it.")
    if count is None:
        errors["points"] = gettext("Enter a whole number of points, at least 1.")
    return errors


async def _gift_page(request: Request, points: PointsApi, form: GiftForm, status_code: int = 200) -> HTMLResponse:
    gifts, balance = await asyncio.gather(points.gifts(), points.balance())
    return render(request, "wallet/gift.html", status_code, form=form, errors=form.errors or {}, gifts=gifts["items"],
                  balance=balance)  # fmt: skip


# --- links ---------------------------------------------------------------------------------------------------


@dataclass
class LinkForms:
    """Both link forms' inputs; a refusal is shown on the form (`card` or `partner`) that was sent."""

    card: dict[str, str]
    partner: dict[str, str]
    errors: dict[str, str]
    problem: str = ""
    problem_for: str = ""


def blank_links() -> LinkForms:
    return LinkForms(card={"card_token": "", "card_code": ""},
                     partner={"partner_id": "", "customer_ref": "", "partner_code": ""}, errors={})  # fmt: skip


def _link_pages(api: APIRouter) -> None:
    @api.get("/link", response_class=HTMLResponse)
    async def link(request: Request, session: MemberSession, points: Points) -> HTMLResponse:
        return await _link_page(request, points, blank_links())

    @api.post("/link/card", response_class=HTMLResponse)
    async def link_card(
        request: Request, session: MemberSession, points: Points,
        card_token: Annotated[str, Form(max_length=80)], card_code: Annotated[str, Form(max_length=40)],
    ) -> Response:  # fmt: skip
        forms = blank_links()
        forms.card = {"card_token": card_token.strip(), "card_code": card_code.strip()}
        body = {"kind": "card", "card_token": forms.card["card_token"], "link_code": forms.card["card_code"]}
        return await _link(request, points, forms, "card", body)

    @api.post("/link/partner", response_class=HTMLResponse)
    async def link_partner(
        request: Request, session: MemberSession, points: Points,
        partner_id: Annotated[str, Form(max_length=63)], customer_ref: Annotated[str, Form(max_length=128)],
        partner_code: Annotated[str, Form(max_length=40)],
    ) -> Response:  # fmt: skip
        forms = blank_links()
        forms.partner = {"partner_id": partner_id.strip(), "customer_ref": customer_ref.strip(),
                         "partner_code": partner_code.strip()}  # fmt: skip
        body = {"kind": "partner", "partner_id": forms.partner["partner_id"],
                "customer_ref": forms.partner["customer_ref"], "link_code": forms.partner["partner_code"]}  # fmt: skip
        return await _link(request, points, forms, "partner", body)


async def _link(request: Request, points: PointsApi, forms: LinkForms, kind: str, body: Json) -> Response:
    """Link with the owner's code; a missing field or the service's refusal comes back on the form that was sent."""
    sent = forms.card if kind == "card" else forms.partner
    forms.errors = {name: gettext("Fill this in.") for name, value in sent.items() if not value}
    if forms.errors:
        return await _link_page(request, points, forms, 422)
    try:
        linked = await points.link(body)
    except ApiError as error:
        if not error.refused:
            raise
        forms.problem, forms.problem_for = error.detail, kind
        return await _link_page(request, points, forms, error.status)
    claimed = int(linked.get("claimed_points") or 0)
    done = gettext("Linked. %(points)s points moved to your wallet.") if claimed else gettext("Linked.")
    return redirect(request, "/wallet/link", done % {"points": formats(request).points(claimed)} if claimed else done)


async def _link_page(request: Request, points: PointsApi, forms: LinkForms, status_code: int = 200) -> HTMLResponse:
    linked = [{**item, "words": identifier_words(item["identifier"])} for item in await points.identifiers()]
    return render(request, "wallet/link.html", status_code, forms=forms, linked=linked)


# --- activities ----------------------------------------------------------------------------------------------


def _activity_pages(api: APIRouter) -> None:
    @api.get("/activities", response_class=HTMLResponse)
    async def activities(request: Request, session: MemberSession, points: Points) -> HTMLResponse:
        return await _activities_page(request, points)

    @api.post("/activities/{activity_id}/claim", response_class=HTMLResponse)
    async def claim(
        request: Request, session: MemberSession, points: Points, activity_id: Annotated[uuid.UUID, Path()],
        claim_id: Annotated[str, Form(max_length=64)],
    ) -> Response:  # fmt: skip
        body = {"claim_id": member_id_or_none(claim_id) or new_id()}
        try:
            granted = await points.claim(str(activity_id), body)
        except ApiError as error:
            if not error.refused:
                raise
            return await _activities_page(request, points, error.detail, error.status)
        done = gettext("You claimed %(points)s points.") % {"points": formats(request).points(granted["points"])}
        return redirect(request, "/wallet/activities", done)


async def _activities_page(
    request: Request, points: PointsApi, problem: str = "", status_code: int = 200
) -> HTMLResponse:
    items = (await points.member_activities())["items"]
    open_ones = [{**item, "claim_id": new_id(), "link_id": new_id()} for item in items if not item.get("claimed")]
    claimed = [item for item in items if item.get("claimed")]
    return render(request, "wallet/activities.html", status_code, open_ones=open_ones, claimed=claimed,
                  problem=problem)  # fmt: skip


# --- invitations ---------------------------------------------------------------------------------------------


def _invite_pages(api: APIRouter) -> None:
    @api.get("/invite", response_class=HTMLResponse)
    async def invite(request: Request, session: MemberSession) -> HTMLResponse:
        member = session.identity.subject
        base = console_of(request).settings.public_url.rstrip("/")
        link = f"{base}/wallet/invite/accept?referrer={quote(member, safe='')}"
        return render(request, "wallet/invite.html", invite_link=link, member_id=member)

    @api.get("/invite/accept", response_class=HTMLResponse)
    async def accept_page(
        request: Request, session: MemberSession, referrer: Annotated[str, Query(max_length=64)] = ""
    ) -> HTMLResponse:
        return _accept_page(request, session.identity.subject, referrer)

    @api.post("/invite/accept", response_class=HTMLResponse)
    async def accept(
        request: Request, session: MemberSession, points: Points, referrer: Annotated[str, Form(max_length=64)]
    ) -> Response:
        friend = member_id_or_none(referrer)
        if friend is None or friend == session.identity.subject:
            return _accept_page(request, session.identity.subject, referrer, status_code=409)
        try:
            await points.set_referrer(friend)
        except ApiError as error:
            if not error.refused:
                raise
            return _accept_page(request, session.identity.subject, friend, error.detail, error.status)
        return redirect(request, "/wallet", gettext("Thank you: member %(member)s invited you.") % {"member": friend})


def _accept_page(
    request: Request, member: str, referrer: str, problem: str = "", status_code: int = 200
) -> HTMLResponse:
    """Who invited the member and a form to confirm it; a broken link or one's own link says so instead."""
    friend = member_id_or_none(referrer)
    if friend is None:
        problem, status_code = gettext("This invitation link is incomplete: ask your friend to send it again."), 400
    elif friend == member:
        problem = gettext("This is your own invitation link: send it to a friend.")
    can_confirm = friend is not None and friend != member
    return render(request, "wallet/invite_accept.html", status_code, referrer=friend, problem=problem,
                  can_confirm=can_confirm)  # fmt: skip
