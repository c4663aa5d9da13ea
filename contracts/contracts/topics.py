"""Every topic, the events it carries, and how it is keyed (DESIGN.md, "Events").

A topic's events share one partition key so that one member's facts stay in order:
a refund never overtakes its purchase.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter

from contracts.envelope import Event
from contracts.events.cards import CardPurchasePosted, CardReversalPosted
from contracts.events.earnings import DailyEarningsSummarised
from contracts.events.erasures import MemberErased
from contracts.events.exchange import (
    CardPointsConverted,
    ExchangeConfirmed,
    ExchangeRefused,
    ExchangeRequested,
    ExchangeSettled,
)
from contracts.events.holds import (
    CaptureHold,
    HoldCaptured,
    HoldCaptureRefused,
    HoldPoints,
    HoldRejected,
    HoldReleased,
    PointsHeld,
    ReleaseHold,
)
from contracts.events.ledger import PointsCredited, PointsDebited, TransferPosted
from contracts.events.liability import EarnContractVersionAdded
from contracts.events.links import LinkCodeIssued
from contracts.events.messages import MemberMessaged
from contracts.events.offers import OfferPublished, OfferWithdrawn
from contracts.events.orders import OrderCancelled, OrderFulfilled, OrderPaymentFailed, OrderPlaced
from contracts.events.outcomes import PurchaseRefused
from contracts.events.packets import RedPacketCreated, RedPacketGrabbed, RedPacketReturned
from contracts.events.partners import PartnerPurchaseRecorded, PartnerRefundRecorded
from contracts.events.reviews import EarningHeldForReview, EarningReviewDecided
from contracts.events.segments import SegmentMembersListed
from contracts.events.stock import OfferOutOfStock
from contracts.events.tiers import TierChanged
from contracts.events.webhooks import WebhookEndpointDisabled


@dataclass(frozen=True)
class Topic:
    name: str
    events: tuple[type[Event], ...]
    key: str
    partitions: int = 12
    description: str = ""
    config: dict[str, str] = field(default_factory=dict)
    """Broker settings of the topic, e.g. retention."""
    adapter: TypeAdapter[Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        decoded: Any = self.events[0]
        if len(self.events) > 1:
            decoded = Annotated[Union[self.events], Field(discriminator="type")]  # noqa: UP007
        object.__setattr__(self, "adapter", TypeAdapter(decoded))

    @property
    def dead_letter(self) -> str:
        """Where messages go that a consumer of this topic cannot process, with the reason."""
        return f"{self.name}.dlq"

    def qualified(self, prefix: str) -> str:
        """The name on the broker; tests run in their own namespace through `prefix`."""
        return f"{prefix}{self.name}"

    def decode(self, raw: bytes | str) -> Event:
        """Parse and validate one message; raises pydantic.ValidationError with the reason."""
        event: Event = self.adapter.validate_json(raw)
        return event


PARTNER_PURCHASES = Topic(
    name="loyalty.partner-purchases.v1",
    events=(PartnerPurchaseRecorded, PartnerRefundRecorded),
    key="'<partner_id>:<customer_ref>', so a refund stays behind its purchase",
    description="Purchases and refunds that partners post to the partners service.",
)
CARD_TRANSACTIONS = Topic(
    name="loyalty.card-transactions.v1",
    events=(CardPurchasePosted, CardReversalPosted),
    key="card token",
    description="Purchases and reversals made with the bank's card, produced by the card system.",
)
LEDGER_EVENTS = Topic(
    name="loyalty.ledger-events.v1",
    events=(PointsCredited, PointsDebited),
    key="member id",
    description="Transfers the ledger committed, published through the points service's outbox.",
)

LEDGER_TRANSFERS = Topic(
    name="loyalty.ledger-transfers.v1",
    events=(TransferPosted,),
    key="the partner the transfer concerns ('ledger' when none)",
    description="Every posted transfer, through the points service's outbox; settlement is derived from it.",
)
OFFERS = Topic(
    name="loyalty.offers.v1",
    events=(OfferPublished, OfferWithdrawn),
    key="partner id",
    description="Reward offers partners publish; the redemption service builds the catalog from them.",
    # Kept forever, so that a new catalog can be rebuilt from the start of the topic.
    config={"retention.ms": "-1"},
)
HOLD_COMMANDS = Topic(
    name="loyalty.hold-commands.v1",
    events=(HoldPoints, CaptureHold, ReleaseHold),
    key="member id, so one member's holds are applied in order",
    description="Two-phase transfer commands from the redemption service to the ledger.",
)
HOLD_RESULTS = Topic(
    name="loyalty.hold-results.v1",
    events=(PointsHeld, HoldRejected, HoldCaptured, HoldReleased, HoldCaptureRefused),
    key="member id",
    description="What the ledger did with each hold command, and holds it released on expiry.",
)
REDEMPTION_ORDERS = Topic(
    name="loyalty.redemption-orders.v1",
    events=(OrderPlaced, OrderFulfilled, OrderCancelled, OrderPaymentFailed),
    key="member id",
    description="Each step of a redemption order.",
)

LINK_CODES = Topic(
    name="loyalty.link-codes.v1",
    events=(LinkCodeIssued,),
    key="the identifier: '<partner_id>:<customer_ref>', or the card token",
    description="One-time link codes (their hashes) that an identifier's owner issued, for the points service.",
)

MEMBER_TIERS = Topic(
    name="loyalty.member-tiers.v1",
    events=(TierChanged,),
    key="member id",
    description="Each change of a member's tier, from the points service's outbox (redemption prices by tier).",
    # Kept forever, so that a new reader can rebuild every member's tier from the start of the topic.
    config={"retention.ms": "-1"},
)

RED_PACKETS = Topic(
    name="loyalty.red-packets.v1",
    events=(RedPacketCreated, RedPacketGrabbed, RedPacketReturned),
    key="packet id, so that a packet's grabs and its return stay in order",
    description="Red packets created, grabbed and returned, from the points service's outbox.",
)

DAILY_EARNINGS = Topic(
    name="loyalty.daily-earnings.v1",
    events=(DailyEarningsSummarised,),
    key="member id",
    description="Each member's earnings of each finished programme day, from the points service's outbox (pushes).",
)

EARNING_REVIEWS = Topic(
    name="loyalty.earning-reviews.v1",
    events=(EarningHeldForReview, EarningReviewDecided),
    key="member id (the identifier while none is linked), so a review's hold and decision stay in order",
    description="Earnings the velocity rules held for review, and each review's release, rejection or "
    "cancellation, from the points service's outbox.",
)
MEMBER_MESSAGES = Topic(
    name="loyalty.member-messages.v1",
    events=(MemberMessaged,),
    key="member id",
    description="Targeted messages about reward activities, from the points service's outbox, for the bank's "
    "messaging systems (never to a held-out member).",
)

SEGMENT_MEMBERS = Topic(
    name="loyalty.segment-members.v1",
    events=(SegmentMembersListed,),
    key="segment id, so a publication's parts stay in order",
    description="The members of segments ops published, from the points service's outbox (redemption prices "
    "by segment).",
    # Kept forever, so that a new reader finds every segment's latest publication from the start of the topic.
    config={"retention.ms": "-1"},
)

# Webhooks to partners: the facts the partners service tells partners about, and what became of an endpoint.
PURCHASE_OUTCOMES = Topic(
    name="loyalty.purchase-outcomes.v1",
    events=(PurchaseRefused,),
    key="partner id",
    description="Partner purchases and refunds the points service refused (dead-lettered), from its outbox.",
)
OFFER_STOCK = Topic(
    name="loyalty.offer-stock.v1",
    events=(OfferOutOfStock,),
    key="partner id",
    description="Offers whose last unit an order reserved, from the redemption service's outbox.",
)
PARTNER_WEBHOOKS = Topic(
    name="loyalty.partner-webhooks.v1",
    events=(WebhookEndpointDisabled,),
    key="partner id",
    description="Webhook endpoints the partners service disabled after a day of failed deliveries, from its outbox.",
)

# Points exchange: card points in from the card system; alliance points out to partner programmes.
CARD_POINTS_EXCHANGES = Topic(
    name="loyalty.card-points-exchanges.v1",
    events=(CardPointsConverted,),
    key="card token",
    description="Card reward points the card system debited, to be credited as alliance points (points exchange).",
)
POINTS_EXCHANGES = Topic(
    name="loyalty.points-exchanges.v1",
    events=(ExchangeRequested, ExchangeSettled),
    key="partner id, so one exchange's request stays ahead of its settlement",
    description="Exchanges of alliance points into a partner programme's units, from the points service's outbox.",
)
EXCHANGE_DECISIONS = Topic(
    name="loyalty.exchange-decisions.v1",
    events=(ExchangeConfirmed, ExchangeRefused),
    key="member id",
    description="What partners decided on exchanges (confirmed, refused), from the partners service's outbox.",
)

# Liability: partners' earn contract versions, so that the points service values points at their issue price.
PARTNER_CONTRACTS = Topic(
    name="loyalty.partner-contracts.v1",
    events=(EarnContractVersionAdded,),
    key="partner id, so that one partner's versions stay in order",
    description="Every version of every partner's earn contract, from the partners service's outbox (the points "
    "service values its liability at their issue prices).",
    # Kept forever, so that a new reader finds every version from the start of the topic.
    config={"retention.ms": "-1"},
)

# Data rights: members' erasures, for the services that keep copies of their personal data.
MEMBER_ERASURES = Topic(
    name="loyalty.member-erasures.v1",
    events=(MemberErased,),
    key="member id",
    description="Members whose personal data the points service replaced with pseudonyms, from its outbox (the "
    "partners and redemption services erase their copies). No personal value travels in it.",
    # Kept forever, so that a service restored from an old backup, or a new one, erases what it holds again.
    config={"retention.ms": "-1"},
)

ALL_TOPICS: tuple[Topic, ...] = (
    PARTNER_PURCHASES,
    CARD_TRANSACTIONS,
    LEDGER_EVENTS,
    LEDGER_TRANSFERS,
    OFFERS,
    HOLD_COMMANDS,
    HOLD_RESULTS,
    REDEMPTION_ORDERS,
    LINK_CODES,
    DAILY_EARNINGS,
    RED_PACKETS,
    MEMBER_TIERS,
    SEGMENT_MEMBERS,
    MEMBER_MESSAGES,
    EARNING_REVIEWS,
    PURCHASE_OUTCOMES,
    OFFER_STOCK,
    PARTNER_WEBHOOKS,
    CARD_POINTS_EXCHANGES,
    POINTS_EXCHANGES,
    EXCHANGE_DECISIONS,
    PARTNER_CONTRACTS,
    MEMBER_ERASURES,
)
