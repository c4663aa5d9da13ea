"""The partner portal: the staff's view of their partner's purchases, offers, statements, orders and API keys.

Every call names the session's own partner (`session.identity.partner_id`): nothing in a URL or a form
chooses the partner, so a staff member reaches their own partner only, whatever they send.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from console.clients.base import ApiError, Json
from console.clients.services import Body, PartnersApi, PointsApi
from console.rendering import gettext
from console.web import Partners, PartnerSession, Redemption, console_of, current_session, redirect

MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
OFFER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~:-]{0,127}$"  # the partners service's own rule for offer ids
KEY_ID_PATTERN = r"^pk_[A-Za-z0-9_-]{24}$"
OUTCOMES = ("accepted", "refused")
OFFER_KINDS = ("product", "voucher", "discount")
MAX_TIERS = 20  # contracts.events.offers.MAX_TIER_PRICES
ORDER_STATES = (
    "awaiting_fulfilment", "awaiting_hold", "fulfilling", "capturing", "cancelling", "fulfilled", "cancelled",
    "payment_failed",
)  # fmt: skip
ALL = "all"
RECENT = timedelta(days=7)
RECENT_LIMIT = 100
PAGE = 50
LOCAL_INPUT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends and shows


def own_partner(session: PartnerSession) -> str:
    """The signed-in staff member's partner: the only partner the portal ever names."""
    if not session.identity.partner_id:
        raise ApiError("console", 403, gettext("Your sign-in names no partner. Ask ops to link you to one."))
    return session.identity.partner_id


OwnPartner = Annotated[str, Depends(own_partner)]
Cursor = Annotated[str | None, Query(max_length=200)]
OfferId = Annotated[str, Path(pattern=OFFER_ID_PATTERN)]
Month = Annotated[str, Path(pattern=MONTH_PATTERN)]
KeyId = Annotated[str, Path(pattern=KEY_ID_PATTERN)]


# --- months ----------------------------------------------------------------------------------------------


def month_of(moment: datetime) -> str:
    """Statements are per calendar month in UTC."""
    moment = moment.astimezone(UTC)
    return f"{moment.year:04d}-{moment.month:02d}"


def recent_months(now: datetime, previous: int = 12) -> list[str]:
    """This month, then the `previous` months before it, newest first."""
    year, month = now.astimezone(UTC).year, now.astimezone(UTC).month
    months = []
    for back in range(previous + 1):
        y, m = divmod(year * 12 + month - 1 - back, 12)
        months.append(f"{y:04d}-{m + 1:02d}")
    return months


# --- the overview ----------------------------------------------------------------------------------------


def recent_count(page: Json, since: datetime) -> str:
    """How many of a newest-first page arrived since `since`; "100+" when the page holds only recent ones."""
    recent = [i for i in page["items"] if datetime.fromisoformat(i["received_at"]) >= since]
    if len(recent) == len(page["items"]) and page.get("next_cursor"):
        return f"{len(recent)}+"
    return str(len(recent))


async def statement_or_refusal(partners: PartnersApi, partner_id: str, period: str) -> tuple[Json, ApiError | None]:
    """The month's statement, or the service's reason for not giving it (a day without a contract, say)."""
    try:
        return await partners.statement(partner_id, period), None
    except ApiError as error:
        if not error.refused:
            raise
        return None, error


# --- offers ----------------------------------------------------------------------------------------------


class OfferFields(BaseModel):
    """The offer form as typed: kept as text so that a mistake re-renders the form with what was typed."""

    offer_id: str = Field(default="", max_length=128)
    kind: str = Field(default="product", max_length=20)
    title: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=2000)
    category: str = Field(default="", max_length=40)
    price_points: str = Field(default="", max_length=12)
    stock: str = Field(default="", max_length=12)
    valid_from: str = Field(default="", max_length=30)
    valid_until: str = Field(default="", max_length=30)
    fulfilment_url: str = Field(default="", max_length=2048)
    tier_codes: list[str] = Field(default_factory=list, max_length=MAX_TIERS)
    """One per row of the member prices, beside `tier_price_values` (blank: the price for everyone)."""
    tier_price_values: list[str] = Field(default_factory=list, max_length=MAX_TIERS)
    tiers_only: list[str] = Field(default_factory=list, max_length=MAX_TIERS)
    segment_ids: list[str] = Field(default_factory=list, max_length=MAX_TIERS)
    """One per row of the segment prices, beside `segment_price_values` (blank: no price for that segment)."""
    segment_price_values: list[str] = Field(default_factory=list, max_length=MAX_TIERS)

    @classmethod
    def of_offer(cls, offer: Json, zone: ZoneInfo) -> OfferFields:
        prices = offer.get("tier_prices") or []
        return cls(
            offer_id=offer["offer_id"], kind=offer["kind"], title=offer["title"], description=offer["description"],
            category=offer["category"], price_points=str(offer["price_points"]), stock=str(offer["stock"]),
            valid_from=local_input(offer["valid_from"], zone), valid_until=local_input(offer["valid_until"], zone),
            fulfilment_url=offer.get("fulfilment_url") or "", tier_codes=[p["tier"] for p in prices],
            tier_price_values=[str(p["price_points"]) for p in prices], tiers_only=list(offer.get("tiers_only") or []),
            segment_ids=[p["segment_id"] for p in offer.get("segment_prices") or []],
            segment_price_values=[str(p["price_points"]) for p in offer.get("segment_prices") or []],
        )  # fmt: skip

    def tier_price(self, code: str) -> str:
        """What the form holds as the price of members at `code` ('' for none)."""
        return dict(zip(self.tier_codes, self.tier_price_values, strict=False)).get(code, "")

    def segment_price(self, segment_id: str) -> str:
        return dict(zip(self.segment_ids, self.segment_price_values, strict=False)).get(segment_id, "")


OfferForm = Annotated[OfferFields, Form()]


@dataclass
class OfferBody:
    """The PUT body of an offer, or what to fix first."""

    body: Body = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def local_input(value: str, zone: ZoneInfo) -> str:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(zone).strftime(LOCAL_INPUT)


def aware(value: str, zone: ZoneInfo) -> str | None:
    """A datetime-local value, read in the console's display zone, as ISO 8601 with its offset."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).isoformat()


def whole(value: str, least: int) -> int | None:
    text = value.strip()
    return int(text) if text.isascii() and text.isdigit() and int(text) >= least else None


def offer_body(fields: OfferFields, zone: ZoneInfo) -> OfferBody:
    """What the partners service's PUT takes; the service checks the rest and says what is wrong."""
    out = OfferBody()
    price, stock = whole(fields.price_points, 1), whole(fields.stock, 0)
    start, end = aware(fields.valid_from, zone), aware(fields.valid_until, zone)
    if fields.kind not in OFFER_KINDS:
        out.errors["kind"] = gettext("Choose a kind of offer.")
    if price is None:
        out.errors["price_points"] = gettext("Enter a whole number of points, 1 or more.")
    if stock is None:
        out.errors["stock"] = gettext("Enter a whole number of units, 0 or more.")
    for name, moment in (("valid_from", start), ("valid_until", end)):
        if moment is None:
            out.errors[name] = gettext("Enter a date and a time.")
    tier_prices = member_prices(fields.tier_codes, fields.tier_price_values, "tier")
    segment_prices = member_prices(fields.segment_ids, fields.segment_price_values, "segment_id")
    if tier_prices is None or segment_prices is None:
        out.errors["tier_prices"] = gettext(
            "Enter member prices as whole numbers of points, 1 or more, or leave them blank."
        )
    out.body = {
        "kind": fields.kind, "title": fields.title.strip(), "description": fields.description.strip(),
        "category": fields.category.strip(), "price_points": price, "stock": stock, "valid_from": start,
        "valid_until": end, "fulfilment_url": fields.fulfilment_url.strip() or None,
        "tier_prices": tier_prices or [], "segment_prices": segment_prices or [],
        "tiers_only": sorted(set(fields.tiers_only)),
    }  # fmt: skip
    return out


def member_prices(keys: list[str], values: list[str], name: str) -> list[Json] | None:
    """The rows of member prices that hold a price, as the service takes them ({name: key, price_points});
    None if one is not a number."""
    prices = []
    for key, value in zip(keys, values, strict=False):
        if not value.strip():
            continue
        points = whole(value, 1)
        if points is None:
            return None
        prices.append({name: key, "price_points": points})
    return prices


async def programme_tiers(request: Request) -> list[Json]:
    """The programme's tiers above its base tier (code, name) for member prices; none when the points service
    cannot say now."""
    points = PointsApi(console_of(request).points, current_session(request).bearer)
    try:
        tier_set = await points.tier_set()
    except ApiError:
        return []
    base = tier_set.get("base_tier")  # every member is at least there: its price is the price for everyone
    return [{"code": t["code"], "name": t.get("name") or t["code"]} for t in tier_set.get("tiers") or []
            if t["code"] != base]  # fmt: skip


async def published_segments(request: Request) -> list[Json]:
    """The segments ops published for member prices (id, name, members); none when points cannot say now."""
    points = PointsApi(console_of(request).points, current_session(request).bearer)
    try:
        found = await points.published_segments()
    except ApiError:
        return []
    return [{"id": s["segment_id"], "name": s["name"], "members": s["members"]} for s in found.get("items") or []]


def segment_rows(published: list[Json], fields: OfferFields) -> list[Json]:
    """A row per published segment, and per segment price of the offer that is no longer published."""
    known = {s["id"] for s in published}
    kept = [{"id": i, "name": i, "members": None} for i in fields.segment_ids if i not in known]
    return [{**s, "price": fields.segment_price(s["id"])} for s in published + kept]


def tier_rows(programme: list[Json], fields: OfferFields) -> list[Json]:
    """A row per tier of the programme, and per tier the offer prices that the programme no longer names."""
    known = {t["code"] for t in programme}
    kept = [{"code": c, "name": c} for c in dict.fromkeys(fields.tier_codes + fields.tiers_only) if c not in known]
    return [{**t, "price": fields.tier_price(t["code"]), "only": t["code"] in fields.tiers_only}
            for t in programme + kept]  # fmt: skip


def new_offer_id_error(offer_id: str) -> str | None:
    if not re.fullmatch(OFFER_ID_PATTERN, offer_id):
        return gettext("Use 1 to 128 letters, digits and . _ ~ : - starting with a letter or a digit.")
    if offer_id == "new":
        return gettext("Choose another id: “new” is the address of this form.")
    return None


def offer_state(offer: Json, now: datetime) -> str:
    if offer.get("withdrawn_at"):
        return "withdrawn"
    if datetime.fromisoformat(offer["valid_from"]) > now:
        return "scheduled"
    if datetime.fromisoformat(offer["valid_until"]) <= now:
        return "ended"
    return "active"


async def render_offer_form(
    request: Request,
    fields: OfferFields,
    *,
    offer: Json = None,
    errors: dict[str, str] | None = None,
    problem: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    """The create form (no `offer`) or the edit form of `offer`, with the person's input and what to fix."""
    console = console_of(request)
    return console.pages.render(
        request, "portal/offer_form.html", status_code, fields=fields, offer=offer, errors=errors or {},
        problem=problem, kinds=OFFER_KINDS, zone=console.pages.timezone,
        state=offer_state(offer, console.clock()) if offer else "",
        tiers=tier_rows(await programme_tiers(request), fields),
        segments=segment_rows(await published_segments(request), fields),
    )  # fmt: skip


# --- keys ------------------------------------------------------------------------------------------------


def fingerprint(keys: list[Json]) -> str:
    """The active keys as a rotate form saw them: a form sent twice (a reload) finds them changed."""
    active = sorted(k["key_id"] for k in keys if not k.get("revoked_at"))
    return hashlib.sha256(",".join(active).encode()).hexdigest()[:16]


def render_keys(request: Request, partner: Json, problem: str = "", status_code: int = 200) -> HTMLResponse:
    keys = partner["keys"]
    return console_of(request).pages.render(
        request, "portal/keys.html", status_code, partner=partner, problem=problem, seen=fingerprint(keys),
        active=[k for k in keys if not k.get("revoked_at")], revoked=[k for k in keys if k.get("revoked_at")],
    )  # fmt: skip


# --- the routes ------------------------------------------------------------------------------------------


def router() -> APIRouter:
    api = APIRouter(prefix="/portal", tags=["portal"])
    overview_routes(api)
    purchase_routes(api)
    offer_routes(api)
    statement_routes(api)
    key_routes(api)
    order_routes(api)
    return api


def overview_routes(api: APIRouter) -> None:
    @api.get("", response_class=HTMLResponse)
    async def home(request: Request, own: OwnPartner, partners: Partners) -> HTMLResponse:
        now = console_of(request).clock()
        period = month_of(now)
        (statement, problem), accepted, refused = await asyncio.gather(
            statement_or_refusal(partners, own, period),
            partners.purchases(own, outcome="accepted", limit=RECENT_LIMIT),
            partners.purchases(own, outcome="refused", limit=RECENT_LIMIT),
        )
        since = now - RECENT
        return console_of(request).pages.render(
            request, "portal/home.html", period=period, statement=statement, problem=problem,
            accepted=recent_count(accepted, since), refused=recent_count(refused, since), days=RECENT.days,
        )  # fmt: skip


def purchase_routes(api: APIRouter) -> None:
    @api.get("/purchases", response_class=HTMLResponse)
    async def purchases(
        request: Request,
        own: OwnPartner,
        partners: Partners,
        outcome: Annotated[str, Query(max_length=20)] = "",
        cursor: Annotated[str | None, Query(max_length=20, pattern=r"^[0-9]*$")] = None,
    ) -> HTMLResponse:
        chosen = outcome if outcome in OUTCOMES else ""
        page = await partners.purchases(own, outcome=chosen or None, before=cursor or None, limit=PAGE)
        return console_of(request).pages.render(
            request, "portal/purchases.html", items=page["items"], next_cursor=page.get("next_cursor"),
            outcome=chosen, here="/portal/purchases" + (f"?outcome={chosen}" if chosen else ""),
        )  # fmt: skip


def offer_routes(api: APIRouter) -> None:
    @api.get("/offers", response_class=HTMLResponse)
    async def offers(request: Request, own: OwnPartner, partners: Partners) -> HTMLResponse:
        page = await partners.offers(own)
        now = console_of(request).clock()
        items = [{**o, "state": offer_state(o, now)} for o in page["items"]]
        return console_of(request).pages.render(request, "portal/offers.html", items=items)

    @api.get("/offers/new", response_class=HTMLResponse)
    async def new_offer(request: Request, _own: OwnPartner) -> HTMLResponse:
        zone = ZoneInfo(console_of(request).pages.timezone)
        start = console_of(request).clock().astimezone(zone).strftime(LOCAL_INPUT)
        return await render_offer_form(request, OfferFields(valid_from=start))

    @api.post("/offers/new", response_model=None)
    async def create_offer(request: Request, own: OwnPartner, partners: Partners, fields: OfferForm) -> Response:
        offer_id = fields.offer_id.strip()
        if error := new_offer_id_error(offer_id):
            return await render_offer_form(request, fields, errors={"offer_id": error}, status_code=422)
        if await existing_offer(partners, own, offer_id) is not None:
            taken = gettext("You already have an offer with this id: open it from the list of offers to change it.")
            return await render_offer_form(request, fields, errors={"offer_id": taken}, status_code=409)
        return await save_offer(request, partners, own, offer_id, fields, None)

    @api.get("/offers/{offer_id}", response_class=HTMLResponse)
    async def edit_offer(request: Request, offer_id: OfferId, own: OwnPartner, partners: Partners) -> HTMLResponse:
        offer = await partners.offer(own, offer_id)
        fields = OfferFields.of_offer(offer, ZoneInfo(console_of(request).pages.timezone))
        return await render_offer_form(request, fields, offer=offer)

    @api.post("/offers/{offer_id}", response_model=None)
    async def revise_offer(
        request: Request, offer_id: OfferId, own: OwnPartner, partners: Partners, fields: OfferForm
    ) -> Response:
        offer = await partners.offer(own, offer_id)
        return await save_offer(request, partners, own, offer_id, fields.model_copy(update={"offer_id": offer_id}),
                                offer)  # fmt: skip

    @api.post("/offers/{offer_id}/withdraw", response_model=None)
    async def withdraw_offer(request: Request, offer_id: OfferId, own: OwnPartner, partners: Partners) -> Response:
        try:
            await partners.withdraw_offer(own, offer_id)
        except ApiError as error:
            if not error.refused:
                raise
            offer = await partners.offer(own, offer_id)
            fields = OfferFields.of_offer(offer, ZoneInfo(console_of(request).pages.timezone))
            return await render_offer_form(request, fields, offer=offer, problem=error.detail, status_code=error.status)
        return redirect(request, "/portal/offers", gettext("Offer %(offer)s withdrawn.") % {"offer": offer_id})


async def existing_offer(partners: PartnersApi, partner_id: str, offer_id: str) -> Json:
    """The offer of that id, or None: a new offer must not overwrite one by accident."""
    try:
        return await partners.offer(partner_id, offer_id)
    except ApiError as error:
        if error.status == 404:
            return None
        raise


async def save_offer(
    request: Request, partners: PartnersApi, partner_id: str, offer_id: str, fields: OfferFields, offer: Json
) -> Response:
    """PUT the offer; the form again with the input and the reason when the console or the service refuses it."""
    prepared = offer_body(fields, ZoneInfo(console_of(request).pages.timezone))
    if prepared.errors:
        problem = gettext("Check the fields marked below.")
        return await render_offer_form(request, fields, offer=offer, errors=prepared.errors, problem=problem,
                                 status_code=422)  # fmt: skip
    try:
        saved = await partners.put_offer(partner_id, offer_id, prepared.body)
    except ApiError as error:
        if not error.refused:
            raise
        return await render_offer_form(request, fields, offer=offer, problem=error.detail, status_code=error.status)
    message = gettext("Offer %(offer)s saved: revision %(revision)s.")
    return redirect(request, f"/portal/offers/{offer_id}", message % {"offer": offer_id, "revision": saved["revision"]})


def statement_routes(api: APIRouter) -> None:
    @api.get("/statements", response_class=HTMLResponse)
    async def statements(
        request: Request, own: OwnPartner, partners: Partners, period: Annotated[str, Query(max_length=7)] = ""
    ) -> HTMLResponse:
        now = console_of(request).clock()
        period = period if re.fullmatch(MONTH_PATTERN, period) else month_of(now)
        statement, problem = await statement_or_refusal(partners, own, period)
        return console_of(request).pages.render(
            request, "portal/statements.html", problem.status if problem else 200, period=period,
            statement=statement, problem=problem, months=recent_months(now),
        )  # fmt: skip

    @api.get("/statements/{period}.csv", response_model=None)
    async def statement_csv(period: Month, own: OwnPartner, partners: Partners) -> Response:
        text = await partners.statement_csv(own, period)
        name = re.sub(r"[^A-Za-z0-9-]", "", f"statement-{own}-{period}")  # a file name the header cannot break out of
        return Response(
            text,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )


def key_routes(api: APIRouter) -> None:
    @api.get("/keys", response_class=HTMLResponse)
    async def keys(request: Request, own: OwnPartner, partners: Partners) -> HTMLResponse:
        return render_keys(request, await partners.partner(own))

    @api.post("/keys/rotate", response_class=HTMLResponse)
    async def rotate(
        request: Request, own: OwnPartner, partners: Partners, seen: Annotated[str, Form(max_length=64)] = ""
    ) -> HTMLResponse:
        partner = await partners.partner(own)
        if fingerprint(partner["keys"]) != seen:
            changed = gettext(
                "The keys changed since this page was shown (was the form sent twice?). No key was made: "
                "check the keys below, and make a new one only if you still need it."
            )
            return render_keys(request, partner, changed, 409)
        try:
            made = await partners.rotate_key(own)
        except ApiError as error:
            if not error.refused:
                raise
            return render_keys(request, partner, error.detail, error.status)
        # Rendered here, never redirected: the secret must not travel in a cookie or a URL.
        return console_of(request).pages.render(request, "portal/new_key.html", made=made)

    @api.post("/keys/{key_id}/revoke", response_model=None)
    async def revoke(request: Request, key_id: KeyId, own: OwnPartner, partners: Partners) -> Response:
        try:
            await partners.revoke_key(own, key_id)
        except ApiError as error:
            if not error.refused:
                raise
            return render_keys(request, await partners.partner(own), error.detail, error.status)
        return redirect(request, "/portal/keys", gettext("Key %(key)s revoked.") % {"key": key_id})


def order_routes(api: APIRouter) -> None:
    @api.get("/orders", response_class=HTMLResponse)
    async def orders(
        request: Request,
        own: OwnPartner,
        partners: Partners,
        redemption: Redemption,
        state: Annotated[str, Query(max_length=30)] = ORDER_STATES[0],
        cursor: Cursor = None,
    ) -> HTMLResponse:
        chosen = state if state in (*ORDER_STATES, ALL) else ORDER_STATES[0]
        page, offers = await asyncio.gather(
            redemption.orders(partner_id=own, state=None if chosen == ALL else chosen, cursor=cursor, limit=PAGE),
            partners.offers(own),
        )
        titles: dict[str, Any] = {o["offer_id"]: o["title"] for o in offers["items"]}
        return console_of(request).pages.render(
            request, "portal/orders.html", items=page["items"], next_cursor=page.get("next_cursor"), state=chosen,
            states=ORDER_STATES, titles=titles, here=f"/portal/orders?state={chosen}",
        )  # fmt: skip
