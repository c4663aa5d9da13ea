"""Red packets: members send them from their points, ops from an activity's budget; members grab them."""

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from loyalty_runtime.auth import Principal, Role, require_ops, resolve_member
from points.domain.packets import (
    MAX_FRIENDS,
    MAX_MESSAGE,
    MAX_POINTS,
    MAX_SHARES,
    Audience,
    AudienceKind,
    NotInAudienceError,
    PacketExhaustedError,
    PacketGoneError,
    PacketRuleError,
)
from points.handlers import packets as handle
from points.handlers.packets import Caller, NotPacketCreatorError, PacketIdReusedError, PacketNotFoundError, Packets

ERRORS: dict[type[Exception], int] = {
    PacketRuleError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    PacketIdReusedError: status.HTTP_409_CONFLICT,
    PacketNotFoundError: status.HTTP_404_NOT_FOUND,
    NotInAudienceError: status.HTTP_403_FORBIDDEN,
    NotPacketCreatorError: status.HTTP_403_FORBIDDEN,
    PacketGoneError: status.HTTP_410_GONE,
    PacketExhaustedError: status.HTTP_409_CONFLICT,
}
"""The statuses of the handlers' refusals, mapped in app.py."""

LinkToken = Annotated[str, Path(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
PacketId = Annotated[uuid.UUID, Path()]

GRAB_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The member grabbed this packet before: its share, as then."},
    403: {"description": "Not for this member (with the reason), or its own packet, or not a member's token."},
    404: {"description": "No such packet (or link), or no such member."},
    409: {"description": "Every share was grabbed: `all N shares of this red packet were grabbed`."},
    410: {"description": "Past its deadline, or what was left went back to its sender."},
}


class AudienceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["segment", "friends", "link"] = Field(
        description="segment (ops only): the members of a segment, frozen now; friends (members only): the members "
        f"listed in member_ids (at most {MAX_FRIENDS}), or with none listed your friend circle (the members you gave "
        "gifts to or got gifts from, invited or were invited by); link: anyone with the link this answer gives once."
    )
    segment_id: uuid.UUID | None = None
    member_ids: list[uuid.UUID] = Field(default_factory=list, max_length=10_000)

    def to_audience(self) -> Audience:
        return Audience(AudienceKind(self.kind), self.segment_id, tuple(self.member_ids))


class PacketIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    packet_id: uuid.UUID = Field(description="Chosen by the client: the same id and body again creates it once.")
    points: int = Field(gt=0, le=10**12, description=f"The pool, at least 1 a share, at most {MAX_POINTS:,}.")
    shares: int = Field(gt=0, le=10**6, description=f"How many members can grab it, 1 to {MAX_SHARES:,}.")
    audience: AudienceIn
    expires_at: AwareDatetime | None = Field(default=None, description="Or duration_minutes; 1 minute to 7 days.")
    duration_minutes: int | None = Field(default=None, gt=0, le=10**6)
    message: str = Field(default="", max_length=1_000, description=f"Shown with it, at most {MAX_MESSAGE} characters.")
    activity_id: uuid.UUID | None = Field(default=None, description="Ops: the activity whose budget funds it.")


class GrabOut(BaseModel):
    display_name: str
    points: int
    grabbed_at: datetime
    luckiest: bool = Field(description="The largest share, once nothing is left to grab (WeChat's best luck).")
    yours: bool
    member_id: uuid.UUID | None = Field(description="Ops only.")


class PacketOut(BaseModel):
    packet_id: uuid.UUID
    sender: str = Field(description="The sending member's display name, or the activity's name.")
    sent_by_you: bool
    activity_id: uuid.UUID | None
    points: int
    shares: int
    grabbed: int = Field(description="Shares grabbed.")
    grabbed_points: int
    returned_points: int = Field(description="What went back to the source when it closed or expired.")
    state: Literal["open", "exhausted", "expired", "closed"]
    audience: Literal["segment", "friends", "link"]
    segment_id: uuid.UUID | None
    audience_size: int | None = Field(description="To its creator and ops: members it is for (segment, friends).")
    message: str
    created_at: datetime
    expires_at: datetime
    settled_at: datetime | None
    your_points: int | None = Field(description="Your share, if you grabbed one.")
    grabs: list[GrabOut] = Field(description="Who grabbed what, in the order of the grabs (on the packet's page).")

    @classmethod
    def of(cls, view: handle.PacketView, viewer: Caller) -> "PacketOut":
        p = view.packet
        return cls(
            packet_id=p.packet_id, sender=view.sender_name,
            sent_by_you=p.creator_member is not None and p.creator_member == viewer.member_id,
            activity_id=p.activity_id, points=p.points, shares=p.shares, grabbed=view.grabbed,
            grabbed_points=view.grabbed_points, returned_points=p.returned_points, state=view.state.value,
            audience=p.audience.value, segment_id=p.segment_id, audience_size=view.audience_size, message=p.message,
            created_at=p.created_at, expires_at=p.expires_at, settled_at=p.settled_at, your_points=view.your_points,
            grabs=[GrabOut(**g) for g in view.grabs],
        )  # fmt: skip


class CreatedOut(PacketOut):
    link_token: str | None = Field(
        description="A link packet's secret, in the first answer only (the service keeps its hash): the link is "
        "/wallet/red-packets/link/<token>. A replay answers null; if the first answer was lost, close the packet "
        "and create another."
    )


class GrabbedOut(BaseModel):
    packet_id: uuid.UUID
    member_id: uuid.UUID
    points: int = Field(description="Your share.")
    grabbed_at: datetime


class MemberPacketsOut(BaseModel):
    created: list[PacketOut]
    grabbed: list[PacketOut]


def router(
    packets: Callable[[], Packets], authenticate: Callable[..., Principal], clock: Callable[[], datetime]
) -> APIRouter:
    api = APIRouter(tags=["red packets"])
    Principals = Annotated[Principal, Depends(authenticate)]
    Deps = Annotated[Packets, Depends(packets)]

    @api.post("/v1/red-packets", status_code=status.HTTP_201_CREATED, response_model=CreatedOut,
              responses={200: {"description": "The same packet_id and body again: the first answer (no token)."},
                         403: {"description": "Not a member's or ops' token."},
                         404: {"description": "No such member or activity."},
                         409: {"description": "packet_id used for another packet."},
                         422: {"description": "Refused by the rules, with the reason (size, deadline, audience, "
                                              "points or budget available, daily limit)."}})  # fmt: skip
    async def create(body: PacketIn, caller: Principals, deps: Deps, response: Response) -> CreatedOut:
        """A red packet of `points` for `shares` grabbers, funded now: a member's from its own points (lot by lot,
        keeping their expiry), ops' from an activity's budget. The shares are drawn now (double mean: each between
        1 and twice the average of what is left, the last takes the rest); what nobody grabs by the deadline goes
        back to its source."""
        who = _caller(caller)
        duration = timedelta(minutes=body.duration_minutes) if body.duration_minutes is not None else None
        request = handle.PacketRequest(
            body.packet_id, body.points, body.shares, body.audience.to_audience(), body.message, body.expires_at,
            duration, body.activity_id, body.model_dump(mode="json"),
        )  # fmt: skip
        made = await handle.create(deps, who, request, clock())
        if not made.new:
            response.status_code = status.HTTP_200_OK
        view = await handle.read(deps.store, made.packet.packet_id, who, clock())
        return CreatedOut(**PacketOut.of(view, who).model_dump(), link_token=made.link_token)

    @api.get("/v1/red-packets/by-link/{token}", response_model=PacketOut, responses=GRAB_RESPONSES)
    async def read_by_link(token: LinkToken, caller: Principals, deps: Deps) -> PacketOut:
        """The packet behind a link, for anyone holding it (before grabbing: the sender, the message, what is left)."""
        who = _caller(caller)
        packet_id = await handle.packet_of_link(deps.store, token)
        return PacketOut.of(await handle.read(deps.store, packet_id, who, clock(), via_link=True), who)

    @api.get("/v1/red-packets/{packet_id}", response_model=PacketOut,
             responses={403: {"description": "Not for you (a link packet: open it with its link)."},
                        404: {"description": "No such packet."}})  # fmt: skip
    async def read(packet_id: PacketId, caller: Principals, deps: Deps) -> PacketOut:
        """The packet for its creator, ops, the members it is for and those who grabbed it: the tally, the state,
        and the list of grabs (name, points, when)."""
        who = _caller(caller)
        return PacketOut.of(await handle.read(deps.store, packet_id, who, clock()), who)

    @api.post("/v1/red-packets/{packet_id}/grabs", status_code=status.HTTP_201_CREATED, response_model=GrabbedOut,
              responses=GRAB_RESPONSES)  # fmt: skip
    async def grab(packet_id: PacketId, caller: Principals, deps: Deps, response: Response) -> GrabbedOut:
        """Grab a share of a segment or friends packet (a link packet opens with its link)."""
        return await _grab(deps, packet_id, caller, response, via_link=False)

    @api.post("/v1/red-packets/by-link/{token}/grabs", status_code=status.HTTP_201_CREATED,
              response_model=GrabbedOut, responses=GRAB_RESPONSES)  # fmt: skip
    async def grab_by_link(token: LinkToken, caller: Principals, deps: Deps, response: Response) -> GrabbedOut:
        """Grab a share of the packet behind a link."""
        packet_id = await handle.packet_of_link(deps.store, token)
        return await _grab(deps, packet_id, caller, response, via_link=True)

    async def _grab(deps: Packets, packet_id: uuid.UUID, caller: Principal, response: Response, *, via_link: bool
                    ) -> GrabbedOut:  # fmt: skip
        if caller.role is not Role.MEMBER:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "only members grab red packets: sign in as a member")
        got = await handle.grab(deps, packet_id, uuid.UUID(caller.subject), clock(), via_link=via_link)
        if not got.new:
            response.status_code = status.HTTP_200_OK
        return GrabbedOut(packet_id=got.packet_id, member_id=got.member_id, points=got.points,
                          grabbed_at=got.grabbed_at)  # fmt: skip

    @api.post("/v1/red-packets/{packet_id}/close", response_model=PacketOut,
              responses={403: {"description": "Not its creator (ops close the packets of activities)."},
                         404: {"description": "No such packet."}})  # fmt: skip
    async def close(packet_id: PacketId, caller: Principals, deps: Deps) -> PacketOut:
        """Return what is left to the packet's source now (a member's lots keep their expiry); no more grabs.
        Closing a packet that is already settled answers it as it is."""
        who = _caller(caller)
        await handle.close(deps, packet_id, who, clock())
        return PacketOut.of(await handle.read(deps.store, packet_id, who, clock()), who)

    @api.get("/v1/members/{member_ref}/red-packets", response_model=MemberPacketsOut, tags=["members"])
    async def of_member(
        member_ref: Annotated[str, Path(description="A member id, or `me`.")], caller: Principals, deps: Deps,
        limit: Annotated[int, Query(ge=1, le=100)] = 50,
    ) -> MemberPacketsOut:  # fmt: skip
        """The packets the member created and those it grabbed (with its share), newest first."""
        member = resolve_member(caller, member_ref)
        found = await handle.of_member(deps.store, member, clock(), limit)
        viewer = Caller(member)
        return MemberPacketsOut(created=[PacketOut.of(v, viewer) for v in found["created"]],
                                grabbed=[PacketOut.of(v, viewer) for v in found["grabbed"]])  # fmt: skip

    @api.get("/v1/ops/red-packets", response_model=list[PacketOut], tags=["ops"])
    async def for_ops(
        caller: Principals, deps: Deps, activity_id: uuid.UUID | None = None,
        source: Annotated[Literal["activities", "members"] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> list[PacketOut]:  # fmt: skip
        """Every red packet, newest first: those of activities (their budgets), or of members, or of one activity."""
        require_ops(caller)
        by_ops = None if source is None else source == "activities"
        viewer = Caller(ops=caller.subject)
        return [PacketOut.of(v, viewer) for v in await handle.for_ops(deps.store, clock(), activity_id, by_ops, limit)]

    return api


def _caller(principal: Principal) -> Caller:
    if principal.role is Role.OPS:
        return Caller(ops=principal.subject)
    if principal.role is Role.MEMBER:
        try:
            return Caller(member_id=uuid.UUID(principal.subject))
        except ValueError:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "a member token must name a member id") from None
    raise HTTPException(status.HTTP_403_FORBIDDEN, "red packets are for members and ops")
