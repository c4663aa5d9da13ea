"""Settlement statements: partners and their staff read and export their own; ops read all and finalise a month."""

import csv
import io
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.ids import PartnerId
from loyalty_runtime.auth import Principal, TokenAuthority, ops_dependency, principal_dependency
from partners.api.signed import OPS_STAFF_OR_PARTNER, PartnerCall, ops_or_signed_partner
from partners.domain.settlement import (
    GIFTS_NOTE,
    Period,
    Statement,
    StatementLine,
    Totals,
    programme_summary,
    requested_period,
)
from partners.handlers import settlement as handlers
from partners.handlers.authentication import PartnerAuthenticator
from partners.handlers.settlement import ContractSource, Settlement, SettlementStore, TopicEnds

MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
FINALISING = """Store the month's statements for every partner, once; they never change afterwards.

A month is finalised only when the partners service provably holds every ledger transfer posted
before the month's end. With `margin` = SETTLEMENT_MARGIN_SECONDS (default 300 s, longer than any
ledger transaction plus clock skew):

1. the month ended at least `margin` ago;
2. the service has consumed a transfer posted at or after end + margin (the ledger publishes
   through its outbox in commit order, so every transfer posted before the end went out before it);
3. on every partition of `loyalty.ledger-transfers.v1`, it has consumed a transfer posted at or
   after end + margin, or everything the partition holds (its end offset, read from the broker now).

Otherwise the answer is 409 with what is missing. `"force": true` skips 2 and 3 (a quiet ledger never
meets 2), but a month is never finalised before it ended. `make verify` reconciles every finalised
statement with the ledger's own transfers. Answers 201 with the statements when they were stored now,
200 with the stored ones when the month was finalised before (`force` is then ignored).
"""


class SettlementRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period: str = Field(pattern=MONTH_PATTERN, description="The calendar month (UTC) to finalise, e.g. 2026-10.")
    force: bool = Field(default=False, description="Finalise without the watermark's proof (rules 2 and 3).")


class LineOut(BaseModel):
    contract_valid_from: date = Field(description="The contract version whose prices this line applies.")
    currency: str
    issue_price_minor_per_point: Decimal
    redemption_price_minor_per_point: Decimal
    breakage_rebate_share: Decimal
    points_issued: int = Field(description="Points issued (purchases) minus points returned (refunds, clawbacks).")
    issue_amount_minor: int = Field(description="What the partner pays for them.")
    points_redeemed: int = Field(description="Points members redeemed with the partner.")
    redemption_amount_minor: int = Field(description="What the partner is paid for them.")
    breakage_points: int = Field(description="Points the partner issued that expired unused.")
    breakage_rebate_minor: int = Field(description="The share of their issue price refunded to the partner.")
    net_minor: int = Field(description="Positive: the programme pays the partner; negative: the partner pays.")
    points_exchanged: int = Field(
        default=0, description="Points members exchanged out to the partner's programme (its miles)."
    )
    exchange_amount_minor: int = Field(default=0, description="What the partner is paid for them (redemption price).")

    @classmethod
    def of(cls, line: StatementLine) -> "LineOut":
        return cls(
            contract_valid_from=line.contract_valid_from,
            currency=line.currency,
            issue_price_minor_per_point=line.issue_price_minor_per_point,
            redemption_price_minor_per_point=line.redemption_price_minor_per_point,
            breakage_rebate_share=line.breakage_rebate_share,
            points_issued=line.points_issued,
            issue_amount_minor=line.issue_amount_minor,
            points_redeemed=line.points_redeemed,
            redemption_amount_minor=line.redemption_amount_minor,
            breakage_points=line.breakage_points,
            breakage_rebate_minor=line.breakage_rebate_minor,
            net_minor=line.net_minor,
            points_exchanged=line.points_exchanged,
            exchange_amount_minor=line.exchange_amount_minor,
        )


class TotalsOut(BaseModel):
    currency: str
    points_issued: int
    issue_amount_minor: int
    points_redeemed: int
    redemption_amount_minor: int
    breakage_points: int
    breakage_rebate_minor: int
    net_minor: int
    points_exchanged: int = 0
    exchange_amount_minor: int = 0

    @classmethod
    def of(cls, totals: Totals) -> "TotalsOut":
        return cls(
            currency=totals.currency,
            points_issued=totals.points_issued,
            issue_amount_minor=totals.issue_amount_minor,
            points_redeemed=totals.points_redeemed,
            redemption_amount_minor=totals.redemption_amount_minor,
            breakage_points=totals.breakage_points,
            breakage_rebate_minor=totals.breakage_rebate_minor,
            net_minor=totals.net_minor,
            points_exchanged=totals.points_exchanged,
            exchange_amount_minor=totals.exchange_amount_minor,
        )


Status = Literal["final", "provisional"]


class StatementOut(BaseModel):
    partner_id: str
    period: str = Field(description="YYYY-MM, or '<from>/<to>' for a range.")
    period_start: datetime
    period_end: datetime = Field(description="Exclusive.")
    status: Status = Field(description="final: stored and immutable; provisional: computed from what arrived so far.")
    finalised_at: datetime | None
    points_issued: int
    points_redeemed: int
    breakage_points: int
    points_exchanged: int = 0
    lines: list[LineOut] = Field(description="One per contract version in force on a day with points.")
    totals: list[TotalsOut] = Field(description="One per currency.")
    gifts: str = GIFTS_NOTE

    @classmethod
    def of(cls, statement: Statement, settlement: Settlement) -> "StatementOut":
        return cls(
            partner_id=statement.partner_id,
            **_period_fields(settlement),
            points_issued=statement.points_issued,
            points_redeemed=statement.points_redeemed,
            breakage_points=statement.breakage_points,
            points_exchanged=statement.points_exchanged,
            lines=[LineOut.of(line) for line in statement.lines],
            totals=[TotalsOut.of(t) for t in statement.totals],
        )


class ProgrammeOut(BaseModel):
    partners: int
    points_issued: int
    points_redeemed: int
    breakage_points: int
    points_exchanged: int = 0
    gifted_points: int = Field(description="Points members gave each other; no partner money moves for them.")
    totals: list[TotalsOut] = Field(description="Every partner's totals summed, one per currency.")


class StatementsOut(BaseModel):
    period: str
    period_start: datetime
    period_end: datetime
    status: Status
    finalised_at: datetime | None
    finalised_by: str | None
    forced: bool | None
    programme: ProgrammeOut
    statements: list[StatementOut]

    @classmethod
    def of(cls, settlement: Settlement) -> "StatementsOut":
        summary = programme_summary(settlement.period, settlement.statements, settlement.gifted_points)
        run = settlement.run
        return cls(
            **_period_fields(settlement),
            finalised_by=run.finalised_by if run else None,
            forced=run.forced if run else None,
            programme=ProgrammeOut(
                partners=summary.partners,
                points_issued=summary.points_issued,
                points_redeemed=summary.points_redeemed,
                breakage_points=summary.breakage_points,
                points_exchanged=summary.points_exchanged,
                gifted_points=summary.gifted_points,
                totals=[TotalsOut.of(t) for t in summary.totals],
            ),
            statements=[StatementOut.of(s, settlement) for s in settlement.statements],
        )


def _period_fields(settlement: Settlement) -> dict[str, object]:
    period = settlement.period
    return {
        "period": period.label,
        "period_start": period.start,
        "period_end": period.end,
        "status": "final" if settlement.final else "provisional",
        "finalised_at": settlement.run.finalised_at if settlement.run else None,
    }


CSV_COLUMNS = (
    "period",
    "status",
    "partner_id",
    "contract_valid_from",
    "currency",
    "issue_price_minor_per_point",
    "redemption_price_minor_per_point",
    "breakage_rebate_share",
    "points_issued",
    "issue_amount_minor",
    "points_redeemed",
    "redemption_amount_minor",
    "breakage_points",
    "breakage_rebate_minor",
    "net_minor",
    "points_exchanged",
    "exchange_amount_minor",
)


def to_csv(settlement: Settlement) -> str:
    """One row per statement line; amounts are integers in minor units of the row's currency."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    state = "final" if settlement.final else "provisional"
    for statement in settlement.statements:
        for line in statement.lines:
            writer.writerow(
                (
                    settlement.period.label,
                    state,
                    statement.partner_id,
                    line.contract_valid_from.isoformat(),
                    line.currency,
                    line.issue_price_minor_per_point,
                    line.redemption_price_minor_per_point,
                    line.breakage_rebate_share,
                    line.points_issued,
                    line.issue_amount_minor,
                    line.points_redeemed,
                    line.redemption_amount_minor,
                    line.breakage_points,
                    line.breakage_rebate_minor,
                    line.net_minor,
                    line.points_exchanged,
                    line.exchange_amount_minor,
                )
            )
    return out.getvalue()


def csv_answer(text: str, name: str) -> Response:
    """A CSV download; the name loses the characters of a range's label that a file name may not hold."""
    safe = name.replace(":", "").replace("/", "_")
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{safe}.csv"'},
    )


def router(
    store: SettlementStore,
    contracts: ContractSource,
    ends: TopicEnds,
    topic: str,
    authenticator: PartnerAuthenticator,
    tokens: TokenAuthority,
    margin_seconds: float,
    clock: Callable[[], datetime],
) -> APIRouter:
    margin = timedelta(seconds=margin_seconds)
    api = APIRouter(tags=["settlement"])
    current_principal = principal_dependency(lambda: tokens)

    def period_of(
        period: Annotated[
            str | None, Query(pattern=MONTH_PATTERN, description="A calendar month (UTC), e.g. 2026-10.")
        ] = None,
        start: Annotated[AwareDatetime | None, Query(alias="from", description="Range start (inclusive).")] = None,
        end: Annotated[AwareDatetime | None, Query(alias="to", description="Range end (exclusive).")] = None,
    ) -> Period:
        return requested_period(period, start, end)

    Ops = Annotated[Principal, Depends(ops_dependency(current_principal))]
    OpsOrPartner = Annotated[PartnerCall, Depends(ops_or_signed_partner(authenticator, current_principal))]
    Requested = Annotated[Period, Depends(period_of)]
    refused: Mapping[int | str, dict[str, str]] = {
        401: {"description": "No valid bearer token."},
        403: {"description": "The token is not an ops token."},
        409: {"description": "Points on a day without a contract version: they cannot be priced."},
        422: {"description": "No period, or a malformed one."},
    }

    partner_refused: Mapping[int | str, dict[str, str]] = {
        **refused,
        **OPS_STAFF_OR_PARTNER,
        404: {"description": "No such partner."},
    }

    @api.get("/v1/partners/{partner_id}/statements", responses=partner_refused)
    async def partner_statement(
        partner_id: Annotated[PartnerId, Path()], period: Requested, _caller: OpsOrPartner
    ) -> StatementOut:
        """The partner's statement for a month (`period=YYYY-MM`) or a range (`from=...&to=...`).

        The partner itself with a signed request (only the path is signed, not the query), its staff or
        ops with a bearer token. A finalised month answers its stored statement (`status: final`); anything
        else is computed from the transfers received so far (`status: provisional`).
        """
        settlement = await handlers.statement_of(store, contracts, period, partner_id)
        return StatementOut.of(settlement.statements[0], settlement)

    @api.get(
        "/v1/partners/{partner_id}/statements.csv",
        responses={**partner_refused, 200: {"content": {"text/csv": {}}, "description": "One row per statement line."}},
        response_class=Response,
    )
    async def export_partner_statement(
        partner_id: Annotated[PartnerId, Path()], period: Requested, _caller: OpsOrPartner
    ) -> Response:
        """The partner's statement lines as CSV, in the columns of /v1/ops/statements.csv. Who may: as the JSON."""
        settlement = await handlers.statement_of(store, contracts, period, partner_id)
        return csv_answer(to_csv(settlement), f"statement-{partner_id}-{period.label}")

    @api.get("/v1/ops/statements", responses=refused)
    async def all_statements(period: Requested, _ops: Ops) -> StatementsOut:
        """Every partner's statement for a month or a range, and the programme's totals (gifts among them)."""
        return StatementsOut.of(await handlers.statements_of_all(store, contracts, period))

    @api.get(
        "/v1/ops/statements.csv",
        responses={**refused, 200: {"content": {"text/csv": {}}, "description": "One row per statement line."}},
        response_class=Response,
    )
    async def export_statements(period: Requested, _ops: Ops) -> Response:
        """CSV of every statement line: a header row, then amounts as integers in minor units of `currency`."""
        settlement = await handlers.statements_of_all(store, contracts, period)
        return csv_answer(to_csv(settlement), f"statements-{period.label}")

    @api.post(
        "/v1/ops/settlement-runs",
        status_code=status.HTTP_201_CREATED,
        description=FINALISING,
        responses={
            **refused,
            200: {"description": "Finalised before: the stored statements."},
            409: {"description": "The month has not ended, or the watermark does not prove it complete yet."},
            503: {"description": "The broker did not answer with the topic's end offsets."},
        },
    )
    async def finalise(run: SettlementRunIn, response: Response, caller: Ops) -> StatementsOut:
        settlement, created = await handlers.finalise(
            store,
            contracts,
            ends,
            topic,
            requested_period(run.period, None, None),
            clock(),
            margin,
            force=run.force,
            by=caller.subject,
        )
        if not created:
            response.status_code = status.HTTP_200_OK
        return StatementsOut.of(settlement)

    return api
