"""Apply a batch of earn facts (purchases, refunds, card transactions) in one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson

from contracts.envelope import Event
from contracts.events.cards import CardPurchasePosted, CardReversalPosted
from contracts.events.partners import PartnerPurchaseRecorded, PartnerRefundRecorded
from loyalty_runtime.inbox import first_copies
from loyalty_runtime.outbox import OutboxMessage
from points.adapters.activities_store import ActivitiesSql
from points.adapters.store import PointsStore, Transaction
from points.domain.card_rates import CardRates, points_for
from points.domain.earning import Earn, Earning, EarnListener, EarnPlan, Reverse, holder_of_earning
from points.domain.ledger import (
    BREAKAGE,
    CARD_ISSUED,
    PROGRAMME,
    REVIEW_PENDING,
    Account,
    AccountKind,
    Book,
    kind_of,
    member_account,
    member_of,
    partner_issued_account,
    receivable_account,
    unclaimed_account,
)
from points.domain.tiers import TierSets
from points.domain.velocity import VelocityRules
from points.handlers.activities import EarnRewards
from points.handlers.ledger_events import LedgerEventWriter, post_changes
from points.handlers.tiers import DEFAULT_ZONE, earn_tiers, needs_programme, save_earn_tiers, tier_sets_for
from points.handlers.velocity import held_messages, save_screening, screen_for

Fact = Earn | Reverse


class UnprocessableEventError(Exception):
    """A valid message the ledger cannot act on; it goes to the dead-letter topic with this reason."""


def partner_identifier(partner_id: str, customer_ref: str) -> str:
    return f"partner:{partner_id}:{customer_ref}"


def card_identifier(card_token: str) -> str:
    return f"card:{card_token}"


def to_fact(event: Event, rates: CardRates) -> Fact:
    """What an incoming event means to the ledger."""
    if isinstance(event, PartnerPurchaseRecorded):
        p = event.payload
        if p.points is None:
            raise UnprocessableEventError("purchase without points: the partners service computes them at intake")
        return Earn(
            event.event_id, f"partner:{p.partner_id}:{p.purchase_id}", partner_identifier(p.partner_id, p.customer_ref),
            partner_issued_account(p.partner_id), p.amount.amount_minor, p.amount.currency, p.points,
            event.occurred_at, "partner_purchase",
            {"partner_id": p.partner_id, "purchase_id": p.purchase_id, "amount_minor": p.amount.amount_minor,
             "currency": p.amount.currency, "category": p.category,
             **({"attribution": p.attribution.model_dump(exclude_none=True)} if p.attribution else {})},
            "partner", p.partner_id, p.category, None,
        )  # fmt: skip
    if isinstance(event, PartnerRefundRecorded):
        r = event.payload
        return Reverse(
            event.event_id, f"partner:{r.partner_id}:{r.purchase_id}", r.amount.amount_minor, r.amount.currency,
            event.occurred_at, "partner_refund",
            {"partner_id": r.partner_id, "refund_id": r.refund_id, "purchase_id": r.purchase_id,
             "amount_minor": r.amount.amount_minor, "currency": r.amount.currency},
        )  # fmt: skip
    if isinstance(event, CardPurchasePosted):
        c = event.payload
        rate = rates.rate_for(c.merchant_category_code, event.occurred_at)
        return Earn(
            event.event_id, f"card:{c.transaction_id}", card_identifier(c.card_token), CARD_ISSUED,
            c.amount.amount_minor, c.amount.currency, points_for(c.amount.amount_minor, c.amount.currency, rate),
            event.occurred_at, "card_purchase",
            {"transaction_id": c.transaction_id, "merchant_name": c.merchant_name,
             "merchant_category_code": c.merchant_category_code, "amount_minor": c.amount.amount_minor,
             "currency": c.amount.currency, "rate": str(rate),
             **({"attribution": c.attribution.model_dump(exclude_none=True)} if c.attribution else {})},
            "card", None, None, c.merchant_category_code,
        )  # fmt: skip
    if isinstance(event, CardReversalPosted):
        v = event.payload
        return Reverse(
            event.event_id, f"card:{v.original_transaction_id}", v.amount.amount_minor, v.amount.currency,
            event.occurred_at, "card_reversal",
            {"transaction_id": v.transaction_id, "original_transaction_id": v.original_transaction_id,
             "amount_minor": v.amount.amount_minor, "currency": v.amount.currency},
        )  # fmt: skip
    raise UnprocessableEventError(f"the ledger does not take {type(event).__name__} events")


@dataclass
class BatchOutcome:
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1


def holder_of(identifier: str, member: uuid.UUID | None) -> str:
    return member_account(member) if member is not None else unclaimed_account(identifier)


async def apply_earn_batch(
    store: PointsStore,
    topic: str,
    facts: Sequence[Fact],
    correlations: dict[uuid.UUID, uuid.UUID],
    events: LedgerEventWriter,
    lot_validity: timedelta,
    zone: ZoneInfo = DEFAULT_ZONE,
    rules: VelocityRules | None = None,
) -> BatchOutcome:
    """Apply each fact once, in order: the inbox claim, transfers, lots and ledger events share one transaction.

    Lock order (the same in every handler, so that concurrent work never deadlocks): the batch's
    purchases (source keys), the tier set (shared), identifiers, activities, then accounts, each in sorted
    order. `zone` is the programme's (settings.programme_zone): the days its members' qualifying points count on.
    `rules` are the velocity rules that may hold purchases for review (points/handlers/velocity.py); None: none.
    """
    outcome = BatchOutcome()
    async with store.transaction() as tx:
        fresh = await tx.claim_inbox(topic, [f.event_id for f in facts])
        if len(fresh) < len(facts):
            outcome.counts["duplicate_delivery"] = len(facts) - len(fresh)
        facts = first_copies(facts, fresh, lambda f: f.event_id)
        if not facts:
            return outcome
        # A purchase and its refund on two processes at once: the later one waits, then sees the earlier.
        await tx.lock_purchases(f.source_key for f in facts)
        tier_sets = await tier_sets_for(tx, [f for f in facts if isinstance(f, Earn)])
        screening = rules is not None and rules.screens_earnings
        batch = await _load(tx, facts, lot_validity, tier_sets, screening)
        screen = await screen_for(tx, rules, batch.earns, batch.holders)
        tiers = await earn_tiers(
            tx, tier_sets, batch.book, batch.earnings, batch.earns, batch.holders, zone, lot_validity
        )
        batch.rewards.tier_of = tiers.tier_of
        listeners = _Listeners((tiers, batch.rewards))
        plan = EarnPlan(batch.book, batch.holders, batch.earnings, batch.parked, lot_validity, listeners, screen=screen)
        await batch.rewards.start(batch.book)
        for fact in facts:
            outcome.add(plan.earn(fact) if isinstance(fact, Earn) else plan.reverse(fact))
        tiers.finish()
        await tx.save_earnings(
            plan.new_earnings, {f.source_key: f for f in batch.earns}, list(plan.changed_earnings.values())
        )
        await tx.park(plan.newly_parked)
        await tx.unpark(plan.unparked)
        rejected = [dead_letter(events.dead_letter_topic(topic), fact, reason) for fact, reason in plan.rejected]
        reviews, held = held_messages(events.reviews_topic, plan, lot_validity)
        await post_changes(tx, batch.book, events, correlations=correlations, extra=rejected + held)
        await batch.rewards.save(datetime.now(UTC))
        await save_earn_tiers(tx, tiers, events.tiers_topic)
        await save_screening(tx, screen, reviews, plan, events.reviews_topic)
    return outcome


@dataclass(frozen=True)
class _Listeners:
    """The batch's listeners, told in order: tiers first (an activity may ask a purchase's tier), then rewards."""

    each: tuple[EarnListener, ...]

    def earned(self, fact: Earn, holder: str) -> None:
        for listener in self.each:
            listener.earned(fact, holder)

    def reversed(self, fact: Reverse, earning: Earning, refunded_before: int) -> None:
        for listener in self.each:
            listener.reversed(fact, earning, refunded_before)


@dataclass
class _Batch:
    earns: list[Earn]
    earnings: dict[str, Earning]
    parked: dict[str, list[Reverse]]
    holders: dict[str, str]
    rewards: EarnRewards
    book: Book


async def _load(
    tx: Transaction, facts: Sequence[Fact], lot_validity: timedelta, tier_sets: TierSets, screening: bool = False
) -> _Batch:
    """Read and lock what the batch touches: earnings, parked refunds, identifiers, activities, accounts, lots.

    `screening`: velocity rules may hold purchases, whose points then go to the suspense account (shared).
    """
    earns = [f for f in facts if isinstance(f, Earn)]
    earnings = await tx.earnings(f.source_key for f in facts)
    parked = await tx.parked(f.source_key for f in earns)

    links = await tx.lock_identifiers([f.identifier for f in earns] + [e.identifier for e in earnings.values()])
    holders = {identifier: holder_of(identifier, member) for identifier, member in links.items()}
    refunds = {f.source_key for f in facts if isinstance(f, Reverse)}
    rewards = EarnRewards(ActivitiesSql(tx.conn), lot_validity)
    rewarded = await rewards.prepare(earns, links, [e for k, e in earnings.items() if k in refunds])
    issuers = {f.issuer_account for f in earns} | {e.issuer_account for e in earnings.values()}

    # Accounts a reversal may debit need their lots; a member's may need its receivable (clawback).
    reversed_keys = refunds | set(parked)
    identifier_of = {f.source_key: f.identifier for f in earns} | {k: e.identifier for k, e in earnings.items()}
    debited = {_holder(k, earnings, holders, identifier_of) for k in reversed_keys if k in identifier_of}
    debited |= rewarded.debited
    debtors = {receivable_account(member_of(h)) for h in debited if kind_of(h) is AccountKind.MEMBER}
    suspense = {REVIEW_PENDING} if screening else set()
    await tx.ensure_accounts(set(holders.values()) | issuers | debtors | debited | suspense)
    receivables = {receivable_account(m) for m in links.values() if m is not None} | debtors
    breakage = {BREAKAGE} if any(kind_of(h) is AccountKind.UNCLAIMED for h in debited) else set()
    programme = {PROGRAMME} if needs_programme(tier_sets, earnings.values()) else set()  # tier bonuses
    wanted = set(holders.values()) | debited | issuers | receivables | breakage | rewarded.locked | programme | suspense
    accounts, owing = await _lock_accounts(tx, wanted, credit_only=set(holders.values()) - debited - rewarded.locked)
    book = Book(accounts, await tx.live_lots(debited | owing))
    book.mark_lots_loaded(debited | owing)
    return _Batch(earns, earnings, parked, holders, rewards, book)


async def _lock_accounts(tx: Transaction, wanted: set[str], credit_only: set[str]) -> tuple[list[Account], set[str]]:
    """The batch's accounts, and the members among them who owe (a clawback), whose earnings repay it.

    The holders this batch only credits are read without their lock (Transaction.lock_accounts); a holder who
    owes is debited by the repayment, so its account is locked after all, once its receivable shows the debt.
    """
    accounts = await tx.lock_accounts(wanted, credit_only=credit_only)
    owing = {
        member_account(member_of(a.account_id)) for a in accounts if a.kind is AccountKind.RECEIVABLE and a.posted < 0
    }
    if relock := owing & credit_only:
        locked = await tx.lock_accounts(relock)
        accounts = [a for a in accounts if a.account_id not in relock] + locked
    return accounts, owing


def _holder(
    source_key: str, earnings: dict[str, Earning], holders: dict[str, str], identifier_of: dict[str, str]
) -> str:
    """The account a reversal of this purchase debits: where its points went, else its identifier's holder."""
    earning = earnings.get(source_key)
    return holder_of_earning(earning, holders) if earning is not None else holders[identifier_of[source_key]]


def dead_letter(topic: str, fact: Reverse, reason: str) -> OutboxMessage:
    """A fact the ledger accepted but cannot apply, sent on through the outbox so it cannot be lost."""
    body = {"event_id": str(fact.event_id), "source_key": fact.source_key, "amount_minor": fact.amount_minor,
            "currency": fact.currency, "occurred_at": fact.occurred_at.isoformat(), "reason": fact.reason,
            "memo": dict(fact.memo)}  # fmt: skip
    return OutboxMessage(topic, fact.source_key, orjson.dumps(body), {"dlq-reason": reason, "dlq-service": "points"})
