"""Red packets ("grab happiness"): a pool of points split at random among its first grabbers.

The rules, in plain words:

- **Who funds it.** A member, from its own points; or ops, from a reward activity's budget. The points move
  into the packet's own account (`packet:<id>`) when it is created, so a packet can never promise more than it
  holds. From a member they move lot by lot, each keeping its expiry, earning date and issuer; from a budget
  they are one lot that expires `lot validity` after the packet's creation, issued by the budget, as an
  activity's grants are.
- **How it splits** (WeChat's double mean). `points` P over `shares` N, with 1 <= N <= P: for each share but
  the last, with R points and L shares left, the share is a uniform random integer in
  [1, min(floor(2R / L), R - (L - 1))]; the last share takes what is left. The first bound is the double mean
  (every share at most twice the average of what is left, so the mean stays R / L); the second leaves at
  least 1 point for each share still to draw (without it, floor(2R / L) can take all but less than one point
  per remaining share: R = 3, L = 2 allows 3). So every share is at least 1 and the shares sum to P exactly,
  by construction. The shares are drawn once, at creation, and stored: a grab claims the next one.
- **Limits.** N <= 1,000: every share is a row and every grab of one packet queues on its one account, so
  a thousand grabs are about a second of work; a bigger crowd is several packets. P <= 1,000,000 bounds what
  one leaked link can spread. The message is at most 80 characters.
- **Deadline.** Between 1 minute and 7 days after creation. What nobody grabbed by then goes back to where it
  came from (the member's lots with their own expiry, or the activity's budget). The creator may close it
  earlier (ops close ops packets): the rest goes back at once.
- **Audience.** `segment` (ops only): the members of a segment, frozen when the packet is created, as an
  activity's targets are. `friends` (members only): the creator's friend circle, its contacts who are members:
  up to 200 members it lists, or, when it lists none, the members it gave gifts to or received gifts from,
  invited or was invited by (the 200 most recent), frozen at creation; at least as many as the shares.
  `link`: anyone holding the link, an unguessable token
  (`secrets.token_urlsafe(24)`, 192 bits) of which only the SHA-256 is kept; it is shown once, to the creator.
  Nobody grabs its own packet.
- **Grabs.** Each member grabs a packet at most once (asking again answers its first share). A packet is
  `open` until its deadline; `exhausted` once every share is taken; `expired` when its deadline returned the
  rest; `closed` when its creator returned the rest early. Points move from the packet to the grabber lot by
  lot, the lots that expire first first, keeping their dates and issuer.
- **Expiry inside a packet.** A lot does not expire while it waits in a packet (at most 7 days): it keeps its
  date, and reaches the grabber (or comes back) with it; if that date has passed, the next expiry run takes it.

Every transfer id derives from its cause: the packet and its leg (`fund`, `return`) and the lot, or the grab.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from points.domain.holds import move_lots
from points.domain.ledger import Book, Transfer, transfer_id

MAX_SHARES = 1_000
MAX_POINTS = 1_000_000
MAX_FRIENDS = 200
MAX_MESSAGE = 80
SHORTEST = timedelta(minutes=1)
LONGEST = timedelta(days=7)

_GRABS = uuid.UUID("6c1f0b7e-2a5d-4e93-9b8a-3d7e5f1c0a24")


class AudienceKind(StrEnum):
    SEGMENT = "segment"
    FRIENDS = "friends"
    LINK = "link"


class PacketState(StrEnum):
    OPEN = "open"
    EXHAUSTED = "exhausted"
    EXPIRED = "expired"
    CLOSED = "closed"


class PacketRuleError(ValueError):
    """A packet the rules do not allow (its size, deadline, audience or funding); the message says why."""


class GrabRefusedError(Exception):
    """A grab that cannot be granted; the subclass says why (and so the answer's status)."""


class NotInAudienceError(GrabRefusedError):
    """The member is not among those the packet is for (403)."""


class PacketGoneError(GrabRefusedError):
    """The packet's deadline passed, or what was left went back to its sender (410)."""


class PacketExhaustedError(GrabRefusedError):
    """Every share was grabbed (409)."""

    def __init__(self, shares: int) -> None:
        super().__init__(f"all {shares} shares of this red packet were grabbed")


class RandomSource(Protocol):
    """What the split needs of a random generator: secrets.SystemRandom in production, random.Random in tests."""

    def randint(self, a: int, b: int) -> int: ...


def highest_share(remaining: int, left: int) -> int:
    """The largest share that may be drawn with `remaining` points over `left` shares (left >= 2)."""
    return min(2 * remaining // left, remaining - (left - 1))


def split(points: int, shares: int, rng: RandomSource) -> list[int]:
    """Draw every share of a packet (see the module's rules): each >= 1, summing to `points`."""
    check_size(points, shares)
    drawn: list[int] = []
    remaining = points
    for left in range(shares, 1, -1):
        share = rng.randint(1, highest_share(remaining, left))
        drawn.append(share)
        remaining -= share
    drawn.append(remaining)
    return drawn


def check_size(points: int, shares: int) -> None:
    if not 1 <= shares <= MAX_SHARES:
        raise PacketRuleError(f"a red packet has 1 to {MAX_SHARES:,} shares, not {shares:,}")
    if not shares <= points <= MAX_POINTS:
        raise PacketRuleError(
            f"a red packet of {shares:,} shares holds {shares:,} to {MAX_POINTS:,} points (at least 1 a share), "
            f"not {points:,}"
        )


def deadline(now: datetime, expires_at: datetime | None, duration: timedelta | None) -> datetime:
    """When the packet's rest goes back: `expires_at`, or `duration` from now; one of them, 1 minute to 7 days."""
    if expires_at is not None and duration is None:
        end = expires_at
    elif duration is not None and expires_at is None:
        end = now + duration
    else:
        raise PacketRuleError("give either expires_at or duration_minutes, not both or neither")
    if not now + SHORTEST <= end <= now + LONGEST:
        raise PacketRuleError("a red packet stays open from 1 minute to 7 days: choose a deadline in that range")
    return end


@dataclass(frozen=True)
class Audience:
    kind: AudienceKind
    segment_id: uuid.UUID | None = None
    member_ids: tuple[uuid.UUID, ...] = ()


def check_audience(audience: Audience, shares: int, *, by_ops: bool, creator: uuid.UUID | None) -> None:
    """Ops address a segment or a link; members their friends or a link."""
    kind = audience.kind
    if kind is AudienceKind.SEGMENT and not by_ops:
        raise PacketRuleError("only ops send a red packet to a segment; send yours to friends or by link")
    if kind is AudienceKind.FRIENDS and by_ops:
        raise PacketRuleError("ops send a red packet to a segment or by link, not to a list of friends")
    if kind is AudienceKind.SEGMENT and (audience.segment_id is None or audience.member_ids):
        raise PacketRuleError("a segment packet names its segment_id (and no member_ids)")
    if kind is AudienceKind.LINK and (audience.segment_id is not None or audience.member_ids):
        raise PacketRuleError("a link packet is for anyone with the link: give no segment_id or member_ids")
    if kind is AudienceKind.FRIENDS:
        if audience.segment_id is not None or len(set(audience.member_ids)) > MAX_FRIENDS:
            raise PacketRuleError(
                f"a friends packet lists up to {MAX_FRIENDS} member_ids, or none for your friend circle (no segment_id)"
            )
        if creator in audience.member_ids:
            raise PacketRuleError("you cannot send a red packet to yourself: leave your own id out of member_ids")
        if audience.member_ids and len(set(audience.member_ids)) < shares:
            raise PacketRuleError(
                f"{shares} shares for {len(set(audience.member_ids))} friends: some shares could never be grabbed; "
                "give as many shares as friends at most"
            )


def check_circle(circle: int, shares: int) -> None:
    """A packet for the creator's friend circle (no member_ids) needs a friend per share."""
    if circle < shares:
        raise PacketRuleError(
            f"your friend circle (members you gave gifts to or got gifts from, invited or were invited by) has "
            f"{circle} members, fewer than the {shares} shares: give fewer shares, list friends by member id, "
            "or send it by link"
        )


def check_message(message: str) -> None:
    if len(message) > MAX_MESSAGE:
        raise PacketRuleError(f"a red packet's message is at most {MAX_MESSAGE} characters")


def new_link_token() -> str:
    """The secret of a link packet: 24 random bytes, URL-safe (32 characters)."""
    return secrets.token_urlsafe(24)


def link_hash(token: str) -> str:
    """What is kept of a link token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def fingerprint(request: Mapping[str, Any]) -> str:
    """A create request as sent (and its creator), so that the same packet id with another body is told apart."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def grab_id(packet_id: uuid.UUID, member_id: uuid.UUID) -> uuid.UUID:
    """The cause of a member's grab of a packet: one per member and packet, whatever the retries."""
    return uuid.uuid5(_GRABS, f"{packet_id}:{member_id}")


# --- the packet as a grab and a return see it ----------------------------------------------------------------


@dataclass(frozen=True)
class Packet:
    packet_id: uuid.UUID
    account_id: str
    source_account: str
    creator_member: uuid.UUID | None
    """The member who funded it; None for an ops packet (funded by `activity_id`'s budget)."""
    created_by: str
    activity_id: uuid.UUID | None
    points: int
    shares: int
    audience: AudienceKind
    segment_id: uuid.UUID | None
    message: str
    state: PacketState
    created_at: datetime
    expires_at: datetime
    returned_points: int = 0
    settled_at: datetime | None = None


def state_now(packet: Packet, grabbed: int, now: datetime) -> PacketState:
    """The state as people see it: an open packet with every share taken is exhausted; past its deadline, the
    return job's turn (expired, whatever it finds left)."""
    if packet.state is not PacketState.OPEN:
        return packet.state
    if grabbed >= packet.shares:
        return PacketState.EXHAUSTED
    if now >= packet.expires_at:
        return PacketState.EXPIRED
    return PacketState.OPEN


def judge_grab(packet: Packet, member_id: uuid.UUID, now: datetime, *, via_link: bool, in_audience: bool) -> None:
    """Raise the reason a member may not grab this packet now; nothing when it may try for a share.

    Who it is for is answered before whether any is left, so that a stranger learns nothing of the packet.
    """
    if packet.creator_member == member_id:
        raise NotInAudienceError("you cannot grab your own red packet: it is for others")
    if packet.audience is AudienceKind.LINK and not via_link:
        raise NotInAudienceError("this red packet opens with its link only: ask its sender for the link")
    if packet.audience is AudienceKind.FRIENDS and not in_audience:
        raise NotInAudienceError("this red packet is for the friends its sender chose, and you are not among them")
    if packet.audience is AudienceKind.SEGMENT and not in_audience:
        raise NotInAudienceError("this red packet is for the members of a segment, and you are not among them")
    check_open(packet, packet.state, now)


def check_open(packet: Packet, state: PacketState, now: datetime) -> None:
    """Raise why a packet in `state` gives no more shares at `now` (a grab checks again under the packet's lock)."""
    if state is PacketState.EXHAUSTED:
        raise PacketExhaustedError(packet.shares)
    if state is PacketState.CLOSED:
        raise PacketGoneError("its sender closed this red packet; what was left went back to them")
    if state is PacketState.EXPIRED or now >= packet.expires_at:
        raise PacketGoneError(
            f"this red packet closed at {packet.expires_at.isoformat()}; what was left goes back to its sender"
        )


# --- moving the points ---------------------------------------------------------------------------------------


def fund_from_member(book: Book, packet_id: uuid.UUID, member: str, packet: str, points: int, at: datetime) -> None:
    """The member's lots (soonest expiry first) move into the packet, keeping their dates and issuer."""
    memo = {"packet_id": str(packet_id)}
    move_lots(book, cause=packet_id, leg="fund", debit=member, credit=packet, amount=points,
              reason="red_packet_funding", at=at, memo=memo)  # fmt: skip


def fund_from_budget(
    book: Book, packet_id: uuid.UUID, budget: str, packet: str, points: int, at: datetime, lot_validity: timedelta,
    activity: str,
) -> Transfer:  # fmt: skip
    """One lot from the activity's budget, valid as the activity's grants are, issued by the budget."""
    return book.transfer(
        transfer_id=transfer_id(packet_id, "fund"),
        debit=budget,
        credit=packet,
        amount=points,
        reason="red_packet_funding",
        cause_event_id=packet_id,
        occurred_at=at,
        memo={"packet_id": str(packet_id), "activity": activity, "issuer": budget},
        lot_expires_at=at + lot_validity,
        lot_issuer=budget,
    )


def grab(
    book: Book, packet_id: uuid.UUID, cause: uuid.UUID, packet: str, member: str, points: int, at: datetime,
    message: str,
) -> list[Transfer]:  # fmt: skip
    """A share moves from the packet's lots to the grabber."""
    memo = {"packet_id": str(packet_id), "message": message}
    return move_lots(book, cause=cause, leg="grab", debit=packet, credit=member, amount=points,
                     reason="red_packet_grab", at=at, memo=memo)  # fmt: skip


def give_back(book: Book, packet_id: uuid.UUID, packet: str, source: str, at: datetime) -> int:
    """Everything left in the packet goes back to its source, lot by lot; the points returned."""
    left = book.account(packet).posted
    if left > 0:
        move_lots(book, cause=packet_id, leg="return", debit=packet, credit=source, amount=left,
                  reason="red_packet_return", at=at, memo={"packet_id": str(packet_id)})  # fmt: skip
    return left


def settled_state(returned: int, reason: PacketState) -> PacketState:
    """What a packet becomes when its rest goes back: exhausted when nothing was left, else expired or closed."""
    return PacketState.EXHAUSTED if returned == 0 else reason
