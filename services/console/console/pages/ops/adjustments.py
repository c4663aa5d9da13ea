"""Ops console: adjust a member's points with a reason and a note; above the threshold a second ops user approves.

The points service decides everything (threshold, four eyes, a debit beyond the balance) and says why it refuses;
this page hides the approve and reject buttons from the one who asked, and shows the service's reason otherwise.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request, Response
from fastapi.responses import HTMLResponse

from console.clients.base import ApiError
from console.clients.services import PointsApi
from console.pages.wallet.home import member_id_or_none, new_id, whole_number
from console.rendering import gettext
from console.sessions import Session
from console.web import OpsSession, Points, console_of, redirect

Json = dict[str, Any]
MAX_POINTS = 10_000_000
REASONS = ("goodwill", "service_recovery", "correction", "fraud_reversal", "migration_fix", "other")
BASE = "/ops/adjustments"


def reason_words() -> dict[str, str]:
    return {
        "goodwill": gettext("Goodwill"),
        "service_recovery": gettext("Service recovery"),
        "correction": gettext("Correction"),
        "fraud_reversal": gettext("Fraud reversal"),
        "migration_fix": gettext("Migration fix"),
        "other": gettext("Other"),
    }


@dataclass
class AdjustmentForm:
    member_id: str = ""
    points: str = ""
    direction: str = "credit"
    reason: str = "goodwill"
    note: str = ""
    adjustment_id: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    problem: str = ""


def adjustment_body(form: AdjustmentForm) -> Json | None:
    """The API's body for the form, or None with `form.errors` saying what to fix."""
    member, points = member_id_or_none(form.member_id), whole_number(form.points, 1, MAX_POINTS)
    if member is None:
        form.errors["member_id"] = gettext("Enter the member's id.")
    if points is None:
        form.errors["points"] = gettext("Enter a whole number of points, from 1 to 10,000,000.")
    if form.direction not in ("credit", "debit"):
        form.errors["direction"] = gettext("Choose whether to add or take away points.")
    if form.reason not in REASONS:
        form.errors["reason"] = gettext("Choose a reason.")
    if not form.note.strip():
        form.errors["note"] = gettext("Say why: the note is required.")
    if form.errors:
        return None
    return {"adjustment_id": form.adjustment_id, "member_id": member, "direction": form.direction, "points": points,
            "reason": form.reason, "note": form.note.strip()}  # fmt: skip


def router() -> APIRouter:
    api = APIRouter()

    @api.get("/adjustments", response_class=HTMLResponse)
    async def adjustments(
        request: Request, session: OpsSession, points: Points, member: Annotated[str, Query(max_length=64)] = ""
    ) -> HTMLResponse:
        form = AdjustmentForm(member_id=member_id_or_none(member) or "", adjustment_id=new_id())
        return await _page(request, session, points, form)

    @api.post("/adjustments", response_class=HTMLResponse)
    async def request_one(
        request: Request, session: OpsSession, points: Points,
        member_id: Annotated[str, Form(max_length=64)] = "",
        amount: Annotated[str, Form(alias="points", max_length=16)] = "",
        direction: Annotated[str, Form(max_length=8)] = "", reason: Annotated[str, Form(max_length=32)] = "",
        note: Annotated[str, Form(max_length=1000)] = "", adjustment_id: Annotated[str, Form(max_length=64)] = "",
    ) -> Response:  # fmt: skip
        form = AdjustmentForm(member_id.strip(), amount.strip(), direction, reason, note,
                              member_id_or_none(adjustment_id) or new_id())  # fmt: skip
        body = adjustment_body(form)
        if body is None:
            return await _page(request, session, points, form, 422)
        try:
            made = await points.request_adjustment(body)
        except ApiError as error:
            if not error.refused:
                raise
            form.problem = error.detail
            return await _page(request, session, points, form, error.status)
        if made.get("status") == "pending":
            return redirect(request, BASE, gettext("Requested. A second ops user must approve it before it posts."))
        return redirect(request, BASE, gettext("Posted to the member's points."))

    @api.post("/adjustments/{adjustment_id}/{decision}", response_class=HTMLResponse)
    async def decide(
        request: Request, session: OpsSession, points: Points,
        adjustment_id: Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$")],
        decision: Annotated[str, Path(pattern=r"^(approve|reject)$")], note: Annotated[str, Form(max_length=1000)] = "",
    ) -> Response:  # fmt: skip
        act = points.approve_adjustment if decision == "approve" else points.reject_adjustment
        try:
            await act(adjustment_id, note.strip() or None)
        except ApiError as error:
            if not error.refused:
                raise
            form = AdjustmentForm(adjustment_id=new_id(), problem=error.detail)
            return await _page(request, session, points, form, error.status)
        done = gettext("Approved and posted.") if decision == "approve" else gettext("Rejected: nothing moved.")
        return redirect(request, BASE, done)

    return api


async def _page(
    request: Request, session: Session, points: PointsApi, form: AdjustmentForm, status_code: int = 200
) -> HTMLResponse:
    pending, recent = await asyncio.gather(
        points.adjustments(status="pending", limit=100), points.adjustments(limit=20)
    )
    me = session.identity.subject
    waiting = [{**a, "mine": a["requested_by"] == me} for a in pending["items"]]
    words = reason_words()
    return console_of(request).pages.render(
        request, "ops/adjustments.html", status_code, form=form, pending=waiting, threshold=pending["threshold"],
        recent=[a for a in recent["items"] if a["status"] != "pending"], reasons=words,
        reason_choices=list(words.items()),
        direction_choices=[("credit", gettext("Add points (credit)")), ("debit", gettext("Take points away (debit)"))],
    )  # fmt: skip
