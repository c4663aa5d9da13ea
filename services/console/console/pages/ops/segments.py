"""Ops console: segments, their rule builder with a live preview, and what each segment holds.

The builder shows the points service's rule language (`{"all": [condition, ...]}`, every condition
must hold) as rows of field, operator and value. Adding, removing or re-fielding a row is a form
post that renders the form again with the rows as typed, so it works without JavaScript; htmx
swaps in just the rows, and posts the rules to the preview as they change.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from babel import numbers
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from console.clients.base import ApiError, Json
from console.clients.services import PointsApi
from console.rendering import gettext
from console.web import OpsSession, Partners, Points, console_of, redirect

# field -> the operators it takes, the first one the default
FIELDS: dict[str, tuple[str, ...]] = {
    "spend": ("at_least",),
    "partners_used": ("at_least",),
    "card_usage": ("at_least",),
    "last_purchase": ("within", "not_within"),
    "member": ("one_of",),
    "tier": ("one_of",),
}
MAX_ROWS = 20  # the rule language's most conditions
MAX_TEXT = 200
MAX_MEMBER_TEXT = 400_000  # 10,000 member ids, the language's most, with separators
DEFAULT_CURRENCY = "CNY"


class RowProblem(ValueError):
    """A row the console cannot turn into a condition; the message names the row and what to fix."""


@dataclass(frozen=True)
class Row:
    """One condition as the person typed it: every value is the text of its input."""

    field: str = "spend"
    op: str = "at_least"
    days: str = ""
    value: str = ""
    currency: str = DEFAULT_CURRENCY
    channel: str = ""
    partner: str = ""
    category: str = ""
    mcc: str = ""

    def settled(self) -> Row:
        """The row with an operator its field takes (the default when the field just changed)."""
        known = FIELDS.get(self.field)
        if known is None:
            return replace(self, field="spend", op="at_least")
        return self if self.op in known else replace(self, op=known[0])


ROW_KEYS = tuple(f.name for f in fields(Row))
ROW_LIMITS = {key: MAX_MEMBER_TEXT if key == "value" else MAX_TEXT for key in ROW_KEYS}


@dataclass(frozen=True)
class Builder:
    """The whole form: the segment's name and its rows."""

    name: str
    rows: tuple[Row, ...]


def read_builder(form: FormData) -> Builder:
    """The form as typed, rows in order; a row is kept whenever its field was sent."""
    rows = []
    for index in range(MAX_ROWS):
        if f"c{index}_field" not in form:
            continue
        values = {key: _text(form, f"c{index}_{key}", ROW_LIMITS[key]) for key in ROW_KEYS}
        rows.append(Row(**values))
    return Builder(name=_text(form, "name", MAX_TEXT), rows=tuple(rows) or (Row(),))


def _text(form: FormData, key: str, limit: int) -> str:
    value = form.get(key)
    text = value.strip() if isinstance(value, str) else ""
    if len(text) > limit:
        raise RowProblem(gettext("A value is longer than the form allows; shorten it and try again."))
    return text


def rules_of(rows: tuple[Row, ...]) -> dict[str, Any]:
    """The rules JSON the points service reads; values it can judge are passed as typed, for its reason."""
    return {"all": [condition_of(number, row) for number, row in enumerate(rows, start=1)]}


def condition_of(number: int, row: Row) -> dict[str, Any]:
    if row.op not in FIELDS.get(row.field, ()):
        raise RowProblem(gettext("Condition %(n)s: choose an operator for the field, then try again.") % {"n": number})
    if row.field == "spend":
        return _spend(number, row)
    if row.field == "partners_used":
        return present({"kind": "partners_used", "window_days": whole(row.days), "min": whole(row.value)})
    if row.field == "card_usage":
        return present({"kind": "card_usage", "window_days": whole(row.days), "min_transactions": whole(row.value)})
    if row.field == "last_purchase" and row.op == "within":
        return present({"kind": "last_activity", "within_days": whole(row.days)})
    if row.field == "last_purchase":
        return present({"kind": "inactive", "for_days": whole(row.days)})
    if row.field == "tier":
        return {"kind": "tier", "codes": [part.lower() for part in re.split(r"[\s,;]+", row.value) if part]}
    return {"kind": "members", "member_ids": [part for part in re.split(r"[\s,;]+", row.value) if part]}


def _spend(number: int, row: Row) -> dict[str, Any]:
    currency = row.currency.upper()
    return present({
        "kind": "spend", "window_days": whole(row.days), "min_minor": _minor(number, row.value, currency),
        "currency": currency, "channel": row.channel or None, "partner_id": row.partner or None,
        "category": row.category or None, "mcc": row.mcc or None,
    })  # fmt: skip


# --- typed text to the API's values (the activity forms use these too) -----------------------------------


def present(values: dict[str, Any]) -> dict[str, Any]:
    """Absent options left out, so the service names what is missing."""
    return {key: value for key, value in values.items() if value is not None and value != ""}


def whole(text: str) -> int | str | None:
    """A whole number when it is one, None when empty; otherwise the text, which the service refuses with its reason."""
    if not text:
        return None
    return int(text) if re.fullmatch(r"-?[0-9]{1,15}", text) else text


class InvalidAmountError(ValueError):
    """An amount that is not a number of the currency's units; the message says why."""


def minor_units(amount: str, currency: str) -> int | None:
    """An amount in major units ("500.00") as integer minor units of the currency, exactly; None when empty."""
    if not amount:
        return None
    try:
        major = Decimal(amount.replace(",", "").replace(" ", ""))
    except InvalidOperation:
        raise InvalidAmountError(gettext("the amount is not a number")) from None
    digits = numbers.get_currency_precision(currency)
    minor = major.scaleb(digits)
    if not minor.is_finite() or minor != minor.to_integral_value():
        message = gettext("%(currency)s amounts have at most %(digits)s decimals")
        raise InvalidAmountError(message % {"currency": currency, "digits": digits})
    return int(minor)


def _minor(number: int, amount: str, currency: str) -> int | None:
    try:
        return minor_units(amount, currency)
    except InvalidAmountError as error:
        raise RowProblem(gettext("Condition %(n)s: %(problem)s.") % {"n": number, "problem": error}) from None


def rows_of(rules: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A stored segment's conditions, for describing them."""
    found = rules.get("all", [])
    return found if isinstance(found, list) else []


KINDS = "spend|partners_used|card_usage|last_activity|inactive|members|tier"
WHERE = re.compile(rf"rules\.all\.(\d+)(?:\.(?:{KINDS}))?(\.)?")


async def latest_publication(points: PointsApi, segment_id: str) -> Json | None:
    """The segment's latest publication for member prices; None if it has none (or points cannot say now)."""
    try:
        published = await points.published_segments()
    except ApiError:
        return None
    return next((p for p in published.get("items") or [] if p["segment_id"] == segment_id), None)


def readable(detail: str) -> str:
    """The service's reason, with `rules.all.0.spend.` read as "condition 1, "."""

    def named(match: re.Match[str]) -> str:
        condition = gettext("condition %(n)s") % {"n": int(match.group(1)) + 1}
        return f"{condition}, " if match.group(2) else condition

    return WHERE.sub(named, detail)


def apply_action(builder: Builder, action: str) -> Builder:
    """Add a row, remove one, or settle every row's operator to its field."""
    rows = [row.settled() for row in builder.rows]
    if action == "add" and len(rows) < MAX_ROWS:
        rows.append(Row())
    elif action.startswith("remove-") and action[7:].isdigit() and len(rows) > 1:
        index = int(action[7:])
        rows = rows[:index] + rows[index + 1 :]
    return replace(builder, rows=tuple(rows))


def router() -> APIRouter:
    api = APIRouter()

    async def builder_page(request: Request, partners: Partners, builder: Builder, **context: Any) -> HTMLResponse:
        status = context.pop("status_code", 200)
        context.setdefault("preview", None)
        context.setdefault("problem", "")
        choices = await partners.partners()
        return console_of(request).pages.render(
            request, "ops/segments_new.html", status_code=status, builder=builder, field_ops=FIELDS,
            partner_choices=[(p["partner_id"], p["name"]) for p in choices], max_rows=MAX_ROWS, **context,
        )  # fmt: skip

    @api.get("/segments", response_class=HTMLResponse)
    async def segments_list(request: Request, session: OpsSession, points: Points) -> HTMLResponse:
        page = await points.segments()
        return console_of(request).pages.render(
            request, "ops/segments_list.html", segments=page["items"], more=bool(page.get("next_cursor"))
        )

    @api.get("/segments/new", response_class=HTMLResponse)
    async def segments_new(request: Request, session: OpsSession, partners: Partners) -> HTMLResponse:
        return await builder_page(request, partners, Builder(name="", rows=(Row(),)))

    @api.post("/segments/new", response_class=HTMLResponse)
    async def segments_build(request: Request, session: OpsSession, points: Points, partners: Partners) -> Any:
        form = await request.form()
        action = _text(form, "action", MAX_TEXT) or "save"
        try:
            builder = read_builder(form)
        except RowProblem as problem:
            return await builder_page(request, partners, Builder("", (Row(),)), problem=str(problem), status_code=422)
        if action not in ("preview", "save"):
            return await builder_page(request, partners, apply_action(builder, action))
        try:
            rules = rules_of(builder.rows)
            if action == "preview":
                preview = await points.preview_segment({"rules": rules})
                return await builder_page(request, partners, builder, preview=preview)
            saved = await points.create_segment({"name": builder.name, "rules": rules})
        except RowProblem as problem:
            return await builder_page(request, partners, builder, problem=str(problem), status_code=422)
        except ApiError as error:
            if not error.refused:
                raise
            return await builder_page(
                request, partners, builder, problem=readable(error.detail), status_code=error.status
            )
        return redirect(request, f"/ops/segments/{saved['segment_id']}", gettext("Segment saved."))

    @api.post("/segments/preview", response_class=HTMLResponse)
    async def segments_preview(request: Request, session: OpsSession, points: Points) -> HTMLResponse:
        """The htmx preview: always 200, so htmx swaps in the count or the reason there is none."""
        preview, problem = None, ""
        try:
            builder = apply_action(read_builder(await request.form()), "refresh")  # the operators the rows will show
            preview = await points.preview_segment({"rules": rules_of(builder.rows)})
        except RowProblem as refused:
            problem = str(refused)
        except ApiError as error:
            if not error.refused:
                raise
            problem = readable(error.detail)
        return console_of(request).pages.fragment(
            request, "ops/segments_preview.html", preview=preview, preview_problem=problem
        )

    @api.get("/segments/{segment_id}", response_class=HTMLResponse)
    async def segment_detail(
        request: Request, segment_id: uuid.UUID, session: OpsSession, points: Points
    ) -> HTMLResponse:
        segment, size, latest = await asyncio.gather(
            points.segment(str(segment_id)), points.preview_segment({"segment_id": str(segment_id)}),
            latest_publication(points, str(segment_id)),
        )  # fmt: skip
        return console_of(request).pages.render(
            request, "ops/segments_detail.html", segment=segment, conditions=rows_of(segment["rules"]), preview=size,
            publication=latest,
        )  # fmt: skip

    @api.post("/segments/{segment_id}/publish", response_model=None)
    async def publish_segment(request: Request, segment_id: uuid.UUID, session: OpsSession, points: Points) -> Response:
        made = await points.publish_segment(str(segment_id))
        done = gettext("Published: %(members)s members, for partners' segment prices.")
        return redirect(request, f"/ops/segments/{segment_id}", done % {"members": made["members"]})

    return api
