"""Ops console: the programme's tier set as a form, members per tier, and reviews on demand.

The form shows the tier set as it stands (or an empty one) with rows for up to five tiers, lowest first; empty
rows are left out. Saving puts the whole set: the points service makes it a new version, or answers why not (the
thresholds, a code members still hold), and the form is shown again as typed with that reason. Putting the same
set again changes nothing, so a double submit is harmless.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from console.clients.base import ApiError
from console.clients.services import PointsApi
from console.pages.ops.segments import present, whole
from console.rendering import gettext
from console.web import OpsSession, Points, console_of, redirect

ROWS = 5
MAX_ROWS = 10  # the points service's most tiers
MAX_TEXT = 200
MAX_BENEFITS_TEXT = 2_200
QUALIFICATIONS = ("rolling_12_months", "calendar_year")
POLICIES = ("one_tier_down", "to_qualified")


@dataclass(frozen=True)
class TierRow:
    """One tier as typed: every value is the text of its input (benefits: one per line)."""

    code: str = ""
    name: str = ""
    threshold: str = ""
    multiplier: str = "1"
    benefits: str = ""

    @property
    def empty(self) -> bool:
        return not (self.code or self.name or self.threshold or self.benefits)


@dataclass(frozen=True)
class TierForm:
    qualification: str = "rolling_12_months"
    grace_days: str = "30"
    policy: str = "one_tier_down"
    rows: tuple[TierRow, ...] = field(default_factory=tuple)

    def padded(self) -> TierForm:
        """With empty rows up to five (and one more for a set that has five or more, up to ten)."""
        count = min(max(ROWS, len([r for r in self.rows if not r.empty]) + 1), MAX_ROWS)
        kept = [r for r in self.rows if not r.empty][:count]
        return TierForm(self.qualification, self.grace_days, self.policy,
                        tuple(kept + [TierRow()] * (count - len(kept))))  # fmt: skip


def form_of(tier_set: Mapping[str, Any] | None) -> TierForm:
    """The form filled in with the tier set as it stands."""
    if tier_set is None:
        return TierForm().padded()
    rows = tuple(
        TierRow(t["code"], t["name"], str(t["threshold_points"]), str(t["earn_multiplier"]), "\n".join(t["benefits"]))
        for t in tier_set["tiers"]
    )
    return TierForm(tier_set["qualification"], str(tier_set["grace_days"]), tier_set["downgrade_policy"], rows).padded()


def read_form(form: FormData) -> TierForm:
    def text(key: str, limit: int = MAX_TEXT) -> str:
        value = form.get(key)
        return value.strip()[:limit] if isinstance(value, str) else ""

    rows = tuple(
        TierRow(text(f"t{i}_code"), text(f"t{i}_name"), text(f"t{i}_threshold"), text(f"t{i}_multiplier") or "1",
                text(f"t{i}_benefits", MAX_BENEFITS_TEXT))
        for i in range(MAX_ROWS) if f"t{i}_code" in form
    )  # fmt: skip
    return TierForm(text("qualification"), text("grace_days"), text("downgrade_policy"), rows)


def body_of(form: TierForm) -> dict[str, Any]:
    """The body of PUT /v1/ops/tier-set; values are passed as typed where the service explains a refusal best."""
    tiers = [tier_of(row) for row in form.rows if not row.empty]
    return {"qualification": form.qualification, "grace_days": whole(form.grace_days),
            "downgrade_policy": form.policy, "tiers": tiers}  # fmt: skip


def tier_of(row: TierRow) -> dict[str, Any]:
    benefits = [line.strip() for line in row.benefits.splitlines() if line.strip()]
    return present({"code": row.code, "name": row.name, "threshold_points": whole(row.threshold),
                    "earn_multiplier": row.multiplier, "benefits": benefits})  # fmt: skip


def router() -> APIRouter:
    api = APIRouter()

    async def page(
        request: Request, points: PointsApi, form: TierForm | None = None, problem: str = "", status: int = 200
    ) -> HTMLResponse:
        tier_set, summary = await asyncio.gather(_or_none(points.tier_set()), _or_none(points.tier_summary()))
        return console_of(request).pages.render(
            request, "ops/tiers.html", status, tier_set=tier_set, summary=summary,
            form=form or form_of(tier_set), qualifications=QUALIFICATIONS, policies=POLICIES, problem=problem,
        )  # fmt: skip

    @api.get("/tiers", response_class=HTMLResponse)
    async def tiers(request: Request, session: OpsSession, points: Points) -> HTMLResponse:
        return await page(request, points)

    @api.post("/tiers", response_class=HTMLResponse)
    async def put_tiers(request: Request, session: OpsSession, points: Points) -> Response:
        form = read_form(await request.form())
        try:
            made = await points.put_tier_set(body_of(form))
        except ApiError as error:
            if not error.refused:
                raise
            return await page(request, points, form.padded(), error.detail, error.status)
        return redirect(request, "/ops/tiers", gettext("Tier set saved: version %(version)s.") % {
            "version": made["version"]})  # fmt: skip

    @api.post("/tiers/reviews", response_class=HTMLResponse)
    async def run_reviews(request: Request, session: OpsSession, points: Points) -> Response:
        ran = await points.run_tier_reviews()
        note = gettext(
            "Reviews done: %(reviewed)s reviewed, %(confirmed)s kept, %(downgraded)s down, %(upgraded)s up."
        ) % {k: ran[k] for k in ("reviewed", "confirmed", "downgraded", "upgraded")}
        return redirect(request, "/ops/tiers", note)

    return api


async def _or_none(call: Any) -> Any:
    """The answer, or None when the programme has no tier set yet (404)."""
    try:
        return await call
    except ApiError as error:
        if error.status != 404:
            raise
        return None
