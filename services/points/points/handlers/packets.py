"""Red packets: create (from a member's points or an activity's budget), grab, return at the deadline, close.

Each is one short transaction. Lock order, the same everywhere so that nothing deadlocks with earn batches,
holds or gifts (which lock accounts in id order): the request's advisory lock, the packet's row (return,
close), a share (grab, SKIP LOCKED), the activity (ops packets), then accounts in id order (`lock_accounts`).
A grab and a return meet on the packet's account: whichever locks it first finishes first, and a grab that
locks it after a return reads the returned state and is refused.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from contracts.envelope import Event
from contracts.events.packets import (
    RedPacketCreated,
    RedPacketCreatedPayload,
    RedPacketGrabbed,
    RedPacketGrabbedPayload,
    RedPacketReturned,
    RedPacketReturnedPayload,
)
from contracts.topics import RED_PACKETS
from loyalty_runtime.outbox import OutboxMessage
from loyalty_runtime.telemetry import inject_context
from points.adapters.activities_store import ActivitiesSql
from points.adapters.packets_store import PacketReads, PacketsSql, packet_of
from points.adapters.store import PointsStore, Transaction
from points.domain import packets as rules
from points.domain.activities import Activity, budget_account
from points.domain.ledger import Book, member_account, packet_account, transfer_id
from points.domain.packets import (
    Audience,
    AudienceKind,
    NotInAudienceError,
    Packet,
    PacketExhaustedError,
    PacketRuleError,
    PacketState,
    RandomSource,
)
from points.handlers.activities import ActivityNotFoundError
from points.handlers.ledger_events import LedgerEventWriter, post_changes
from points.handlers.members import MemberNotFoundError

SOURCE = "points"
RETURNS_PER_RUN = 200


class PacketNotFoundError(LookupError):
    def __init__(self, what: str) -> None:
        super().__init__(f"no red packet {what}: check the link or the id")


class PacketIdReusedError(Exception):
    def __init__(self, packet_id: uuid.UUID) -> None:
        super().__init__(
            f"red packet {packet_id} was already created with other details; use a new packet_id for a new packet"
        )


class NotPacketCreatorError(PermissionError):
    """Only a packet's creator closes it (ops close ops packets)."""


@dataclass(frozen=True)
class Caller:
    """Who asks: a member (for itself), or ops staff."""

    member_id: uuid.UUID | None = None
    ops: str | None = None

    @property
    def by(self) -> str:
        return f"ops:{self.ops}" if self.ops is not None else str(self.member_id)


@dataclass(frozen=True)
class PacketRequest:
    packet_id: uuid.UUID
    points: int
    shares: int
    audience: Audience
    message: str
    expires_at: datetime | None
    duration: timedelta | None
    activity_id: uuid.UUID | None
    as_sent: Mapping[str, Any]
    """The request's body as sent (JSON values): what a replay must match."""


class PacketEvents:
    """RedPacket* events, written to the outbox with the ledger changes they report."""

    def __init__(self, topic_prefix: str) -> None:
        self.topic = RED_PACKETS.qualified(topic_prefix)

    def _message(self, packet: Packet, kind: type[Event], leg: str, at: datetime, payload: object) -> OutboxMessage:
        event = kind(
            event_id=transfer_id(packet.packet_id, f"event:{leg}"), occurred_at=at, source=SOURCE,
            correlation_id=packet.packet_id, causation_id=packet.packet_id, payload=payload,
        )  # fmt: skip
        return OutboxMessage(self.topic, str(packet.packet_id), event.model_dump_json().encode(), inject_context({}))

    def created(self, p: Packet) -> OutboxMessage:
        payload = RedPacketCreatedPayload(
            packet_id=p.packet_id, creator_member_id=p.creator_member, activity_id=p.activity_id,
            source_account=p.source_account, points=p.points, shares=p.shares, audience=p.audience.value,
            segment_id=p.segment_id, expires_at=p.expires_at,
        )  # fmt: skip
        return self._message(p, RedPacketCreated, "created", p.created_at, payload)

    def grabbed(
        self, p: Packet, member: uuid.UUID, grab: uuid.UUID, points: int, position: int, at: datetime
    ) -> OutboxMessage:
        payload = RedPacketGrabbedPayload(packet_id=p.packet_id, member_id=member, grab_id=grab, points=points,
                                          share_number=position, shares=p.shares)  # fmt: skip
        return self._message(p, RedPacketGrabbed, f"grab:{member}", at, payload)

    def returned(self, p: Packet, points: int, reason: PacketState, at: datetime) -> OutboxMessage:
        payload = RedPacketReturnedPayload(packet_id=p.packet_id, points=points, to_account=p.source_account,
                                           reason=reason.value)  # fmt: skip
        return self._message(p, RedPacketReturned, "returned", at, payload)


@dataclass(frozen=True)
class Packets:
    """What the red packet handlers work with; built once in app.py."""

    store: PointsStore
    ledger: LedgerEventWriter
    events: PacketEvents
    rng: RandomSource
    lot_validity: timedelta
    daily_limit: int
    """Points a member may give away per UTC day, gifts and its red packets together."""


# --- create ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Created:
    packet: Packet
    link_token: str | None
    """A link packet's token, in the first answer only (only its hash is kept)."""
    new: bool


async def create(deps: Packets, caller: Caller, request: PacketRequest, now: datetime) -> Created:
    """A packet, funded in the same transaction; the same packet_id and body again answers the first (new=False)."""
    packet = _planned(caller, request, now)
    digest = rules.fingerprint({"by": caller.by, **request.as_sent})
    async with deps.store.transaction() as tx:
        sql = PacketsSql(tx.conn)
        await sql.lock_packet_id(request.packet_id)  # a concurrent create with this id waits, then reads ours
        found = await sql.find(request.packet_id)
        if found is not None:
            if found[1] != digest:
                raise PacketIdReusedError(request.packet_id)
            return Created(found[0], None, new=False)
        activity = await _check_source(tx, packet)
        book = await _lock_funding(tx, packet)
        token = rules.new_link_token() if packet.audience is AudienceKind.LINK else None
        await sql.insert(packet, rules.link_hash(token) if token else None, digest,
                         rules.split(packet.points, packet.shares, deps.rng))  # fmt: skip
        await _freeze_audience(tx, sql, packet, request.audience, now)
        if activity is None:
            await _fund_from_member(tx, deps, packet, book)
        else:
            await _fund_from_activity(tx, deps, packet, activity, book)
        await post_changes(tx, book, deps.ledger, extra=[deps.events.created(packet)])
    return Created(packet, token, new=True)


def _planned(caller: Caller, request: PacketRequest, now: datetime) -> Packet:
    """The packet the request asks for, after every rule that needs no database."""
    rules.check_size(request.points, request.shares)
    rules.check_message(request.message)
    by_ops = caller.ops is not None
    rules.check_audience(request.audience, request.shares, by_ops=by_ops, creator=caller.member_id)
    if by_ops != (request.activity_id is not None):
        raise PacketRuleError("ops fund a red packet from an activity's budget (activity_id); members from their "
                              "own points (no activity_id)")  # fmt: skip
    ends = rules.deadline(now, request.expires_at, request.duration)
    source = budget_account(request.activity_id) if request.activity_id else member_account(_member(caller))
    return Packet(
        request.packet_id, packet_account(request.packet_id), source, caller.member_id, caller.by,
        request.activity_id, request.points, request.shares, request.audience.kind, request.audience.segment_id,
        request.message, PacketState.OPEN, now, ends,
    )  # fmt: skip


def _member(caller: Caller) -> uuid.UUID:
    assert caller.member_id is not None
    return caller.member_id


async def _check_source(tx: Transaction, packet: Packet) -> Activity | None:
    """The funding member exists; or the activity exists, has not ended, and is locked (before any account)."""
    if packet.activity_id is None:
        assert packet.creator_member is not None
        if not await tx.member_exists(packet.creator_member):
            raise MemberNotFoundError(packet.creator_member)
        return None
    # Locked before the packet's row names it (see _lock_funding), and before any account, as earn batches do.
    activity = (await ActivitiesSql(tx.conn).lock([packet.activity_id])).get(packet.activity_id)
    if activity is None:
        raise ActivityNotFoundError(packet.activity_id)
    if activity.status(packet.created_at) == "ended":
        raise PacketRuleError("the activity has ended: its budget funds no more red packets")
    return activity


async def _lock_funding(tx: Transaction, packet: Packet) -> Book:
    """The source's and the packet's accounts, locked before the packet's row names them: inserting a row that
    references an account takes a key-share lock on it, and two transactions holding one each on the same account
    could never both raise it to the update that funding needs (a deadlock)."""
    await tx.ensure_accounts([packet.account_id])
    members = [packet.source_account] if packet.activity_id is None else []
    book = Book(await tx.lock_accounts([packet.source_account, packet.account_id]), await tx.live_lots(members))
    book.mark_lots_loaded([*members, packet.account_id])
    return book


async def _freeze_audience(tx: Transaction, sql: PacketsSql, packet: Packet, audience: Audience, now: datetime) -> None:
    """Friends must be members (none listed: the creator's friend circle); a segment's members now are the
    packet's audience; at least one per share."""
    if audience.kind is AudienceKind.FRIENDS and not audience.member_ids:
        assert packet.creator_member is not None
        circle = await sql.friend_circle(packet.creator_member, rules.MAX_FRIENDS)
        rules.check_circle(len(circle), packet.shares)
        await sql.add_friends(packet.packet_id, circle)
    elif audience.kind is AudienceKind.FRIENDS:
        known = await tx.existing_members(audience.member_ids)
        unknown = sorted(str(m) for m in set(audience.member_ids) - known)
        if unknown:
            raise PacketRuleError(f"these friends are not members: {', '.join(unknown[:5])}")
        await sql.add_friends(packet.packet_id, audience.member_ids)
    elif audience.kind is AudienceKind.SEGMENT:
        assert audience.segment_id is not None
        segment = await sql.segment_rules(audience.segment_id)
        if segment is None:
            raise PacketRuleError(f"segment {audience.segment_id} does not exist")
        members = await sql.freeze_segment(packet.packet_id, segment, now)
        if members < packet.shares:
            raise PacketRuleError(f"the segment has {members} members now, fewer than the {packet.shares} shares")


async def _fund_from_member(tx: Transaction, deps: Packets, packet: Packet, book: Book) -> None:
    """The member's lots move in; refused beyond its available points or its daily giving limit."""
    member = packet.creator_member
    assert member is not None
    # The member's account is locked now, so concurrent gifts and packets cannot both slip under the limit.
    today = packet.created_at.replace(hour=0, minute=0, second=0, microsecond=0)
    given = await PacketsSql(tx.conn).given_since(member, today, besides=packet.packet_id)
    if given + packet.points > deps.daily_limit:
        left = max(deps.daily_limit - given, 0)
        raise PacketRuleError(f"gifts and red packets together give at most {deps.daily_limit} points a day; "
                              f"{left} left today (UTC)")  # fmt: skip
    available = book.account(packet.source_account).available
    if available < packet.points:
        raise PacketRuleError(f"only {available} points available to put in a red packet")
    rules.fund_from_member(book, packet.packet_id, packet.source_account, packet.account_id, packet.points,
                           packet.created_at)  # fmt: skip


async def _fund_from_activity(tx: Transaction, deps: Packets, packet: Packet, activity: Activity, book: Book) -> None:
    """One lot from the activity's budget, which never overdraws: a packet cannot spend beyond the budget."""
    available = book.account(packet.source_account).available
    if available < packet.points:
        raise PacketRuleError(f"the activity's budget has {available} points left, fewer than {packet.points}")
    rules.fund_from_budget(book, packet.packet_id, packet.source_account, packet.account_id, packet.points,
                           packet.created_at, deps.lot_validity, activity.name)  # fmt: skip
    await PacketsSql(tx.conn).put_into_packets(activity.activity_id, packet.points)


# --- grab ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grabbed:
    packet_id: uuid.UUID
    member_id: uuid.UUID
    points: int
    grabbed_at: datetime
    new: bool


async def grab(deps: Packets, packet_id: uuid.UUID, member_id: uuid.UUID, now: datetime, *, via_link: bool) -> Grabbed:
    """Claim the next share and move its points; a member's second grab answers its first share (new=False)."""
    async with deps.store.transaction() as tx:
        sql = PacketsSql(tx.conn)
        await sql.lock_grabber(packet_id, member_id)
        found = await sql.find(packet_id)
        if found is None:
            raise PacketNotFoundError(str(packet_id))
        packet = found[0]
        earlier = await sql.share_of(packet_id, member_id)
        if earlier is not None:
            return Grabbed(packet_id, member_id, earlier["points"], earlier["grabbed_at"], new=False)
        await _may_grab(tx, sql, packet, member_id, now, via_link)
        claimed = await sql.claim_share(packet_id)
        if claimed is None:
            raise PacketExhaustedError(packet.shares)
        position, points = claimed
        book = await _lock_for_grab(tx, sql, packet, member_id, now)
        cause = rules.grab_id(packet_id, member_id)
        rules.grab(book, packet_id, cause, packet.account_id, member_account(member_id), points, now, packet.message)
        await sql.take_share(packet_id, position, member_id, cause, now)
        await post_changes(tx, book, deps.ledger,
                           extra=[deps.events.grabbed(packet, member_id, cause, points, position, now)])  # fmt: skip
    return Grabbed(packet_id, member_id, points, now, new=True)


async def _may_grab(
    tx: Transaction, sql: PacketsSql, packet: Packet, member_id: uuid.UUID, now: datetime, via_link: bool
) -> None:
    if not await tx.member_exists(member_id):
        raise MemberNotFoundError(member_id)
    listed = packet.audience is not AudienceKind.LINK and await sql.in_audience(packet.packet_id, member_id)
    rules.judge_grab(packet, member_id, now, via_link=via_link, in_audience=listed)


async def _lock_for_grab(tx: Transaction, sql: PacketsSql, packet: Packet, member_id: uuid.UUID, now: datetime) -> Book:
    """Lock the packet's and the grabber's accounts (in id order), then make sure no return came first."""
    accounts = await tx.lock_accounts([packet.account_id, member_account(member_id)])
    rules.check_open(packet, await sql.state(packet.packet_id), now)
    book = Book(accounts, await tx.live_lots([packet.account_id]))
    book.mark_lots_loaded([packet.account_id])
    return book


# --- the rest goes back: at the deadline, or when the creator closes it ---------------------------------------


async def return_due(deps: Packets, as_of: datetime, limit: int = RETURNS_PER_RUN) -> int:
    """Return what is left of every packet whose deadline passed, one transaction each; how many were settled.

    Safe with several processes: each takes a packet no other is returning (SKIP LOCKED).
    """
    settled = 0
    while settled < limit:
        async with deps.store.transaction() as tx:
            sql = PacketsSql(tx.conn)
            packet = await sql.lock_due(as_of)
            if packet is None:
                return settled
            await _settle(tx, sql, deps, packet, PacketState.EXPIRED, as_of)
        settled += 1
    return settled


async def close(deps: Packets, packet_id: uuid.UUID, caller: Caller, now: datetime) -> Packet:
    """Its creator (ops, for ops packets) returns the rest now; closing a settled packet changes nothing."""
    async with deps.store.transaction() as tx:
        sql = PacketsSql(tx.conn)
        packet = await sql.lock(packet_id)
        if packet is None:
            raise PacketNotFoundError(str(packet_id))
        mine = packet.creator_member == caller.member_id if caller.member_id else packet.creator_member is None
        if not mine:
            raise NotPacketCreatorError("only its creator closes a red packet (ops close the packets of activities)")
        if packet.state is not PacketState.OPEN:
            return packet
        return await _settle(tx, sql, deps, packet, PacketState.CLOSED, now)


async def _settle(
    tx: Transaction, sql: PacketsSql, deps: Packets, packet: Packet, reason: PacketState, now: datetime
) -> Packet:
    """Move what is left back to the source, lot by lot, and record the packet's end (under its row lock)."""
    if packet.activity_id is not None:
        await sql.lock_activity(packet.activity_id)  # activities before accounts, as earn batches take them
    book = Book(await tx.lock_accounts([packet.account_id, packet.source_account]),
                await tx.live_lots([packet.account_id]))  # fmt: skip
    book.mark_lots_loaded([packet.account_id])
    returned = rules.give_back(book, packet.packet_id, packet.account_id, packet.source_account, now)
    state = rules.settled_state(returned, reason)
    await sql.settle(packet.packet_id, state, returned, now)
    if packet.activity_id is not None and returned:
        await sql.returned_from_packets(packet.activity_id, returned)
    extra = [deps.events.returned(packet, returned, reason, now)] if returned else []
    await post_changes(tx, book, deps.ledger, extra=extra)
    return dataclasses.replace(packet, state=state, returned_points=returned, settled_at=now)


# --- reads -----------------------------------------------------------------------------------------------------


@dataclass
class PacketView:
    """A packet as a person sees it: its tally, its grabs (WeChat's list), the viewer's own share."""

    packet: Packet
    sender_name: str
    grabbed: int
    grabbed_points: int
    state: PacketState
    grabs: list[dict[str, Any]] = field(default_factory=list)
    your_points: int | None = None
    audience_size: int | None = None


def _view(row: Any, grabs: Sequence[Any], viewer: Caller, now: datetime) -> PacketView:
    packet = packet_of(row)
    state = rules.state_now(packet, row["grabbed"], now)
    finished = state is not PacketState.OPEN
    luckiest = max(grabs, key=lambda g: (g["points"], -g["position"]))["position"] if grabs and finished else None
    shown = [
        {"display_name": g["display_name"], "points": g["points"], "grabbed_at": g["grabbed_at"],
         "luckiest": g["position"] == luckiest, "yours": g["member_id"] == viewer.member_id,
         "member_id": g["member_id"] if viewer.ops is not None else None}
        for g in grabs
    ]  # fmt: skip
    yours = next((g["points"] for g in grabs if g["member_id"] == viewer.member_id), None)
    return PacketView(packet, row["sender_name"], row["grabbed"], row["grabbed_points"], state, shown, yours)


async def read(store: PointsStore, packet_id: uuid.UUID, viewer: Caller, now: datetime, *, via_link: bool = False
               ) -> PacketView:  # fmt: skip
    """The packet for ops, its creator, those it is for, and those who grabbed it; 403 with the reason otherwise."""
    reads = PacketReads(store.pool)
    row, grabs = await reads.view(packet_id)
    if row is None:
        raise PacketNotFoundError(str(packet_id))
    view = _view(row, grabs, viewer, now)
    await _may_see(reads, view, viewer, via_link)
    owner = viewer.ops is not None or view.packet.creator_member == viewer.member_id
    if owner and view.packet.audience is not AudienceKind.LINK:
        view.audience_size = await reads.audience_size(packet_id)
    return view


async def _may_see(reads: PacketReads, view: PacketView, viewer: Caller, via_link: bool) -> None:
    packet, member = view.packet, viewer.member_id
    if viewer.ops is not None or via_link or (member is not None and packet.creator_member == member):
        return
    if member is not None and view.your_points is not None:
        return
    if (
        member is not None
        and packet.audience is not AudienceKind.LINK
        and await reads.in_audience(packet.packet_id, member)
    ):
        return
    if packet.audience is AudienceKind.LINK:
        raise NotInAudienceError("this red packet opens with its link only: ask its sender for the link")
    raise NotInAudienceError("this red packet is not for you")


async def packet_of_link(store: PointsStore, token: str) -> uuid.UUID:
    found = await PacketReads(store.pool).packet_by_link(rules.link_hash(token))
    if found is None:
        raise PacketNotFoundError("with this link")
    return found


async def of_member(store: PointsStore, member_id: uuid.UUID, now: datetime, limit: int) -> dict[str, list[PacketView]]:
    created, grabbed = await PacketReads(store.pool).of_member(member_id, limit)
    viewer = Caller(member_id)
    mine = [_view(r, [], viewer, now) for r in created]
    theirs = []
    for r in grabbed:
        view = _view(r, [], viewer, now)
        view.your_points = r["your_points"]
        theirs.append(view)
    return {"created": mine, "grabbed": theirs}


async def for_ops(
    store: PointsStore, now: datetime, activity_id: uuid.UUID | None, by_ops: bool | None, limit: int
) -> list[PacketView]:
    rows = await PacketReads(store.pool).for_ops(activity_id, by_ops, limit)
    return [_view(r, [], Caller(ops="ops"), now) for r in rows]
