"""Ops console: reward activities, from a draft to its report.

Creating one is two steps, so each kind shows only the fields it needs without JavaScript: choose
the kind, then fill in its form. An activity's page offers the lifecycle steps its state allows
(draft -> scheduled -> active -> paused -> ended), new rules and more budget; the points service
has the last word, and its reason is shown when it refuses.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from babel import numbers
from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from console import charts, i18n
from console.clients.base import ApiError
from console.pages.ops.segments import InvalidAmountError, minor_units, present, whole
from console.rendering import gettext
from console.web import OpsSession, Partners, Points, console_of, redirect

KINDS = ("multiplier", "spend_threshold", "first_purchase", "limited_claim", "referral")
SCOPED = ("multiplier", "spend_threshold")  # the kinds whose rules look at some purchases only
# state -> the lifecycle steps the points service allows from it
STEPS: dict[str, tuple[str, ...]] = {
    "draft": ("schedule", "activate"),
    "scheduled": ("activate", "end"),
    "active": ("pause", "end"),
    "paused": ("activate", "end"),
    "ended": (),
}
Short = Annotated[str, Field(max_length=64)]
Moment = Annotated[str, Form(max_length=40)]


class FormProblem(ValueError):
    """Input the console cannot turn into the API's values; the message says what to fix."""


class ActivityForm(BaseModel):
    """The create and revise forms as typed; which rule fields count depends on the kind."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    kind: Short = ""
    name: Annotated[str, Field(max_length=200)] = ""
    budget_points: Short = ""
    quantity_cap: Short = ""
    per_member_cap: Short = ""
    segment_id: Short = ""
    holdout_percent: Short = ""
    multiplier: Short = ""
    threshold: Short = ""
    currency: Short = "CNY"
    bonus_points: Short = ""
    partner: Short = ""
    claim_points: Short = ""
    referrer_points: Short = ""
    referee_points: Short = ""
    scope_channel: Short = ""
    scope_partner: Short = ""
    scope_category: Short = ""
    scope_mcc: Short = ""
    tiers: Annotated[str, Field(max_length=400)] = ""


def tier_codes(text: str) -> list[str] | None:
    """Tier codes typed with commas or spaces between them; None when empty (every member)."""
    codes = [part.lower() for part in re.split(r"[\s,;]+", text) if part]
    return codes or None


def rules_body(kind: str, form: ActivityForm) -> dict[str, Any]:
    """The `rules` object of the API for one kind: only the fields that kind reads."""
    channel = None if form.scope_channel in ("", "any") else form.scope_channel
    scope = present({
        "channel": channel, "partner_id": form.scope_partner or None,
        "category": form.scope_category or None, "mcc": form.scope_mcc or None,
    })  # fmt: skip
    currency = form.currency.upper()
    by_kind: dict[str, dict[str, Any]] = {
        "multiplier": {"multiplier": form.multiplier},
        "spend_threshold": {
            "threshold_minor": _amount(form.threshold, currency),
            "currency": currency,
            "bonus_points": whole(form.bonus_points),
        },
        "first_purchase": {"partner_id": form.partner, "bonus_points": whole(form.bonus_points)},
        "limited_claim": {"claim_points": whole(form.claim_points)},
        "referral": {"referrer_points": whole(form.referrer_points), "referee_points": whole(form.referee_points)},
    }
    rules = present(by_kind[kind])
    if kind in SCOPED and scope:
        rules["scope"] = scope
    tiers = tier_codes(form.tiers)
    if tiers:
        rules["tiers"] = tiers
    return rules


def create_body(form: ActivityForm) -> dict[str, Any]:
    """The body of POST /v1/ops/activities."""
    return present({
        "name": form.name, "kind": form.kind, "rules": rules_body(form.kind, form),
        "budget_points": whole(form.budget_points), "quantity_cap": whole(form.quantity_cap),
        "per_member_cap": whole(form.per_member_cap), "segment_id": form.segment_id or None,
        "holdout_share": holdout_share(form.holdout_percent),
    })  # fmt: skip


def _amount(text: str, currency: str) -> int | None:
    try:
        return minor_units(text, currency)
    except InvalidAmountError as error:
        raise FormProblem(gettext("Threshold: %(problem)s.") % {"problem": error}) from None


def holdout_share(percent: str) -> str | None:
    """'10' per cent as the API's share '0.1', exactly; None when empty (the API's default, no holdout)."""
    if not percent:
        return None
    try:
        share = Decimal(percent) / 100
    except InvalidOperation:
        raise FormProblem(gettext("The holdout must be a number of per cent, from 0 to 50.")) from None
    if not share.is_finite():
        raise FormProblem(gettext("The holdout must be a number of per cent, from 0 to 50."))
    return f"{share.normalize():f}"


def aware(text: str, zone: str) -> str:
    """A date and time typed in the console's time zone (datetime-local), as ISO 8601 with its offset."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise FormProblem(gettext("Give a date and a time, e.g. 2026-11-20 09:00.")) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment.isoformat()


def form_of_rules(kind: str, rules: Mapping[str, Any]) -> ActivityForm:
    """The revise form filled in with an activity's rules as they stand."""
    scope = rules.get("scope") or {}
    currency = str(rules.get("currency") or "CNY")
    threshold = rules.get("threshold_minor")
    major = (
        "" if threshold is None else f"{Decimal(int(threshold)).scaleb(-numbers.get_currency_precision(currency)):f}"
    )
    text = {key: "" if value is None else str(value) for key, value in rules.items() if key != "scope"}
    return ActivityForm(
        kind=kind, multiplier=text.get("multiplier", ""), threshold=major, currency=currency,
        bonus_points=text.get("bonus_points", ""), partner=text.get("partner_id", ""),
        claim_points=text.get("claim_points", ""), referrer_points=text.get("referrer_points", ""),
        referee_points=text.get("referee_points", ""), scope_channel=scope.get("channel", ""),
        scope_partner=scope.get("partner_id", ""), scope_category=scope.get("category", ""),
        scope_mcc=scope.get("mcc", ""), tiers=", ".join(rules.get("tiers") or ()),
    )  # fmt: skip


def window_of(activity: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """When it runs: the window of its versions that ends last, as the points service keeps it."""
    windows = [(v["window_start"], v["window_end"]) for v in activity["versions"] if v.get("window_end")]
    if not windows:
        return None, None
    return max(windows, key=lambda w: datetime.fromisoformat(str(w[1]).replace("Z", "+00:00")))


def budget_of(activity: Mapping[str, Any]) -> dict[str, int]:
    """Budget used (granted net of what refunds took back, and what red packets hold or gave) and left."""
    used = int(activity["points_granted"]) - int(activity["points_reversed"])
    used += int(activity.get("packet_points") or 0) - int(activity.get("packet_points_returned") or 0)
    return {"total": int(activity["budget_points"]), "used": used, "left": int(activity["budget_points"]) - used}


def summarise(activity: Mapping[str, Any]) -> dict[str, Any]:
    start, end = window_of(activity)
    versions = activity["versions"]
    latest = max(versions, key=lambda v: v["version"]) if versions else {"rules": {}}
    return {"a": activity, "start": start, "end": end, "budget": budget_of(activity), "rules": latest["rules"]}


# --- the report's charts --------------------------------------------------------------------------------------


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def money_reader(fmt: i18n.Formats, currency: str) -> Callable[[Decimal | None], str]:
    """Money with a fraction of a minor unit (an average) as the locale writes it, to the whole minor unit."""

    def read(value: Decimal | None) -> str:
        return "—" if value is None else fmt.money(int(value.quantize(Decimal(1), ROUND_HALF_EVEN)), currency)

    return read


def response_chart(report: Mapping[str, Any], fmt: i18n.Formats) -> charts.BarChart:
    rate = Decimal(str(report["response_rate"]))
    return charts.bar_chart(
        [gettext("Response rate")],
        [
            charts.Series(gettext("Targeted"), (rate,), (fmt.percent(rate),)),
            charts.Series(gettext("Holdout"), (None,), (gettext("not offered"),)),
        ],
        tick_label=fmt.percent,
    )


def spend_chart(spend: Mapping[str, Any], fmt: i18n.Formats) -> charts.BarChart:
    read = money_reader(fmt, spend["currency"])
    targeted, holdout = _decimal(spend["targeted_average_minor"]), _decimal(spend["holdout_average_minor"])
    return charts.bar_chart(
        [gettext("Spend per member")],
        [
            charts.Series(gettext("Targeted"), (targeted,), (read(targeted),)),
            charts.Series(gettext("Holdout"), (holdout,), (read(holdout),)),
        ],
        tick_label=read,
    )


def report_context(report: Mapping[str, Any], fmt: i18n.Formats) -> dict[str, Any]:
    spends = []
    for spend in report["spend"]:
        read = money_reader(fmt, spend["currency"])
        spends.append({
            "s": spend, "chart": spend_chart(spend, fmt), "targeted": read(_decimal(spend["targeted_average_minor"])),
            "holdout": read(_decimal(spend["holdout_average_minor"])),
            "responders": read(_decimal(spend["responders_average_minor"])),
            "lift": read(_decimal(spend["lift_per_member_minor"])),
            "incremental": read(_decimal(spend["incremental_spend_minor"])),
        })  # fmt: skip
    return {"report": report, "response": response_chart(report, fmt), "spends": spends}


# --- the pages ------------------------------------------------------------------------------------------------


def router() -> APIRouter:
    api = APIRouter()

    async def choices(partners: Partners, points: Points) -> dict[str, Any]:
        found_partners, found_segments = await partners.partners(), await points.segments()
        return {
            "partner_choices": [(p["partner_id"], p["name"]) for p in found_partners],
            "segment_choices": [(s["segment_id"], s["name"]) for s in found_segments["items"]],
        }

    async def new_page(
        request: Request, partners: Partners, points: Points, form: ActivityForm, problem: str = "", status: int = 200
    ) -> HTMLResponse:
        return console_of(request).pages.render(
            request, "ops/activities_new.html", status_code=status, form=form, kinds=KINDS, problem=problem,
            **(await choices(partners, points) if form.kind in KINDS else {}),
        )  # fmt: skip

    async def detail_page(
        request: Request, points: Points, partners: Partners, activity_id: uuid.UUID, **context: Any
    ) -> HTMLResponse:
        status = context.pop("status_code", 200)
        activity = await points.activity(str(activity_id))
        found = summarise(activity)
        context.setdefault("problem", "")
        context.setdefault("revision", form_of_rules(activity["kind"], found["rules"]))
        context.setdefault("typed", {})
        context.setdefault("share_link_id", str(uuid.uuid4()))  # chosen now: a double submit makes one link
        return console_of(request).pages.render(
            request, "ops/activities_detail.html", status_code=status, **found, steps=STEPS.get(activity["status"], ()),
            zone=console_of(request).pages.timezone,
            partner_choices=[(p["partner_id"], p["name"]) for p in await partners.partners()], **context,
        )  # fmt: skip

    async def step(
        request: Request, points: Points, partners: Partners, activity_id: uuid.UUID, name: str,
        body: Callable[[], dict[str, Any] | None], done: str, **kept: Any,
    ) -> Response:  # fmt: skip
        """One change to the activity; a refusal shows the activity again with the reason and what was typed."""
        try:
            await points.activity_step(str(activity_id), name, body())
        except FormProblem as problem:
            return await detail_page(request, points, partners, activity_id, problem=str(problem), status_code=422,
                                     **kept)  # fmt: skip
        except ApiError as error:
            if not error.refused:
                raise
            return await detail_page(request, points, partners, activity_id, problem=error.detail,
                                     status_code=error.status, **kept)  # fmt: skip
        return redirect(request, f"/ops/activities/{activity_id}", done)

    @api.get("/activities", response_class=HTMLResponse)
    async def activities_list(request: Request, session: OpsSession, points: Points) -> HTMLResponse:
        found = [summarise(a) for a in await points.activities()]
        return console_of(request).pages.render(request, "ops/activities_list.html", activities=found)

    @api.get("/activities/new", response_class=HTMLResponse)
    async def activities_new(
        request: Request, session: OpsSession, points: Points, partners: Partners,
        kind: Annotated[str, Query(max_length=40)] = "",
    ) -> HTMLResponse:  # fmt: skip
        return await new_page(request, partners, points, ActivityForm(kind=kind if kind in KINDS else ""))

    @api.post("/activities/new", response_class=HTMLResponse)
    async def activities_create(
        request: Request, session: OpsSession, points: Points, partners: Partners,
        form: Annotated[ActivityForm, Form()],
    ) -> Response:  # fmt: skip
        if form.kind not in KINDS:
            return redirect(request, "/ops/activities/new")
        try:
            made = await points.create_activity(create_body(form))
        except FormProblem as problem:
            return await new_page(request, partners, points, form, str(problem), 422)
        except ApiError as error:
            if not error.refused:
                raise
            return await new_page(request, partners, points, form, error.detail, error.status)
        return redirect(request, f"/ops/activities/{made['activity_id']}", gettext("Activity created as a draft."))

    @api.get("/activities/{activity_id}", response_class=HTMLResponse)
    async def activity_detail(
        request: Request, activity_id: uuid.UUID, session: OpsSession, points: Points, partners: Partners
    ) -> HTMLResponse:
        return await detail_page(request, points, partners, activity_id)

    @api.post("/activities/{activity_id}/schedule", response_class=HTMLResponse)
    async def schedule(
        request: Request, activity_id: uuid.UUID, session: OpsSession, points: Points, partners: Partners,
        starts_at: Moment = "", ends_at: Moment = "",
    ) -> Response:  # fmt: skip
        zone = console_of(request).pages.timezone
        return await step(
            request, points, partners, activity_id, "schedule",
            lambda: {"starts_at": aware(starts_at, zone), "ends_at": aware(ends_at, zone)},
            gettext("Activity scheduled."), typed={"starts_at": starts_at, "ends_at": ends_at},
        )  # fmt: skip

    @api.post("/activities/{activity_id}/activate", response_class=HTMLResponse)
    async def activate(
        request: Request, activity_id: uuid.UUID, session: OpsSession, points: Points, partners: Partners,
        activate_ends_at: Moment = "",
    ) -> Response:  # fmt: skip
        zone = console_of(request).pages.timezone
        return await step(
            request, points, partners, activity_id, "activate",
            lambda: {"ends_at": aware(activate_ends_at, zone)} if activate_ends_at else {},
            gettext("Activity active."), typed={"activate_ends_at": activate_ends_at},
        )  # fmt: skip

    @api.post("/activities/{activity_id}/pause", response_class=HTMLResponse)
    async def pause(
        request: Request, activity_id: uuid.UUID, session: OpsSession, points: Points, partners: Partners
    ) -> Response:
        return await step(request, points, partners, activity_id, "pause", lambda: None, gettext("Activity paused."))

    @api.post("/activities/{activity_id}/end", response_class=HTMLResponse)
    async def end(
        request: Request, activity_id: uuid.UUID, session: OpsSession, points: Points, partners: Partners
    ) -> Response:
        return await step(request, points, partners, activity_id, "end", lambda: None, gettext("Activity ended."))

    @api.post("/activities/{activity_id}/revise", response_class=HTMLResponse)
    async def revise(
        request: Request, activity_id: uuid.UUID, session: OpsSession, points: Points, partners: Partners,
        form: Annotated[ActivityForm, Form()],
    ) -> Response:  # fmt: skip
        if form.kind not in KINDS:
            return redirect(request, f"/ops/activities/{activity_id}")
        return await step(
            request, points, partners, activity_id, "revisions", lambda: {"rules": rules_body(form.kind, form)},
            gettext("New rules saved; they apply from now on."), revision=form,
        )  # fmt: skip

    @api.post("/activities/{activity_id}/budget", response_class=HTMLResponse)
    async def budget(
        request: Request,
        activity_id: uuid.UUID,
        session: OpsSession,
        points: Points,
        partners: Partners,
        add_points: Annotated[str, Form(max_length=20)] = "",
    ) -> Response:
        return await step(
            request,
            points,
            partners,
            activity_id,
            "budget",
            lambda: present({"add_points": whole(add_points)}),
            gettext("Budget raised."),
            typed={"add_points": add_points},
        )

    @api.get("/activities/{activity_id}/report", response_class=HTMLResponse)
    async def report(request: Request, activity_id: uuid.UUID, session: OpsSession, points: Points) -> HTMLResponse:
        found = await points.report(str(activity_id))
        fmt = console_of(request).pages.formats(request)
        return console_of(request).pages.render(request, "ops/activities_report.html", **report_context(found, fmt))

    @api.get("/activities/{activity_id}/report.csv")
    async def report_csv(activity_id: uuid.UUID, session: OpsSession, points: Points) -> Response:
        return Response(
            await points.report_csv(str(activity_id)),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="activity-{activity_id}-report.csv"'},
        )

    return api
