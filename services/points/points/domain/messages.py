"""Targeted messages: one per targeted member of an activity, on the channel that member answers, and what the
messaging systems report back.

Rules in plain words:
- An activity aimed at a segment messages each of its targeted members once, when it is live (at once when it is
  activated, at its start when it was scheduled); never a member of the holdout, who must not hear of it.
- The message id derives from the activity and the member: a second run, or two processes at once, send nothing
  twice.
- The channel is the member's own preference, else the channel on which it answered best (opened or clicked the
  largest share of its earlier messages, exactly), else, when no channel is best on its own (no history, or a tie),
  the programme's default.
- A callback says a message was delivered, opened, clicked, or failed, at a time. Each time kept is the earliest
  reported; a later step implies the earlier ones (a click was opened and delivered, at the latest when clicked),
  whatever order the callbacks arrive in, so delivered <= opened <= clicked always holds. A failure does not undo
  a delivery: the message's state is its furthest step (clicked, opened, delivered, failed, sent).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from fractions import Fraction

MESSAGE_CHANNELS = ("app", "sms", "wechat", "branch")
"""The channels the bank's messaging systems deliver on (contracts.events.attribution.MessageChannel)."""
MAX_CALLBACKS = 1000
_MESSAGE_IDS = uuid.UUID("0f7f6d1e-52a4-4c43-9f47-3d8b2c51a9e0")  # fixed forever: every message id derives from it


class CallbackEvent(StrEnum):
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    FAILED = "failed"


def message_id(activity_id: uuid.UUID, member_id: uuid.UUID) -> uuid.UUID:
    """The one message an activity sends a member."""
    return uuid.uuid5(_MESSAGE_IDS, f"{activity_id}\x1f{member_id}")


def campaign_ref(activity_id: uuid.UUID) -> str:
    return f"activity-{activity_id}"


@dataclass(frozen=True)
class ChannelRecord:
    """A member's earlier messages on one channel, and how many it opened or clicked."""

    channel: str
    sent: int
    answered: int


@dataclass(frozen=True)
class ChannelChoice:
    channel: str
    chosen_by: str
    """preference, history or default."""


def choose_channel(preferred: str | None, history: Iterable[ChannelRecord], default: str) -> ChannelChoice:
    """The member's preference; else its best answered channel when one is best alone; else the default."""
    if default not in MESSAGE_CHANNELS:
        raise ValueError(f"the default channel must be one of {', '.join(MESSAGE_CHANNELS)}, not {default!r}")
    if preferred is not None:
        return ChannelChoice(preferred, "preference")
    rates = {r.channel: Fraction(r.answered, r.sent) for r in history if r.sent > 0 and r.channel in MESSAGE_CHANNELS}
    best = max(rates.values(), default=Fraction(0))
    leaders = [channel for channel, rate in rates.items() if rate == best]
    if best > 0 and len(leaders) == 1:
        return ChannelChoice(leaders[0], "history")
    return ChannelChoice(default, "default")


@dataclass(frozen=True)
class MessageText:
    template: str
    title: str
    body: str


def message_text(name: str, kind: str, rules: Mapping[str, object], ends_at: datetime | None) -> MessageText:
    """What to tell a member about an activity, in the programme's words; never its balance or anything personal."""
    until = f" until {ends_at:%Y-%m-%d %H:%M} UTC" if ends_at is not None else ""
    scope = rules.get("scope")
    where = ""
    if isinstance(scope, Mapping) and scope.get("partner_id"):
        where = f" at {scope['partner_id']}"
    bodies = {
        "multiplier": f"Earn {rules.get('multiplier')}x points{where}{until}.",
        "spend_threshold": f"Reach the spending goal{where} and get {rules.get('bonus_points')} bonus points{until}.",
        "first_purchase": f"Your first purchase at {rules.get('partner_id')} earns {rules.get('bonus_points')} "
        f"bonus points{until}.",
        "limited_claim": f"Claim {rules.get('claim_points')} points while they last{until}.",
        "referral": f"Invite a friend: you get {rules.get('referrer_points')} points when they first buy{until}.",
    }
    return MessageText(f"activity_{kind}", name[:200], bodies.get(kind, f"{name}{until}.")[:500])


# --- callbacks --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Callback:
    message_id: uuid.UUID
    event: CallbackEvent
    at: datetime


@dataclass(frozen=True)
class Reported:
    """The earliest time of each step reported for one message (None: not reported, nor implied)."""

    delivered_at: datetime | None = None
    opened_at: datetime | None = None
    clicked_at: datetime | None = None
    failed_at: datetime | None = None

    def merged(self, other: Reported) -> Reported:
        return Reported(*(_earliest(a, b) for a, b in zip(self.times, other.times, strict=True)))

    @property
    def times(self) -> tuple[datetime | None, datetime | None, datetime | None, datetime | None]:
        return (self.delivered_at, self.opened_at, self.clicked_at, self.failed_at)

    @property
    def state(self) -> str:
        for name, at in (("clicked", self.clicked_at), ("opened", self.opened_at),
                         ("delivered", self.delivered_at), ("failed", self.failed_at)):  # fmt: skip
            if at is not None:
                return name
        return "sent"


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def reported(callback: Callback) -> Reported:
    """What one callback says, with what it implies: a click was opened and delivered, an open delivered."""
    at = callback.at
    if callback.event is CallbackEvent.CLICKED:
        return Reported(delivered_at=at, opened_at=at, clicked_at=at)
    if callback.event is CallbackEvent.OPENED:
        return Reported(delivered_at=at, opened_at=at)
    if callback.event is CallbackEvent.DELIVERED:
        return Reported(delivered_at=at)
    return Reported(failed_at=at)


def fold_callbacks(callbacks: Iterable[Callback]) -> dict[uuid.UUID, Reported]:
    """Per message, the earliest time of each step its callbacks report, in any order: one update per message."""
    folded: dict[uuid.UUID, Reported] = {}
    for callback in callbacks:
        seen = folded.get(callback.message_id)
        now = reported(callback)
        folded[callback.message_id] = now if seen is None else seen.merged(now)
    return folded
