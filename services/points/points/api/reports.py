"""Activity reports (ops): reach, response, points, budget and incremental spend; JSON or CSV."""

import csv
import io
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel, Field

from loyalty_runtime.auth import Principal, ops_dependency
from points.adapters.segments import SegmentStore
from points.domain.reports import ActivityReport, ChannelResponse, CurrencySpend
from points.handlers.activities import ActivityNotFoundError
from points.handlers.reports import activity_report

ERRORS: dict[type[Exception], int] = {ActivityNotFoundError: status.HTTP_404_NOT_FOUND}

DEFINITIONS = """The activity's figures, read from one consistent snapshot:

- **targeted**: members of the activity's frozen targets (its segment, or every member, when it
  was first scheduled or activated) who take part; **holdout**: members of the segment kept back
  at random (about `holdout_share` of it), who get nothing: the comparison group.
- **responded**: taking-part members with at least one grant from the activity;
  **response_rate** = responded / targeted, 4 decimals (half to even), 0 when nobody is targeted.
  **members_granted**: every member with a grant, targeted or not (for checking).
- **points_granted**: every bonus point the activity granted; **points_reversed**: what refunds of the
  rewarded purchases took back into the budget (in proportion, or a threshold bonus whole when net
  spend fell below the threshold); **points_net** = granted - reversed, what members hold of it.
  **budget_points** as funded; **budget_left**: the posted balance of the ledger account
  `activity:<id>:budget`, what came back included (null before the budget is funded).
- **packet_points**: what the budget put into red packets (ops packets of this activity);
  **packet_points_returned**: what nobody grabbed of them, back in the budget; the difference went to the
  members who grabbed them. They are not grants (no quantity cap, no standing) but the budget bounds them.
- **window** [window_start, window_end): from the earliest window start of the activity's active
  versions to the earliest of now, the latest window end of its active versions, and the moment an
  'ended' version took effect. Null when it was never active.
- **spend**, per currency, of purchases made within the window by the group's members (a purchase
  belongs to the member its identifier is linked to now), net of every refund known now, in
  integer minor units: `*_spend_minor` is the group's total and `*_average_minor` the total over
  *every* member of the group, those who spent nothing included (2 decimals, half to even).
  Groups: targeted, holdout, responders (responders are part of targeted).
- **lift_per_member_minor** = average(targeted) - average(holdout), 2 decimals;
  **incremental_spend_minor** = that lift (unrounded) × targeted, rounded to whole minor units.
  Both are null without a targeted or a holdout member. This is the intention-to-treat comparison:
  members who respond choose to, so their own average (given for context) overstates the effect.
- **channels**: the targeted members the activity messaged (loyalty.member-messages.v1), one row per channel, then
  the holdout (`channel` null, never messaged): **members**; **delivered**, **opened**, **clicked** as the
  messaging systems' callbacks reported them (a click counts as opened and delivered); **responders**: members with
  a grant of the activity or a purchase in its scope (multiplier, spend threshold: its scope; first purchase: its
  partner) within the window, which for the holdout can only be a purchase; **response_rate** = responders /
  members, 4 decimals. Not in the CSV, which has one row per currency.
"""

CSV_COLUMNS = (
    "activity_id",
    "name",
    "kind",
    "generated_at",
    "window_start",
    "window_end",
    "holdout_share",
    "targeted",
    "holdout",
    "responded",
    "response_rate",
    "members_granted",
    "points_granted",
    "points_reversed",
    "points_net",
    "budget_points",
    "budget_left",
    "currency",
    "targeted_spend_minor",
    "targeted_average_minor",
    "holdout_spend_minor",
    "holdout_average_minor",
    "responders_spend_minor",
    "responders_average_minor",
    "lift_per_member_minor",
    "incremental_spend_minor",
    "packet_points",
    "packet_points_returned",
)


class CurrencyOut(BaseModel):
    currency: str
    targeted_spend_minor: int
    targeted_average_minor: Decimal | None
    holdout_spend_minor: int
    holdout_average_minor: Decimal | None
    responders_spend_minor: int
    responders_average_minor: Decimal | None = Field(description="For context only: responders self-select.")
    lift_per_member_minor: Decimal | None
    incremental_spend_minor: int | None

    @classmethod
    def of(cls, spend: CurrencySpend) -> "CurrencyOut":
        return cls(
            currency=spend.currency,
            targeted_spend_minor=spend.targeted.total_minor,
            targeted_average_minor=spend.targeted.average_minor,
            holdout_spend_minor=spend.holdout.total_minor,
            holdout_average_minor=spend.holdout.average_minor,
            responders_spend_minor=spend.responders.total_minor,
            responders_average_minor=spend.responders.average_minor,
            lift_per_member_minor=spend.lift_per_member_minor,
            incremental_spend_minor=spend.incremental_spend_minor,
        )


class ChannelOut(BaseModel):
    channel: str | None = Field(description="The channel the members were messaged on; null: the holdout.")
    members: int
    delivered: int
    opened: int
    clicked: int
    responders: int
    response_rate: Decimal

    @classmethod
    def of(cls, group: ChannelResponse) -> "ChannelOut":
        return cls(
            channel=group.channel, members=group.members, delivered=group.delivered, opened=group.opened,
            clicked=group.clicked, responders=group.responders, response_rate=group.response_rate,
        )  # fmt: skip


class ReportOut(BaseModel):
    activity_id: uuid.UUID
    name: str
    kind: str
    generated_at: datetime
    window_start: datetime | None
    window_end: datetime | None = Field(description="Exclusive.")
    holdout_share: Decimal
    targeted: int
    holdout: int
    responded: int
    response_rate: Decimal
    members_granted: int
    points_granted: int
    points_reversed: int = Field(description="Taken back by refunds of the rewarded purchases, into the budget.")
    points_net: int = Field(description="points_granted - points_reversed.")
    budget_points: int
    budget_left: int | None
    packet_points: int = Field(default=0, description="Put into red packets from the budget.")
    packet_points_returned: int = Field(default=0, description="Of those, what nobody grabbed, back in the budget.")
    spend: list[CurrencyOut] = Field(description="One per currency that any group spent in within the window.")
    channels: list[ChannelOut] = Field(
        default_factory=list, description="Messaged members per channel, then the holdout (channel null)."
    )

    @classmethod
    def of(cls, report: ActivityReport) -> "ReportOut":
        return cls(
            activity_id=report.activity_id,
            name=report.name,
            kind=report.kind,
            generated_at=report.generated_at,
            window_start=report.window.start if report.window else None,
            window_end=report.window.end if report.window else None,
            holdout_share=report.holdout_share,
            targeted=report.targeted,
            holdout=report.holdout,
            responded=report.responded,
            response_rate=report.response_rate,
            members_granted=report.members_granted,
            points_granted=report.points_granted,
            points_reversed=report.points_reversed,
            points_net=report.points_net,
            budget_points=report.budget_points,
            budget_left=report.budget_left,
            packet_points=report.packet_points,
            packet_points_returned=report.packet_points_returned,
            spend=[CurrencyOut.of(s) for s in report.spend],
            channels=[ChannelOut.of(c) for c in report.channels],
        )


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def to_csv(report: ReportOut) -> str:
    """One row per currency (one row with empty spend cells when nobody spent), after a header row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    common = report.model_dump(exclude={"spend", "channels"})
    for spend in report.spend or [None]:
        row = {**common, **(spend.model_dump() if spend else {})}
        writer.writerow([_cell(row.get(column)) for column in CSV_COLUMNS])
    return out.getvalue()


def router(store: Callable[[], SegmentStore], authenticate: Callable[..., Principal]) -> APIRouter:
    api = APIRouter(prefix="/v1/ops/activities", tags=["activity reports"])
    Store = Annotated[SegmentStore, Depends(store)]

    Ops = Annotated[Principal, Depends(ops_dependency(authenticate))]
    refused: Mapping[int | str, dict[str, str]] = {
        401: {"description": "No valid bearer token."},
        403: {"description": "The token is not an ops token."},
        404: {"description": "No such activity."},
    }

    @api.get("/{activity_id}/report", description=DEFINITIONS, responses=refused)
    async def get_report(activity_id: uuid.UUID, _ops: Ops, reports: Store) -> ReportOut:
        return ReportOut.of(await activity_report(reports, activity_id, datetime.now(UTC)))

    @api.get(
        "/{activity_id}/report.csv",
        description=f"The report as CSV: a header row, then one row per currency with every figure.\n\n{DEFINITIONS}",
        responses={**refused, 200: {"content": {"text/csv": {}}, "description": "One row per currency."}},
        response_class=Response,
    )
    async def export_report(activity_id: uuid.UUID, _ops: Ops, reports: Store) -> Response:
        report = ReportOut.of(await activity_report(reports, activity_id, datetime.now(UTC)))
        return Response(
            to_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="activity-{activity_id}-report.csv"'},
        )

    return api
