"""Ops console: partners. Register one with its first contract, version its contracts, see its keys, its
fulfilment key and its statement this month."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from console.clients.base import ApiError
from console.clients.services import PartnersApi, RedemptionApi
from console.pages.ops.dashboard import read
from console.rendering import gettext
from console.web import OpsSession, Partners, Redemption, console_of, redirect

PARTNER_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
Short = Field(default="", max_length=40)


class ContractForm(BaseModel):
    """The contract terms as typed; the partners service checks them (its reasons are shown on the form)."""

    valid_from: str = Short
    currency: str = Field(default="CNY", max_length=3)
    points_per_unit: str = Short
    category_rates: str = Field(default="", max_length=10_000)
    issue_price_minor_per_point: str = Short
    redemption_price_minor_per_point: str = Short
    breakage_rebate_share: str = Short


class PartnerForm(ContractForm):
    partner_id: str = Field(default="", max_length=63)
    name: str = Field(default="", max_length=200)


def category_rates(text: str) -> dict[str, str]:
    """`category = rate`, one a line, as the contract's category_rates."""
    rates: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        category, separator, rate = line.partition("=")
        if not separator or not category.strip() or not rate.strip():
            message = gettext("Category rates, line %(n)s: write category = rate, one a line, e.g. books = 2.")
            raise ApiError("console", 422, message % {"n": number})
        rates[category.strip()] = rate.strip()
    return rates


def contract_terms(form: ContractForm) -> dict[str, Any]:
    """The body of a contract version; amounts and rates stay the decimal text typed, never floats."""
    terms: dict[str, Any] = {
        "valid_from": form.valid_from.strip(),
        "currency": form.currency.strip().upper(),
        "points_per_unit": form.points_per_unit.strip(),
        "category_rates": category_rates(form.category_rates),
        "issue_price_minor_per_point": form.issue_price_minor_per_point.strip(),
        "redemption_price_minor_per_point": form.redemption_price_minor_per_point.strip(),
    }
    if form.breakage_rebate_share.strip():
        terms["breakage_rebate_share"] = form.breakage_rebate_share.strip()
    return terms


def partner_ref(text: str) -> str:
    """The partner id of a path, checked before it goes into a service's URL."""
    if not PARTNER_ID.match(text):
        raise ApiError("console", 404, gettext("This is not a partner id: check the link."))
    return text


async def partner_context(
    request: Request, partners: PartnersApi, redemption: RedemptionApi, partner_id: str
) -> dict[str, Any]:
    """The partner and its contracts; its fulfilment key and this month's statement may be unavailable alone."""
    period = console_of(request).clock().astimezone(UTC).strftime("%Y-%m")
    partner, contracts, statement, fulfilment = await asyncio.gather(
        partners.partner(partner_id),
        partners.contracts(partner_id),
        read(partners.statement(partner_id, period)),
        read(redemption.fulfilment_key(partner_id)),
    )
    return {
        "partner": partner,
        "contracts": contracts,
        "statement": statement,
        "fulfilment": fulfilment,
        "period": period,
        "fulfilment_error": "",
        "grace_seconds": "",
    }


async def fulfilment_refused(
    request: Request,
    partners: PartnersApi,
    redemption: RedemptionApi,
    partner_id: str,
    grace_seconds: str,
    status: int,
    problem: str,
) -> HTMLResponse:
    """The partner's page again, with why its fulfilment key was not issued and the grace period typed."""
    context = await partner_context(request, partners, redemption, partner_id)
    context.update(fulfilment_error=problem, grace_seconds=grace_seconds)
    return console_of(request).pages.render(request, "ops/partners_detail.html", status, **context)


def router() -> APIRouter:
    api = APIRouter()

    @api.get("/partners", response_class=HTMLResponse)
    async def partners_list(request: Request, session: OpsSession, partners: Partners) -> HTMLResponse:
        listed = await partners.partners()
        return console_of(request).pages.render(request, "ops/partners_list.html", partners=listed)

    @api.get("/partners/new", response_class=HTMLResponse)
    async def new_partner(request: Request, session: OpsSession) -> HTMLResponse:
        return console_of(request).pages.render(request, "ops/partners_new.html", form=PartnerForm(), error="")

    @api.post("/partners", response_model=None)
    async def register(
        request: Request, session: OpsSession, partners: Partners, form: Annotated[PartnerForm, Form()]
    ) -> Response:
        pages = console_of(request).pages
        try:
            body = {"partner_id": form.partner_id.strip(), "name": form.name.strip(), "contract": contract_terms(form)}
            credentials = await partners.register(body)
        except ApiError as error:
            if not error.refused:
                raise
            return pages.render(request, "ops/partners_new.html", error.status, form=form, error=error.detail)
        # The secret is shown once, on this answer; a redirect would lose it.
        return pages.render(request, "ops/partners_registered.html", 201, credentials=credentials, name=form.name)

    @api.get("/partners/{partner_id}", response_class=HTMLResponse)
    async def partner(
        request: Request, partner_id: str, session: OpsSession, partners: Partners, redemption: Redemption
    ) -> HTMLResponse:
        context = await partner_context(request, partners, redemption, partner_ref(partner_id))
        return console_of(request).pages.render(request, "ops/partners_detail.html", **context)

    @api.get("/partners/{partner_id}/contracts/new", response_class=HTMLResponse)
    async def new_contract(request: Request, partner_id: str, session: OpsSession, partners: Partners) -> HTMLResponse:
        found = await partners.partner(partner_ref(partner_id))
        return console_of(request).pages.render(
            request, "ops/partners_contract_new.html", partner=found, form=ContractForm(), error=""
        )

    @api.post("/partners/{partner_id}/contracts", response_model=None)
    async def add_contract(
        request: Request,
        partner_id: str,
        session: OpsSession,
        partners: Partners,
        form: Annotated[ContractForm, Form()],
    ) -> Response:
        partner_id = partner_ref(partner_id)
        try:
            added = await partners.add_contract(partner_id, contract_terms(form))
        except ApiError as error:
            if not error.refused:
                raise
            return console_of(request).pages.render(
                request,
                "ops/partners_contract_new.html",
                error.status,
                partner=await partners.partner(partner_id),
                form=form,
                error=error.detail,
            )
        note = gettext("Contract version from %(date)s added.") % {"date": added["valid_from"]}
        return redirect(request, f"/ops/partners/{partner_id}", note)

    @api.post("/partners/{partner_id}/fulfilment-key", response_model=None)
    async def issue_fulfilment_key(
        request: Request,
        partner_id: str,
        session: OpsSession,
        partners: Partners,
        redemption: Redemption,
        grace_seconds: Annotated[str, Form(max_length=12)] = "",
    ) -> Response:
        partner_id = partner_ref(partner_id)
        grace = grace_seconds.strip()
        if grace and not grace.isdigit():
            problem = gettext("The grace period is a whole number of seconds, or empty for the default.")
            return await fulfilment_refused(request, partners, redemption, partner_id, grace_seconds, 422, problem)
        try:
            issued = await redemption.issue_fulfilment_key(partner_id, {"grace_seconds": int(grace)} if grace else None)
        except ApiError as error:
            if not error.refused:
                raise
            return await fulfilment_refused(
                request, partners, redemption, partner_id, grace_seconds, error.status, error.detail
            )
        pages = console_of(request).pages
        return pages.render(request, "ops/partners_fulfilment_issued.html", 201, issued=issued)

    return api
