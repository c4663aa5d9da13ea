"""Points exchange (domain/exchange.py): card points in; alliance points out to a partner programme as holds."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from contracts.envelope import Event
from contracts.events.exchange import (
    CardPointsConverted,
    ExchangeConfirmed,
    ExchangeRefused,
    ExchangeRequested,
    ExchangeRequestedPayload,
    ExchangeSettled,
    ExchangeSettledPayload,
)
from contracts.topics import POINTS_EXCHANGES
from loyalty_runtime import audit
from loyalty_runtime.inbox import first_copies
from loyalty_runtime.outbox import OutboxMessage
from loyalty_runtime.telemetry import inject_context
from points.adapters.exchange_store import Decided, ExchangeRow, ExchangeSql, NewConversion, exchanges_of_member
from points.adapters.store import PointsStore, Transaction
from points.domain import holds as two_phase
from points.domain.days import day_of
from points.domain.exchange import (
    EXCHANGE_IN_REASON,
    EXCHANGE_OUT_REASON,
    Conversion,
    DatedRate,
    Decision,
    ExchangeProgramme,
    ExchangeRefusedError,
    ExchangeStatus,
    Quote,
    quote,
    settle,
    status_of,
)
from points.domain.holds import Hold, HoldStatus
from points.domain.ledger import CARD_POINTS_EXCHANGE, Book, member_account, partner_redeemed_account, transfer_id
from points.handlers.earn import card_identifier, holder_of
from points.handlers.ledger_events import LedgerEventWriter, post_changes
from points.handlers.members import MemberNotFoundError

SOURCE = "points"
REFUSED_BY_PARTNER = "refused_by_partner"
log = logging.getLogger(__name__)


class ExchangeIdReusedError(Exception):
    def __init__(self, exchange_id: uuid.UUID) -> None:
        super().__init__(f"exchange {exchange_id} was already asked for with other details; use a new exchange_id")


class NoExchangeProgrammeError(LookupError):
    def __init__(self, partner_id: str) -> None:
        super().__init__(f"partner {partner_id!r} has no exchange programme; GET /v1/exchange-programmes lists them")


class UnknownExchangeError(ValueError):
    """A partner's decision about an exchange this ledger never asked for (or asked of another partner)."""


@dataclass(frozen=True)
class Actor:
    subject: str
    role: str


# --- ops: rates and programmes ------------------------------------------------------------------------------


async def card_points_rates(store: PointsStore) -> list[DatedRate]:
    async with store.transaction() as tx:
        return await ExchangeSql(tx.conn).card_points_rates()


async def add_card_points_rate(store: PointsStore, rate: DatedRate, by: Actor) -> bool:
    """False when a version already starts at that moment (nothing changes)."""
    async with store.transaction() as tx:
        if not await ExchangeSql(tx.conn).add_card_points_rate(rate, by.subject):
            return False
        await audit.record(tx.conn, audit.AuditEntry(
            actor=by.subject, role=by.role, action="exchange.card_points_rate_added",
            subject=f"card-points-rate:{rate.valid_from.isoformat()}", before=None,
            after={"valid_from": rate.valid_from.isoformat(), "points_per_card_point": str(rate.rate)},
        ))  # fmt: skip
    return True


async def programmes(store: PointsStore, partner_id: str | None = None) -> list[ExchangeProgramme]:
    async with store.transaction() as tx:
        return await ExchangeSql(tx.conn).programmes(partner_id)


def _terms(p: ExchangeProgramme) -> dict[str, object]:
    return {"units_name": p.units_name, "min_points": p.min_points, "step_points": p.step_points,
            "daily_limit_points": p.daily_limit_points, "active": p.active}  # fmt: skip


async def save_programme(store: PointsStore, programme: ExchangeProgramme, by: Actor) -> ExchangeProgramme:
    """Create or change a partner's programme (its terms; rates are added apart). Audited with before and after."""
    async with store.transaction() as tx:
        sql = ExchangeSql(tx.conn)
        await sql.lock_programme(programme.partner_id)
        before = await sql.programmes(programme.partner_id)
        await sql.save_programme(programme, by.subject)
        await audit.record(tx.conn, audit.AuditEntry(
            actor=by.subject, role=by.role, action="exchange.programme_saved",
            subject=f"partner:{programme.partner_id}",
            before=_terms(before[0]) if before else None, after=_terms(programme),
        ))  # fmt: skip
        return (await sql.programmes(programme.partner_id))[0]


async def add_exchange_rate(store: PointsStore, partner_id: str, rate: DatedRate, by: Actor) -> bool:
    """False when a version already starts at that moment. Raises NoExchangeProgrammeError."""
    async with store.transaction() as tx:
        sql = ExchangeSql(tx.conn)
        if not await sql.lock_programme(partner_id):
            raise NoExchangeProgrammeError(partner_id)
        if not await sql.add_exchange_rate(partner_id, rate, by.subject):
            return False
        await audit.record(tx.conn, audit.AuditEntry(
            actor=by.subject, role=by.role, action="exchange.rate_added", subject=f"partner:{partner_id}",
            before=None, after={"valid_from": rate.valid_from.isoformat(), "units_per_point": str(rate.rate)},
        ))  # fmt: skip
    return True


# --- in: card points ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CardConversion:
    """A CardPointsConverted event and what it is worth (decided in the consumer's `prepare`, so a refusal
    dead-letters the one record)."""

    event: CardPointsConverted
    conversion: Conversion


async def apply_card_conversions(
    store: PointsStore, topic: str, items: Sequence[CardConversion], events: LedgerEventWriter, lot_validity: timedelta
) -> int:
    """Credit each conversion once (its request id) to the card's member, else to the card's unclaimed account."""
    async with store.transaction() as tx:
        fresh = await tx.claim_inbox(topic, [i.event.event_id for i in items])
        items = first_copies(items, fresh, lambda i: i.event.event_id)
        sql = ExchangeSql(tx.conn)
        done = await sql.known_conversions(i.event.payload.request_id for i in items)
        items = _first_requests([i for i in items if i.event.payload.request_id not in done])
        if not items:
            return 0
        links = await tx.lock_identifiers(card_identifier(i.event.payload.card_token) for i in items)
        holders = {identifier: holder_of(identifier, member) for identifier, member in links.items()}
        await tx.ensure_accounts(holders.values())
        book = Book(await tx.lock_accounts({CARD_POINTS_EXCHANGE, *holders.values()}))
        made = [_credit(book, i, holders[card_identifier(i.event.payload.card_token)], lot_validity) for i in items]
        await post_changes(tx, book, events, correlations={i.event.event_id: i.event.correlation_id for i in items})
        await sql.insert_conversions(made)  # after the transfers it names
    return len(made)


def _first_requests(items: Sequence[CardConversion]) -> list[CardConversion]:
    """One conversion per request id: a batch may carry the same request under two event ids."""
    seen: set[uuid.UUID] = set()
    kept = []
    for item in items:
        if item.event.payload.request_id not in seen:
            seen.add(item.event.payload.request_id)
            kept.append(item)
    return kept


def _credit(book: Book, item: CardConversion, holder: str, lot_validity: timedelta) -> NewConversion:
    e, c = item.event, item.conversion
    made = book.transfer(
        transfer_id=transfer_id(e.payload.request_id, "card-points-in"),
        debit=CARD_POINTS_EXCHANGE, credit=holder, amount=c.points, reason=EXCHANGE_IN_REASON,
        cause_event_id=e.event_id, occurred_at=e.occurred_at, lot_expires_at=e.occurred_at + lot_validity,
        lot_issuer=CARD_POINTS_EXCHANGE,
        memo={"issuer": CARD_POINTS_EXCHANGE, "request_id": str(e.payload.request_id), "card_points": c.card_points,
              "rate": str(c.rate.rate), "remainder": str(c.remainder)},
    )  # fmt: skip
    return NewConversion(e.payload.request_id, e.event_id, e.payload.card_token, c, holder, made.transfer_id,
                         e.occurred_at)  # fmt: skip


# --- out: a member asks ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExchangeAsk:
    exchange_id: uuid.UUID
    member_id: uuid.UUID
    partner_id: str
    points: int
    membership_number: str


@dataclass(frozen=True)
class ExchangeTerms:
    """What the request needs from the service's settings: the programme's day, how long a hold waits."""

    zone: ZoneInfo
    hold_for: timedelta
    topic_prefix: str


async def request_exchange(
    store: PointsStore, events: LedgerEventWriter, terms: ExchangeTerms, ask: ExchangeAsk, now: datetime
) -> tuple[ExchangeRow, bool]:
    """Hold the points and tell the partner; the exchange and True, or the one asked before and False."""
    async with store.transaction() as tx:
        sql = ExchangeSql(tx.conn)
        await sql.lock_exchange_id(ask.exchange_id)  # a concurrent request with this id waits, then reads this one
        existing = (await sql.exchanges([ask.exchange_id])).get(ask.exchange_id)
        if existing is not None:
            return _same_request(existing, ask), False
        programme = await _programme_for(tx, sql, ask)
        book = await _lock_member(tx, ask)
        day = day_of(now, terms.zone)
        # The member's account is locked now: concurrent requests cannot both slip under the daily limit.
        q = quote(programme, ask.points, now, await sql.exchanged_on(ask.member_id, ask.partner_id, day))
        hold = _place(book, ask, now + terms.hold_for)
        await tx.insert_holds([hold])
        await sql.insert_exchange(ask.exchange_id, ask.member_id, programme, ask.membership_number, q, day,
                                  hold.hold_id, now)  # fmt: skip
        await post_changes(tx, book, events, extra=[_requested(terms.topic_prefix, ask, programme, q, hold, now)])
        return (await sql.exchanges([ask.exchange_id]))[ask.exchange_id], True


def _same_request(existing: ExchangeRow, ask: ExchangeAsk) -> ExchangeRow:
    said = (existing.member_id, existing.partner_id, existing.points, existing.membership_number)
    if said != (ask.member_id, ask.partner_id, ask.points, ask.membership_number):
        raise ExchangeIdReusedError(ask.exchange_id)
    return existing


async def _programme_for(tx: Transaction, sql: ExchangeSql, ask: ExchangeAsk) -> ExchangeProgramme:
    if not await tx.existing_members([ask.member_id]):
        raise MemberNotFoundError(ask.member_id)
    found = await sql.programmes(ask.partner_id)
    if not found:
        raise NoExchangeProgrammeError(ask.partner_id)
    return found[0]


async def _lock_member(tx: Transaction, ask: ExchangeAsk) -> Book:
    redeemed = partner_redeemed_account(ask.partner_id)
    await tx.ensure_accounts([redeemed])
    return Book(await tx.lock_accounts([member_account(ask.member_id), redeemed]))


def _place(book: Book, ask: ExchangeAsk, expires_at: datetime) -> Hold:
    hold = Hold(transfer_id(ask.exchange_id, "exchange-hold"), ask.member_id, ask.exchange_id,
                member_account(ask.member_id), partner_redeemed_account(ask.partner_id), ask.points,
                expires_at)  # fmt: skip
    if not two_phase.place(book, hold):
        available = max(book.account(hold.debit_account).available, 0)
        raise ExchangeRefusedError("insufficient_points", f"only {available} points available to exchange")
    return hold


def _message(topic_prefix: str, event: Event, key: str) -> OutboxMessage:
    return OutboxMessage(POINTS_EXCHANGES.qualified(topic_prefix), key, event.model_dump_json().encode(),
                         inject_context({}))  # fmt: skip


def _requested(
    prefix: str, ask: ExchangeAsk, p: ExchangeProgramme, q: Quote, hold: Hold, now: datetime
) -> OutboxMessage:
    event = ExchangeRequested(
        event_id=transfer_id(ask.exchange_id, "requested"), occurred_at=now, source=SOURCE,
        correlation_id=ask.exchange_id, causation_id=None,
        payload=ExchangeRequestedPayload(
            exchange_id=ask.exchange_id, partner_id=ask.partner_id, member_id=ask.member_id,
            membership_number=ask.membership_number, points=q.points, units=q.units, units_name=p.units_name,
            units_per_point=q.rate.rate, expires_at=hold.expires_at,
        ),
    )  # fmt: skip
    return _message(prefix, event, ask.partner_id)


async def member_exchanges(store: PointsStore, member_id: uuid.UUID, limit: int) -> list[ExchangeRow]:
    return await exchanges_of_member(store.pool, member_id, limit)


# --- out: the partner decides ---------------------------------------------------------------------------------


async def apply_exchange_decisions(
    store: PointsStore, topic: str, decisions: Sequence[Event], events: LedgerEventWriter, topic_prefix: str
) -> int:
    """Capture (confirmed) or release (refused) each exchange's hold once; a decision on a settled one does nothing."""
    async with store.transaction() as tx:
        fresh = await tx.claim_inbox(topic, [d.event_id for d in decisions])
        decisions = first_copies(decisions, fresh, lambda d: d.event_id)
        if not decisions:
            return 0
        sql = ExchangeSql(tx.conn)
        found = await sql.exchanges(d.payload.exchange_id for d in decisions)  # type: ignore[attr-defined]
        for d in decisions:
            _check_known(d, found)
        holds = await tx.holds(e.hold_id for e in found.values())
        book = await _lock_for_decisions(tx, found.values())
        now = datetime.now(UTC)
        decided: list[Decided] = []
        settled: dict[uuid.UUID, Hold] = {}
        messages: list[OutboxMessage] = []
        for d in decisions:
            exchange = found[d.payload.exchange_id]  # type: ignore[attr-defined]
            hold = holds[exchange.hold_id]
            was = (hold.status, hold.void_reason)
            outcome = _decide(book, d, exchange, hold, now)
            if outcome is not None:
                if (hold.status, hold.void_reason) != was:
                    settled[hold.hold_id] = hold
                decided.append(_decided(d, now))
                messages.append(_settled(topic_prefix, d, exchange, *outcome, now))
        await sql.decide(decided)
        await post_changes(tx, book, events, extra=messages)
        await tx.settle_holds(list(settled.values()), now)
    return len(decided)


def _check_known(d: Event, found: dict[uuid.UUID, ExchangeRow]) -> None:
    p = d.payload  # type: ignore[attr-defined]
    exchange = found.get(p.exchange_id)
    if exchange is None or exchange.partner_id != p.partner_id:
        raise UnknownExchangeError(f"no exchange {p.exchange_id} was asked of partner {p.partner_id!r}")


async def _lock_for_decisions(tx: Transaction, exchanges: Iterable[ExchangeRow]) -> Book:
    rows = list(exchanges)
    members = {member_account(e.member_id) for e in rows}
    accounts = await tx.lock_accounts(members | {partner_redeemed_account(e.partner_id) for e in rows})
    book = Book(accounts, await tx.live_lots(members))
    book.mark_lots_loaded(members)
    return book


def _decide(book: Book, d: Event, exchange: ExchangeRow, hold: Hold, now: datetime) -> tuple[str, str] | None:
    """(outcome, reason) of the hold, or None when the decision changes nothing."""
    decision = Decision.CONFIRM if isinstance(d, ExchangeConfirmed) else Decision.REFUSE
    status = status_of(hold.status.value, hold.void_reason)
    memo = {"exchange_id": str(exchange.exchange_id), "hold_id": str(hold.hold_id), "units": exchange.units,
            "units_name": exchange.units_name,
            "partner_reference": d.payload.partner_reference if isinstance(d, ExchangeConfirmed) else None}  # fmt: skip
    target = settle(status, decision)
    if target is ExchangeStatus.CAPTURED:
        two_phase.capture(book, hold, now, d.event_id, reason=EXCHANGE_OUT_REASON, memo=memo)
        return "captured", ""
    if target is ExchangeStatus.REFUSED:
        two_phase.void(book, hold, REFUSED_BY_PARTNER)
        return "released", REFUSED_BY_PARTNER
    if decision is Decision.CONFIRM and status is ExchangeStatus.EXPIRED and hold.status is HoldStatus.VOIDED:
        # Confirmed in time but applied after the hold expired: capture from what the member has now, if enough.
        if d.occurred_at < hold.expires_at and _capture_late(book, hold, now, d.event_id, memo):
            return "captured", "confirmed_before_expiry"
        log.warning("exchange confirmed after its hold expired", extra={"exchange_id": str(exchange.exchange_id)})
        return "released", "expired"
    return None  # decided before: the partner's API answered 409 to the second decision


def _capture_late(book: Book, hold: Hold, now: datetime, cause: uuid.UUID, memo: dict[str, object]) -> bool:
    if book.account(hold.debit_account).available < hold.amount:
        return False
    hold.status, hold.void_reason = HoldStatus.PENDING, None
    book.reserve(hold.debit_account, hold.credit_account, hold.amount)
    two_phase.capture(book, hold, now, cause, reason=EXCHANGE_OUT_REASON, memo=memo)
    return True


def _decided(d: Event, now: datetime) -> Decided:
    if isinstance(d, ExchangeConfirmed):
        return Decided(d.payload.exchange_id, Decision.CONFIRM.value, None, d.payload.partner_reference, now)
    assert isinstance(d, ExchangeRefused)
    return Decided(d.payload.exchange_id, Decision.REFUSE.value, d.payload.reason, None, now)


def _settled(prefix: str, d: Event, e: ExchangeRow, outcome: str, reason: str, now: datetime) -> OutboxMessage:
    event = ExchangeSettled(
        event_id=transfer_id(e.exchange_id, "settled"), occurred_at=now, source=SOURCE,
        correlation_id=e.exchange_id, causation_id=d.event_id,
        payload=ExchangeSettledPayload(exchange_id=e.exchange_id, partner_id=e.partner_id, member_id=e.member_id,
                                       points=e.points, outcome=outcome, reason=reason),
    )  # fmt: skip
    return _message(prefix, event, e.partner_id)
