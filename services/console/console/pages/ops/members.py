"""Ops console: members. Find one, see everything about it, register one, link and unlink its identifiers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse

from console.clients.base import ApiError, Json
from console.clients.services import PointsApi, RedemptionApi
from console.pages.ops.dashboard import read
from console.rendering import gettext
from console.web import OpsSession, Points, Redemption, console_of, redirect

SEARCH_LIMIT = 20
Text = Annotated[str, Form(max_length=200)]
GRANT_REASONS = frozenset(
    f"bonus_{kind}" for kind in ("multiplier", "spend_threshold", "first_purchase", "limited_claim", "referral")
)


def reason_labels() -> dict[str, str]:
    """Why points moved, as ops read it; built per request so that it is in the person's language."""
    return {
        "partner_purchase": gettext("Purchase with a partner"),
        "partner_refund": gettext("Partner refund"),
        "card_purchase": gettext("Card spend"),
        "card_reversal": gettext("Card spend reversed"),
        "clawback": gettext("Clawback (points already spent)"),
        "clawback_repayment": gettext("Owed points repaid"),
        "claim": gettext("Unclaimed points claimed"),
        "expiry": gettext("Expired"),
        "redemption": gettext("Redeemed for a reward"),
        "gift": gettext("Gift"),
        "bonus_multiplier": gettext("Bonus: points multiplier"),
        "bonus_spend_threshold": gettext("Bonus: spend threshold"),
        "bonus_first_purchase": gettext("Bonus: first purchase"),
        "bonus_limited_claim": gettext("Bonus: limited give-away"),
        "bonus_referral": gettext("Bonus: referral"),
        "bonus_reversal": gettext("Bonus reversed"),
        "bonus_clawback": gettext("Bonus clawed back"),
        "activity_funding": gettext("Activity funding"),
        "identifier_linked": gettext("Identifier linked"),
        "identifier_unlinked": gettext("Identifier unlinked"),
    }


def member_uuid(text: str) -> str:
    """The member id of a path, checked before it goes into a service's URL."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise ApiError("console", 404, gettext("This is not a member id: check the link.")) from None


async def search_context(points: PointsApi, q: str) -> dict[str, Any]:
    found = await points.search_members(q=q.strip(), limit=SEARCH_LIMIT)
    return {"q": q, "hits": found["items"]}


async def member_context(
    points: PointsApi, redemption: RedemptionApi, member_id: str, cursor: str | None
) -> dict[str, Any]:
    """Everything about one member; orders and gifts come from elsewhere and may be unavailable alone."""
    member, balance, lots, history, gifts, orders = await asyncio.gather(
        points.member(member_id),
        points.balance(member_id),
        points.lots(member_id, limit=20),
        points.history(member_id, cursor=cursor, limit=30),
        read(points.gifts(member_id, limit=20)),
        read(redemption.orders(member_id=member_id, limit=20)),
    )
    grants = [entry for entry in history["items"] if entry["reason"] in GRANT_REASONS]
    return {
        "member": member,
        "balance": balance,
        "lots": lots["items"],
        "history": history,
        "grants": grants,
        "gifts": gifts,
        "orders": orders,
        "reasons": reason_labels(),
        "cursor": cursor,
    }


def link_body(kind: str, card_token: str, partner_id: str, customer_ref: str) -> dict[str, str]:
    if kind == "card":
        return {"kind": "card", "card_token": card_token.strip()}
    return {"kind": "partner", "partner_id": partner_id.strip(), "customer_ref": customer_ref.strip()}


def unlink_call(points: PointsApi, member_id: str, identifier: str) -> Awaitable[Json]:
    """`card:<token>` or `partner:<partner>:<ref>` as the service's unlink path for it."""
    kind, _, rest = identifier.partition(":")
    if kind == "card" and rest:
        return points.unlink_card(member_id, quote(rest, safe=""))
    partner_id, _, customer_ref = rest.partition(":")
    if kind == "partner" and partner_id and customer_ref:
        return points.unlink_partner_ref(member_id, quote(partner_id, safe=""), quote(customer_ref, safe=""))
    raise ApiError("console", 422, gettext("This is not an identifier: card:<token> or partner:<partner>:<ref>."))


def router() -> APIRouter:
    api = APIRouter()

    @api.get("/members", response_class=HTMLResponse)
    async def members(
        request: Request, session: OpsSession, points: Points, q: Annotated[str, Query(max_length=200)] = ""
    ) -> HTMLResponse:
        context = await search_context(points, q)
        return console_of(request).pages.render(request, "ops/members_list.html", **context)

    @api.get("/members/search", response_class=HTMLResponse)
    async def search(
        request: Request, session: OpsSession, points: Points, q: Annotated[str, Query(max_length=200)] = ""
    ) -> HTMLResponse:
        """The results alone, for htmx's search as the person types."""
        context = await search_context(points, q)
        return console_of(request).pages.fragment(request, "ops/members_results.html", **context)

    @api.get("/members/new", response_class=HTMLResponse)
    async def new_member(request: Request, session: OpsSession) -> HTMLResponse:
        return console_of(request).pages.render(
            request, "ops/members_new.html", member_id="", display_name="", error=""
        )

    @api.post("/members", response_model=None)
    async def create_member(
        request: Request,
        session: OpsSession,
        points: Points,
        display_name: Text = "",
        member_id: Annotated[str, Form(max_length=64)] = "",
    ) -> Response:
        body: dict[str, str] = {"display_name": display_name.strip()}
        if member_id.strip():
            body["member_id"] = member_id.strip()
        try:
            made = await points.create_member(body)
        except ApiError as error:
            if not error.refused:
                raise
            return console_of(request).pages.render(
                request,
                "ops/members_new.html",
                error.status,
                error=error.detail,
                member_id=member_id,
                display_name=display_name,
            )
        note = gettext("Member registered.") if made["created"] else gettext("This member was registered already.")
        return redirect(request, f"/ops/members/{made['member_id']}", note)

    @api.get("/members/{member_id}", response_class=HTMLResponse)
    async def member(
        request: Request,
        member_id: str,
        session: OpsSession,
        points: Points,
        redemption: Redemption,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> HTMLResponse:
        context = await member_context(points, redemption, member_uuid(member_id), cursor)
        return console_of(request).pages.render(request, "ops/members_detail.html", **context)

    @api.get("/members/{member_id}/link", response_class=HTMLResponse)
    async def link_form(request: Request, member_id: str, session: OpsSession, points: Points) -> HTMLResponse:
        member = await points.member(member_uuid(member_id))
        return console_of(request).pages.render(
            request, "ops/members_link.html", member=member, error="", form={"kind": "card"}
        )

    @api.post("/members/{member_id}/identifiers", response_model=None)
    async def link(
        request: Request,
        member_id: str,
        session: OpsSession,
        points: Points,
        kind: Annotated[str, Form()] = "card",
        card_token: Text = "",
        partner_id: Text = "",
        customer_ref: Text = "",
    ) -> Response:
        member_id = member_uuid(member_id)
        try:
            linked = await points.link(link_body(kind, card_token, partner_id, customer_ref), member_id)
        except ApiError as error:
            if not error.refused:
                raise
            form = {"kind": kind, "card_token": card_token, "partner_id": partner_id, "customer_ref": customer_ref}
            return console_of(request).pages.render(
                request,
                "ops/members_link.html",
                error.status,
                error=error.detail,
                member=await points.member(member_id),
                form=form,
            )
        note = gettext("Linked %(identifier)s; %(points)s unclaimed points moved to the member.") % {
            "identifier": linked["identifier"],
            "points": linked["claimed_points"],
        }
        return redirect(request, f"/ops/members/{member_id}", note)

    @api.get("/members/{member_id}/unlink", response_class=HTMLResponse)
    async def unlink_confirm(
        request: Request,
        member_id: str,
        session: OpsSession,
        points: Points,
        identifier: Annotated[str, Query(max_length=300)],
    ) -> HTMLResponse:
        member = await points.member(member_uuid(member_id))
        return console_of(request).pages.render(
            request, "ops/members_unlink.html", member=member, identifier=identifier, error=""
        )

    @api.post("/members/{member_id}/unlink", response_model=None)
    async def unlink(
        request: Request,
        member_id: str,
        session: OpsSession,
        points: Points,
        identifier: Annotated[str, Form(max_length=300)],
    ) -> Response:
        member_id = member_uuid(member_id)
        try:
            await unlink_call(points, member_id, identifier)
        except ApiError as error:
            if not error.refused:
                raise
            return console_of(request).pages.render(
                request,
                "ops/members_unlink.html",
                error.status,
                member=await points.member(member_id),
                identifier=identifier,
                error=error.detail,
            )
        note = gettext("Unlinked %(identifier)s.") % {"identifier": identifier}
        return redirect(request, f"/ops/members/{member_id}", note)

    return api
