"""Ops console: the velocity rules (a form) and the queue of earnings they held for review (release or reject).

The points service decides everything: which earnings are held, and that a review is decided once. A decision
that came second (another ops user, or a refund that cancelled it) shows the service's reason on the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request, Response
from fastapi.responses import HTMLResponse

from console.clients.base import ApiError
from console.clients.services import PointsApi
from console.pages.wallet.home import whole_number
from console.rendering import gettext
from console.web import OpsSession, Points, console_of, redirect

Json = dict[str, Any]
STATUSES = ("open", "released", "rejected", "cancelled")
SCOPES = ("member", "identifier", "partner")
LIMITS = ("points_per_day", "purchases_per_hour")
COUNTS = ("new_member_days", "new_member_points", "unusual_min_purchases", "unusual_days", "gifts_per_day",
          "redemptions_per_day")  # fmt: skip
MAX = 10**12


def rule_words() -> dict[str, str]:
    return {
        "member_points_per_day": gettext("Member: points per day"),
        "member_purchases_per_hour": gettext("Member: purchases per hour"),
        "identifier_points_per_day": gettext("Card or customer: points per day"),
        "identifier_purchases_per_hour": gettext("Card or customer: purchases per hour"),
        "partner_points_per_day": gettext("Partner: points per day"),
        "partner_purchases_per_hour": gettext("Partner: purchases per hour"),
        "new_member_cool_off": gettext("New member cool-off"),
        "unusual_amount": gettext("Amount far above the usual"),
    }


def status_words() -> dict[str, str]:
    return {"open": gettext("Open"), "released": gettext("Released"), "rejected": gettext("Rejected"),
            "cancelled": gettext("Cancelled by a refund")}  # fmt: skip


@dataclass
class RulesForm:
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    problem: str = ""


def form_of(rules: Json) -> RulesForm:
    """The form filled with the rules in force (an empty field: the rule is off)."""
    values = {f"{s}_{k}": _text(rules.get(s, {}).get(k)) for s in SCOPES for k in LIMITS}
    values |= {k: _text(rules.get(k)) for k in (*COUNTS, "unusual_factor")}
    return RulesForm(values)


def _text(value: object) -> str:
    return "" if value is None else str(value)


def rules_body(form: RulesForm) -> Json | None:
    """The API's body for the form, or None with `form.errors` saying what to fix."""
    body: Json = {s: {k: _count(form, f"{s}_{k}") for k in LIMITS} for s in SCOPES}
    body |= {k: _count(form, k) for k in COUNTS}
    for key, default in (("unusual_min_purchases", 5), ("unusual_days", 90)):
        body[key] = default if body[key] is None else body[key]
    factor = form.values.get("unusual_factor", "").strip()
    body["unusual_factor"] = None
    if factor:
        try:
            body["unusual_factor"] = str(Decimal(factor))
            if Decimal(factor) <= 1:
                raise InvalidOperation
        except InvalidOperation:
            form.errors["unusual_factor"] = gettext("Enter a number above 1, such as 3.5.")
    return None if form.errors else body


def _count(form: RulesForm, key: str) -> int | None:
    text = form.values.get(key, "").strip()
    if not text:
        return None
    value = whole_number(text, 0, MAX)
    if value is None:
        form.errors[key] = gettext("Enter a whole number, or leave it empty to turn the rule off.")
    return value


def router() -> APIRouter:
    api = APIRouter()

    @api.get("/reviews", response_class=HTMLResponse)
    async def reviews(
        request: Request, _session: OpsSession, points: Points,
        status: Annotated[str, Query(pattern=r"^(open|released|rejected|cancelled)$")] = "open",
    ) -> HTMLResponse:  # fmt: skip
        return await _queue(request, points, status)

    @api.post("/reviews/{review_id}/{decision}", response_class=HTMLResponse)
    async def decide(
        request: Request, _session: OpsSession, points: Points,
        review_id: Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$")],
        decision: Annotated[str, Path(pattern=r"^(release|reject)$")], note: Annotated[str, Form(max_length=500)] = "",
    ) -> Response:  # fmt: skip
        try:
            made = await points.decide_review(review_id, decision, note.strip() or None)
        except ApiError as error:
            if not error.refused:
                raise
            return await _queue(request, points, "open", error.detail, error.status)
        if decision == "release":
            done = gettext("Released: %(points)s points credited to the member.") % {"points": f"{made['points']:,}"}
        else:
            done = gettext("Rejected: %(points)s points went back to their issuer.") % {"points": f"{made['points']:,}"}
        return redirect(request, "/ops/reviews", done)

    @api.get("/velocity-rules", response_class=HTMLResponse)
    async def rules(request: Request, _session: OpsSession, points: Points) -> HTMLResponse:
        current = await points.velocity_rules()
        return _rules_page(request, form_of(current), current)

    @api.post("/velocity-rules", response_class=HTMLResponse)
    async def put_rules(request: Request, _session: OpsSession, points: Points) -> Response:
        sent = await request.form()
        names = [f"{s}_{k}" for s in SCOPES for k in LIMITS] + [*COUNTS, "unusual_factor"]
        form = RulesForm({n: str(sent.get(n, ""))[:20] for n in names})
        body = rules_body(form)
        if body is None:
            return _rules_page(request, form, await points.velocity_rules(), 422)
        try:
            made = await points.put_velocity_rules(body)
        except ApiError as error:
            if not error.refused:
                raise
            form.problem = error.detail
            return _rules_page(request, form, await points.velocity_rules(), error.status)
        saved = gettext("Saved as version %(version)s.") % {"version": made["version"]}
        return redirect(request, "/ops/velocity-rules", saved)

    return api


async def _queue(
    request: Request, points: PointsApi, status: str, problem: str = "", status_code: int = 200
) -> HTMLResponse:  # fmt: skip
    found = await points.reviews(status=status, limit=100)
    words = status_words()
    return console_of(request).pages.render(
        request, "ops/reviews.html", status_code, items=found["items"], status=status, rules=rule_words(),
        statuses=[(s, words[s]) for s in STATUSES], status_words=words, problem=problem,
    )  # fmt: skip


def _rules_page(request: Request, form: RulesForm, current: Json, status_code: int = 200) -> HTMLResponse:
    scopes = [("member", gettext("Each member")), ("identifier", gettext("Each card or partner customer")),
              ("partner", gettext("Each partner (all its customers)"))]  # fmt: skip
    return console_of(request).pages.render(
        request, "ops/velocity_rules.html", status_code, form=form, current=current, scopes=scopes
    )
