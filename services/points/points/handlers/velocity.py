"""Velocity rules in the earn batch (load the counts, hold, write what it counted and the reviews it opened),
the rules ops put, and the per-day counts that refuse gifts and holds (points/domain/velocity.py)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from contracts.events.reviews import EarningHeldForReview, EarningHeldPayload
from contracts.money import Money
from loyalty_runtime import audit
from loyalty_runtime.auth import Principal
from loyalty_runtime.outbox import OutboxMessage
from loyalty_runtime.service import ServiceShell
from loyalty_runtime.telemetry import inject_context
from points.adapters.store import PointsStore, Transaction
from points.adapters.velocity_store import NewReview, VelocitySql
from points.domain.earning import Earn, EarnPlan, Held
from points.domain.ledger import AccountKind, kind_of, member_of, transfer_id
from points.domain.velocity import VelocityRules, VelocityScreen, amount_scope, day_bucket, hour_bucket, scopes_of
from points.handlers.reviews import cancelled_messages, review_key

SOURCE = "points"


class RulesCache:
    """The current rules, read from the database and kept for a few seconds (like the card rates)."""

    def __init__(self, store: Callable[[], PointsStore], ttl_seconds: float = 5.0) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._rules: VelocityRules | None = None
        self._loaded_at = 0.0

    async def get(self) -> VelocityRules:
        if self._rules is None or time.monotonic() - self._loaded_at > self._ttl:
            self._rules = (await VelocitySql(self._store().pool).latest_rules())[0]
            self._loaded_at = time.monotonic()
        return self._rules

    def invalidate(self) -> None:
        self._rules = None


def rules_cache(shell: ServiceShell) -> RulesCache:
    """The service's one cache of the rules, shared by its earn consumers and the routes that change them."""
    found = getattr(shell.app.state, "velocity_rules", None)
    if found is None:
        found = shell.app.state.velocity_rules = RulesCache(lambda: PointsStore(shell.pool))
    assert isinstance(found, RulesCache)
    return found


# --- the earn batch -----------------------------------------------------------------------------------------


async def screen_for(
    tx: Transaction, rules: VelocityRules | None, earns: Sequence[Earn], holders: dict[str, str]
) -> VelocityScreen | None:
    """The batch's screen with the counts it needs (one statement), or None when no earning rule is on."""
    if rules is None or not rules.screens_earnings or not earns:
        return None
    pairs = [(f, holders[f.identifier]) for f in earns]
    scopes = sorted({s for f, h in pairs for rule, s in scopes_of(f, h) if getattr(rules, rule).active})
    amounts = sorted({amount_scope(f, h) for f, h in pairs}) if rules.unusual_factor is not None else []
    members = sorted({member_of(h) for _f, h in pairs if kind_of(h) is AccountKind.MEMBER})
    today = day_bucket(min(f.occurred_at for f in earns))
    loaded = await VelocitySql(tx.conn).counts(
        scopes, sorted({day_bucket(f.occurred_at) for f in earns}), sorted({hour_bucket(f.occurred_at) for f in earns}),
        amounts, (today - timedelta(days=rules.unusual_days), today),
        members if rules.new_member_days is not None else [],
    )  # fmt: skip
    return VelocityScreen(rules, loaded.counts, loaded.trailing, loaded.joined)


def held_messages(topic: str, plan: EarnPlan, lot_validity: timedelta) -> tuple[list[NewReview], list[OutboxMessage]]:
    """The reviews the batch opened and their EarningHeldForReview events."""
    now = datetime.now(UTC)
    reviews = [_review(h, lot_validity) for h in plan.held]
    headers = inject_context({})
    messages = []
    for r in reviews:
        event = EarningHeldForReview(
            event_id=transfer_id(r.review_id, "held"), occurred_at=now, source=SOURCE, correlation_id=r.event_id,
            causation_id=r.event_id,
            payload=EarningHeldPayload(
                review_id=r.review_id, member_id=r.member_id, identifier=r.identifier, partner_id=r.partner_id,
                source_key=r.source_key, amount=Money(amount_minor=r.amount_minor, currency=r.currency),
                points=r.points, rule=r.rule, detail=r.detail[:500], held_at=now,
            ),
        )  # fmt: skip
        messages.append(OutboxMessage(topic, review_key(r.member_id, r.identifier), event.model_dump_json().encode(),
                                      headers))  # fmt: skip
    return reviews, messages


def _review(held: Held, lot_validity: timedelta) -> NewReview:
    f = held.fact
    member = member_of(held.holder) if kind_of(held.holder) is AccountKind.MEMBER else None
    return NewReview(
        transfer_id(f.event_id, "review"), f.source_key, f.event_id, f.identifier, member, f.partner_id,
        f.issuer_account, f.amount_minor, f.currency, f.points, held.finding.rule, held.finding.detail,
        f.occurred_at, f.occurred_at + lot_validity,
    )  # fmt: skip


async def save_screening(
    tx: Transaction, screen: VelocityScreen | None, reviews: Sequence[NewReview], plan: EarnPlan, topic: str
) -> None:
    """After the earnings are saved: the reviews opened, those refunds cancelled, and what the batch counted."""
    sql = VelocitySql(tx.conn)
    await sql.open_reviews(reviews)
    cancelled = await sql.cancel_reviews([e.source_key for e in plan.cancelled], datetime.now(UTC))
    await tx.enqueue(cancelled_messages(topic, cancelled))
    if screen is not None:
        await sql.add_counts(screen.added)


# --- ops: the rules -----------------------------------------------------------------------------------------


async def current_rules(store: PointsStore) -> tuple[VelocityRules, str | None, datetime | None]:
    return await VelocitySql(store.pool).latest_rules()


async def put_rules(store: PointsStore, rules: VelocityRules, caller: Principal) -> VelocityRules:
    """A new version (the same rules as the current ones change nothing), audited with what it replaced."""
    rules.validate()
    async with store.transaction() as tx:
        sql = VelocitySql(tx.conn)
        await sql.lock_rules()
        previous, _by, _at = await sql.latest_rules()
        if previous.to_json() == rules.to_json():
            return previous
        made = replace(rules, version=previous.version + 1)
        await sql.insert_rules(made, caller.subject)
        await audit.record(tx.conn, audit.AuditEntry(
            actor=caller.subject, role=caller.role.value, action="velocity_rules.set",
            subject=f"velocity_rules:{made.version}", before=previous.to_json() if previous.version else None,
            after=made.to_json(),
        ))  # fmt: skip
    return made


# --- gifts and redemptions ----------------------------------------------------------------------------------


def today_utc(now: datetime) -> datetime:
    return day_bucket(now.astimezone(UTC))


async def gifts_today(tx: Transaction, sender: uuid.UUID, now: datetime) -> int:
    return await VelocitySql(tx.conn).gifts_since(sender, today_utc(now))


async def holds_today(tx: Transaction, members: Sequence[uuid.UUID], now: datetime) -> dict[uuid.UUID, int]:
    return await VelocitySql(tx.conn).holds_since(members, today_utc(now))
