"""Share links (members and staff make them, anyone opens them) and the attribution report (ops), JSON or CSV."""

import csv
import io
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from contracts.events.attribution import AttributionId, Channel, ShareCode
from contracts.ids import ExternalRef, PartnerId
from loyalty_runtime.auth import Principal, Role, TokenAuthority, TokenError, ops_dependency
from points.adapters.attribution_store import AttributionStore, StoredLink
from points.api.spreadsheets import safe_cell
from points.domain.attribution import (
    MAX_WINDOW_DAYS,
    MIN_WINDOW_DAYS,
    Attribution,
    AttributionReport,
    AttributionRow,
    AttributionRuleError,
    Grouping,
    Sharer,
    ShareTarget,
    report_period,
)
from points.handlers import attribution as handle
from points.handlers.attribution import LinkIdReusedError, ShareLinkNotFoundError

ERRORS: dict[type[Exception], int] = {
    AttributionRuleError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    LinkIdReusedError: status.HTTP_409_CONFLICT,
    ShareLinkNotFoundError: status.HTTP_404_NOT_FOUND,
}
"""The statuses of the handlers' refusals, mapped in app.py."""

Code = Annotated[str, Path(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
_STAFF_ID: TypeAdapter[str] = TypeAdapter(AttributionId)


class AttributionIn(BaseModel):
    """Where a purchase or claim came from; every field optional (contracts.events.attribution)."""

    model_config = ConfigDict(extra="forbid")

    channel: Channel | None = None
    branch_id: AttributionId | None = None
    staff_id: AttributionId | None = None
    campaign_ref: AttributionId | None = None
    share_code: ShareCode | None = None

    def to_domain(self) -> Attribution:
        return Attribution(**self.model_dump())


class TargetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["offer", "activity"]
    activity_id: uuid.UUID | None = Field(default=None, description="An activity target: the activity.")
    partner_id: PartnerId | None = Field(default=None, description="An offer target: its partner.")
    offer_id: ExternalRef | None = Field(default=None, description="An offer target: the partner's offer id.")

    def to_domain(self) -> ShareTarget:
        return ShareTarget(self.kind, self.activity_id, self.partner_id, self.offer_id)


class ShareLinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    link_id: uuid.UUID = Field(default_factory=uuid.uuid4, description="Send the same id again to retry safely.")
    target: TargetIn
    channel: Channel | None = Field(default=None, description="Where the link will be shared.")
    campaign_ref: AttributionId | None = None
    window_days: int = Field(
        default=7, ge=MIN_WINDOW_DAYS, le=MAX_WINDOW_DAYS, description="How long after an open a response counts."
    )
    branch_id: AttributionId | None = Field(default=None, description="Staff only: the branch the link is for.")


class TargetOut(BaseModel):
    kind: str
    activity_id: uuid.UUID | None
    activity_name: str | None
    partner_id: str | None
    offer_id: str | None


class PublicLinkOut(BaseModel):
    """What anybody with the code may read: the target, nothing about who shared it."""

    code: str
    target: TargetOut
    window_days: int


class ShareLinkOut(PublicLinkOut):
    link_id: uuid.UUID
    url: str
    channel: str | None
    campaign_ref: str | None
    member_id: uuid.UUID | None = Field(description="The member who shared it, for a member's link.")
    staff_id: str | None
    branch_id: str | None
    created_at: datetime
    opens: int = Field(default=0, description="Opens kept (a member's once a day; a flood beyond the limit is not).")
    openers: int = Field(default=0, description="Signed-in members who opened it.")
    carried: int = Field(default=0, description="Purchases and claims whose attribution names its code.")


class ShareLinksOut(BaseModel):
    items: list[ShareLinkOut]


class OpenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    open_id: uuid.UUID | None = Field(
        default=None, description="A signed-in member: the anonymous open it made just before signing in, to claim."
    )


class OpenOut(BaseModel):
    open_id: uuid.UUID | None = Field(description="The open kept for this visit (null: not kept, too many at once).")
    target: TargetOut


class SpendOut(BaseModel):
    currency: str
    spend_minor: int
    incremental_spend_minor: int | None = Field(description="Against a holdout: channel rows of messages only.")


class RowOut(BaseModel):
    key: str | None = Field(description="The channel, branch or staff id; null: touches that name none.")
    reach: int
    opens: int
    responders: int
    response_rate: Decimal
    points_granted: int
    spend: list[SpendOut]

    @classmethod
    def of(cls, row: AttributionRow) -> "RowOut":
        return cls(
            key=row.key, reach=row.reach, opens=row.opens, responders=row.responders, response_rate=row.response_rate,
            points_granted=row.points_granted,
            spend=[SpendOut(currency=s.currency, spend_minor=s.spend_minor,
                            incremental_spend_minor=s.incremental_spend_minor)
                   for s in sorted(row.spend.values(), key=lambda s: s.currency)],
        )  # fmt: skip


class ReportOut(BaseModel):
    group: str
    from_: date = Field(alias="from", serialization_alias="from")
    to: date
    generated_at: datetime
    rows: list[RowOut]
    leaderboard: list[RowOut] = Field(description="The first 10 named rows by responders.")

    model_config = ConfigDict(populate_by_name=True)

    @classmethod
    def of(cls, report: AttributionReport) -> "ReportOut":
        return cls(
            group=report.grouping.value, from_=report.period.first_day, to=report.period.last_day,
            generated_at=report.generated_at, rows=[RowOut.of(r) for r in report.rows],
            leaderboard=[RowOut.of(r) for r in report.leaderboard],
        )  # fmt: skip


DEFINITIONS = """Who responded after each touch, by channel, branch or staff member (points/domain/attribution.py):

- The period: programme days `from` to `to`, both included (default: the last 30 days). A **touch** in it is a
  message sent (loyalty.member-messages.v1), a signed-in member's first open of a share link, or a purchase or
  claim carrying an attribution. A message belongs to its channel and to no branch or staff member; a link to its
  channel, branch and staff member; an attributed purchase or claim to its own fields, else its link's.
- **reach**: members touched; **opens**: messages opened, plus link opens kept (anonymous ones too);
  **responders**: members who responded within the touch's window (a message: until the activity's planned end; a
  link: `window_days` after the first open), by a grant of the activity, a purchase in its scope, or (an offer) a
  purchase or redemption at its partner; an attributed purchase or claim is a response itself.
  **response_rate** = responders / reach, 4 decimals (half to even).
- **points_granted**: the grants counted as responses (each once per row) and those of attributed purchases and
  claims. **spend**: net spend (after refunds) of the purchases counted as responses, per currency.
- **incremental_spend_minor**, channel rows only: per activity with a holdout messaged in the period, the
  messaged members on the channel against its holdout within its measurement window (the activity report's
  intention-to-treat lift × members), summed; null elsewhere (links and branches have no holdout).
- A response counts for every touch whose window holds it: rows may share a responder.
"""

CSV_COLUMNS = ("group", "from", "to", "key", "reach", "opens", "responders", "response_rate", "points_granted",
               "currency", "spend_minor", "incremental_spend_minor")  # fmt: skip


def to_csv(report: ReportOut) -> str:
    """A header row, then one row per group and currency (one row with empty spend cells when nothing was spent)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in report.rows:
        common = [report.group, report.from_.isoformat(), report.to.isoformat(), row.key, row.reach, row.opens,
                  row.responders, row.response_rate, row.points_granted]  # fmt: skip
        for spend in row.spend or [None]:
            extra = [spend.currency, spend.spend_minor, spend.incremental_spend_minor] if spend else [None] * 3
            writer.writerow([safe_cell(v) for v in [*common, *extra]])
    return out.getvalue()


def link_out(stored: StoredLink, console_url: str) -> ShareLinkOut:
    link = stored.link
    t = link.target
    return ShareLinkOut(
        code=link.code, url=f"{console_url.rstrip('/')}/s/{link.code}", link_id=link.link_id,
        target=TargetOut(kind=t.kind, activity_id=t.activity_id, activity_name=stored.activity_name,
                         partner_id=t.partner_id, offer_id=t.offer_id),
        window_days=link.window_days, channel=link.channel, campaign_ref=link.campaign_ref,
        member_id=link.sharer.member_id, staff_id=link.sharer.staff_id, branch_id=link.sharer.branch_id,
        created_at=link.created_at, opens=stored.opens, openers=stored.openers, carried=stored.carried,
    )  # fmt: skip


def public_target(stored: StoredLink) -> TargetOut:
    t = stored.link.target
    return TargetOut(kind=t.kind, activity_id=t.activity_id, activity_name=stored.activity_name,
                     partner_id=t.partner_id, offer_id=t.offer_id)  # fmt: skip


def member_of(caller: Principal) -> uuid.UUID:
    try:
        return uuid.UUID(caller.subject)
    except ValueError:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this member token names no member id") from None


def sharer_of(caller: Principal, branch_id: str | None) -> Sharer:
    """A member shares for itself; ops staff as themselves (their token's subject), at a branch they may name."""
    if caller.role is Role.MEMBER:
        return Sharer(caller.subject, member_id=member_of(caller), branch_id=branch_id)
    if caller.role is Role.OPS:
        try:
            staff = _STAFF_ID.validate_python(caller.subject)
        except ValidationError:
            raise AttributionRuleError(
                f"your staff id {caller.subject[:64]!r} cannot name a link: it must be printable ASCII without spaces, "
                "starting with a letter or digit"
            ) from None
        return Sharer(caller.subject, staff_id=staff, branch_id=branch_id)
    raise HTTPException(status.HTTP_403_FORBIDDEN, "share links are made by members and by ops staff")


def router(
    store: Callable[[], AttributionStore],
    authenticate: Callable[..., Principal],
    authority: Callable[[], TokenAuthority],
    clock: Callable[[], datetime],
    zone: ZoneInfo,
    console_url: str,
    opens_per_minute: int,
) -> APIRouter:
    api = APIRouter(tags=["attribution"])
    Caller = Annotated[Principal, Depends(authenticate)]
    Ops = Annotated[Principal, Depends(ops_dependency(authenticate))]
    Store = Annotated[AttributionStore, Depends(store)]
    optional_bearer = HTTPBearer(auto_error=False)

    def signed_in_member(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(optional_bearer)],
    ) -> uuid.UUID | None:
        """The member whose token came with an open, if any; a bad token is refused rather than ignored."""
        if credentials is None:
            return None
        try:
            principal = authority().verify(credentials.credentials)
        except TokenError as error:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"invalid bearer token: {error}") from error
        return member_of(principal) if principal.role is Role.MEMBER else None

    Visitor = Annotated[uuid.UUID | None, Depends(signed_in_member)]

    def _period(
        from_: Annotated[
            date | None, Query(alias="from", description="First programme day (default: 30 days ago).")
        ] = None,
        to: Annotated[date | None, Query(description="Last programme day, included (default: today).")] = None,
    ) -> tuple[date, date]:
        today = clock().astimezone(zone).date()
        last = to or today
        return (from_ or last - timedelta(days=29), last)

    Period = Annotated[tuple[date, date], Depends(_period)]

    @api.post(
        "/v1/share-links", status_code=status.HTTP_201_CREATED, response_model=ShareLinkOut,
        responses={200: {"description": "The same link_id and request again: the link made the first time."},
                   404: {"description": "No such activity."},
                   409: {"description": "The link_id names another link."},
                   422: {"description": "Refused with the reason (window, target, a member naming a branch)."}},
    )  # fmt: skip
    async def create(body: ShareLinkIn, caller: Caller, links: Store, response: Response) -> ShareLinkOut:
        """A link for an offer or an activity, made by a member (for itself) or by ops staff (as themselves, at the
        branch they name); its code is unguessable. Opens and the responses that follow count for it."""
        stored, new = await handle.create_share_link(
            links, body.link_id, sharer_of(caller, body.branch_id), body.target.to_domain(), body.channel,
            body.campaign_ref, body.window_days, clock(),
        )  # fmt: skip
        if not new:
            response.status_code = status.HTTP_200_OK
        return link_out(stored, console_url)

    @api.get("/v1/share-links", response_model=ShareLinksOut)
    async def mine(
        caller: Caller, links: Store, mine: bool = True, limit: Annotated[int, Query(ge=1, le=200)] = 50
    ) -> ShareLinksOut:
        """The caller's links, newest first, with their opens; ops may ask for every link (`mine=false`)."""
        if caller.role is Role.MEMBER:
            found = await links.links(member_of(caller), None, limit)
        elif caller.role is Role.OPS:
            found = await links.links(None, caller.subject if mine else None, limit)
        else:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "share links are made by members and by ops staff")
        return ShareLinksOut(items=[link_out(s, console_url) for s in found])

    @api.get("/v1/share-links/{code}", response_model=PublicLinkOut, responses={404: {"description": "No such link."}})
    async def read(code: Code, links: Store) -> PublicLinkOut:
        """Public: what the link is for, nothing about who shared it."""
        stored = await handle.read_share_link(links, code)
        return PublicLinkOut(code=stored.link.code, target=public_target(stored), window_days=stored.link.window_days)

    @api.post(
        "/v1/share-links/{code}/opens", status_code=status.HTTP_202_ACCEPTED, response_model=OpenOut,
        responses={404: {"description": "No such link."}, 401: {"description": "A bearer token that is not valid."}},
    )  # fmt: skip
    async def opened(
        code: Code, links: Store, member: Visitor, body: Annotated[OpenIn | None, Body()] = None
    ) -> OpenOut:
        """Public: someone opened the link; with a member's token, that member (once a day). At most the configured
        number of opens per link and minute are kept; the rest are answered alike and not stored."""
        claim = body.open_id if body is not None else None
        stored, kept = await handle.open_share_link(links, code, member, claim, clock(), zone, opens_per_minute)
        return OpenOut(open_id=kept, target=public_target(stored))

    @api.get("/v1/ops/attribution", description=DEFINITIONS)
    async def report(_ops: Ops, links: Store, period: Period,
                     group: Grouping = Grouping.CHANNEL) -> ReportOut:  # fmt: skip
        return ReportOut.of(await _report(links, group, period))

    @api.get(
        "/v1/ops/attribution.csv", response_class=Response,
        description=f"The report as CSV: a header row, then one row per group and currency.\n\n{DEFINITIONS}",
        responses={200: {"content": {"text/csv": {}}, "description": "One row per group and currency."}},
    )  # fmt: skip
    async def export(_ops: Ops, links: Store, period: Period,
                     group: Grouping = Grouping.CHANNEL) -> Response:  # fmt: skip
        found = ReportOut.of(await _report(links, group, period))
        name = f"attribution-{group.value}-{found.from_.isoformat()}-{found.to.isoformat()}.csv"
        return Response(to_csv(found), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip

    async def _report(links: AttributionStore, group: Grouping, period: tuple[date, date]) -> AttributionReport:
        return await handle.attribution_report(links, group, report_period(*period, zone), clock())

    return api
