"""Tiers: ops put the tier set; the earn batch counts qualifying points, pays tier bonuses and upgrades at once;
reviews at the end of a tier's period, and the catch-up after a new tier set, run in chunks (points/domain/tiers.py).

Locks: a member's tier (its member_tiers row, its history) and its qualifying days change only under the lock of
the member's account (`member:<id>`, FOR UPDATE). The earn batch holds it already: handlers/earn.py's `_load` locks
every account the batch credits or debits, in id order, before the tiers are read. Reviews and the catch-up take
it in id order too (reviews skip the members a batch holds; the next run reviews them). Before any member lock,
every writer takes the tier set's lock shared, and a new tier set takes it exclusive: no member is moved with a
version that a new one replaced meanwhile, so the count of members holding a removed code is exact.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from contracts.events.tiers import TierChanged, TierChangedPayload
from loyalty_runtime.outbox import OutboxMessage
from loyalty_runtime.telemetry import inject_context
from points.adapters.store import PointsStore, Transaction
from points.adapters.tiers_store import TiersSql
from points.domain.days import day_of, start_of
from points.domain.earning import Earn, Earning
from points.domain.ledger import Book
from points.domain.tiers import (
    Direction,
    EarnTiers,
    Progress,
    Reason,
    TierChange,
    TierSet,
    TierSets,
    TierState,
    check_codes,
    implicit_state,
    judged_window,
    members_of,
    progress,
    removed_codes,
    review,
    upgrade,
)
from points.handlers.members import MemberNotFoundError

DEFAULT_ZONE = ZoneInfo("Asia/Shanghai")
"""PROGRAMME_TIMEZONE's default, for callers that do not pass the programme's zone (tests of the earn batch)."""
CHUNK = 500
"""Members per transaction of a review or catch-up run."""
SCHEDULER = "scheduler"
SOURCE = "points"


class TierSetNotFoundError(LookupError):
    def __init__(self) -> None:
        super().__init__("the programme has no tier set yet: ops put one with PUT /v1/ops/tier-set")


class TierInUseError(Exception):
    """A new tier set would leave members without the tier they hold."""

    def __init__(self, held: dict[str, int]) -> None:
        counts = ", ".join(f"{code} ({n} member{'s' if n != 1 else ''})" for code, n in sorted(held.items()))
        super().__init__(
            f"the new tier set removes tiers that members hold: {counts}; keep those codes (rename or re-price "
            "them instead), or wait until reviews move their members"
        )
        self.held = held


# --- events -------------------------------------------------------------------------------------------------


def tier_messages(topic: str, changes: Sequence[TierChange], tier_set: TierSet, zone: ZoneInfo) -> list[OutboxMessage]:
    """TierChanged of each change, keyed by member, for the outbox."""
    headers = inject_context({})
    messages = []
    for c in changes:
        event = TierChanged(
            event_id=c.event_id, occurred_at=c.at, source=SOURCE, correlation_id=c.cause_event_id or c.event_id,
            causation_id=c.cause_event_id,
            payload=TierChangedPayload(
                member_id=c.member_id, from_tier=c.from_tier, to_tier=c.to_tier, direction=c.direction.value,
                reason=c.reason.value, qualifying_points=c.qualifying_points,
                valid_until=end_of(c.valid_until, zone), changed_at=c.at, tier_set_version=c.tier_set_version,
                review_at=review_at(tier_set, c.valid_until, zone),
            ),
        )  # fmt: skip
        messages.append(OutboxMessage(topic, str(c.member_id), event.model_dump_json().encode(), headers))
    return messages


def end_of(last_day: date | None, zone: ZoneInfo) -> datetime | None:
    """The end of a last day in the programme's zone (the first moment after it), in UTC."""
    return None if last_day is None else start_of(last_day + timedelta(days=1), zone).astimezone(UTC)


def review_at(tier_set: TierSet, valid_until: date | None, zone: ZoneInfo) -> datetime | None:
    return None if valid_until is None else start_of(tier_set.review_day(valid_until), zone).astimezone(UTC)


async def _save(tx: Transaction, topic: str, changes: Sequence[TierChange], tier_set: TierSet, zone: ZoneInfo) -> None:
    await TiersSql(tx.conn).save_changes(changes)
    await tx.enqueue(tier_messages(topic, changes, tier_set, zone))


# --- the earn batch -----------------------------------------------------------------------------------------


async def tier_sets_for(tx: Transaction, earns: Sequence[Earn]) -> TierSets:
    """Take the tier set's lock shared (before any member lock) and read the versions the batch's purchases need."""
    sql = TiersSql(tx.conn)
    await sql.lock_tier_set_shared()
    since = min((f.occurred_at for f in earns), default=datetime.now(UTC))
    return await sql.versions_since(since)


def needs_programme(sets: TierSets, earnings: Iterable[Earning]) -> bool:
    """Whether the batch may move points from or to the programme account for tiers (bonuses, their refunds)."""
    return sets.latest is not None or any(e.tier_bonus > e.tier_bonus_reversed for e in earnings)


async def earn_tiers(
    tx: Transaction, sets: TierSets, book: Book, earnings: dict[str, Earning], earns: Sequence[Earn],
    holders: dict[str, str], zone: ZoneInfo, lot_validity: timedelta,
) -> EarnTiers:  # fmt: skip
    """Read, under the members' locks the batch holds, their tier history and current window's qualifying points."""
    now = datetime.now(UTC)  # after the locks: a later transaction of the same member sees a later moment
    members = members_of(holders[f.identifier] for f in earns)
    timelines: dict[uuid.UUID, list[TierChange]] = {}
    window_points: dict[uuid.UUID, int] = {}
    latest = sets.latest
    if latest is not None and members:
        sql = TiersSql(tx.conn)
        timelines = await sql.timelines(members, min(f.occurred_at for f in earns))
        first, last = latest.window(day_of(now, zone))
        sums = await sql.window_sums([(m, first, last) for m in members])
        window_points = {m: sums.get((m, first, last), 0) for m in members}
    return EarnTiers(book, sets, zone, now, lot_validity, earnings, timelines, window_points)


async def save_earn_tiers(tx: Transaction, tiers: EarnTiers, topic: str) -> None:
    """After the batch's facts: its qualifying days, upgrades and their events."""
    await TiersSql(tx.conn).add_days(tiers.days)
    latest = tiers.sets.latest
    if tiers.changes and latest is not None:
        await _save(tx, topic, tiers.changes, latest, tiers.zone)


# --- ops: the tier set --------------------------------------------------------------------------------------


async def put_tier_set(store: PointsStore, tier_set: TierSet, by: str, now: datetime) -> TierSet:
    """Store a new version (effective now); members' catch-up follows in the background or on demand. The same
    tier set as the current one changes nothing (a form sent twice) and is answered with the current version.

    Raises TierInUseError when it removes codes that members hold.
    """
    tier_set.validate()
    async with store.transaction() as tx:
        sql = TiersSql(tx.conn)
        await sql.lock_tier_set()  # waits for batches and reviews in flight; new ones wait for this
        found = await sql.latest()
        previous = found[0] if found else None
        if previous is not None and previous.to_json() == tier_set.to_json():
            return previous
        removed = removed_codes(previous, tier_set)
        held = await sql.holders(removed)
        if previous is not None and previous.base_code in removed:  # members whose tier never changed hold it
            held[previous.base_code] = held.get(previous.base_code, 0) + await sql.without_row()
        held = {code: n for code, n in held.items() if n}
        if held:
            raise TierInUseError(held)
        made = replace(tier_set, version=(previous.version if previous else 0) + 1, effective_from=now)
        await sql.insert_tier_set(made, by)
    return made


async def current_tier_set(store: PointsStore) -> TierSet:
    found = await TiersSql(store.pool).latest()
    if found is None:
        raise TierSetNotFoundError
    return found[0]


async def require_known_tiers(tx: Transaction, codes: Iterable[str] | None) -> None:
    """Raises UnknownTierError unless every code (an activity's `tiers`) is one of the current tier set's."""
    if codes is not None:
        found = await TiersSql(tx.conn).latest()
        check_codes(found[0] if found else None, codes)


async def tier_now(conn: asyncpg.Connection | asyncpg.Pool, member_id: uuid.UUID) -> str | None:
    """The member's tier code now (for a claim of an activity for some tiers only)."""
    sql = TiersSql(conn)
    state = (await sql.states([member_id])).get(member_id)
    if state is not None:
        return state.code
    found = await sql.latest()
    return implicit_state(found[0] if found else None).code


# --- reads --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberTier:
    tier_set: TierSet
    progress: Progress
    review_at: datetime | None
    history: list[TierChange]


async def member_tier(
    store: PointsStore, member_id: uuid.UUID, zone: ZoneInfo, now: datetime, limit: int
) -> MemberTier:
    """The member's tier, its progress in the windows it is judged on, and its changes (newest first)."""
    async with store.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        sql = TiersSql(conn)
        found = await sql.latest()
        if found is None:
            raise TierSetNotFoundError
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM members WHERE member_id = $1)", member_id):
            raise MemberNotFoundError(member_id)
        tier_set = found[0]
        state = (await sql.states([member_id])).get(member_id) or implicit_state(tier_set)
        today = day_of(now, zone)
        current = tier_set.window(today)
        judged = judged_window(tier_set, state)
        ranges = [(member_id, *current)] + ([(member_id, *judged)] if judged else [])
        sums = await sql.window_sums(ranges)
        seen = progress(tier_set, state, sums[(member_id, *current)], sums[(member_id, *judged)] if judged else None,
                        today)  # fmt: skip
        history = await sql.history(member_id, limit)
    return MemberTier(tier_set, seen, review_at(tier_set, state.valid_until, zone), history)


@dataclass(frozen=True)
class TierSummary:
    tier_set: TierSet
    members: int
    by_tier: dict[str | None, int]
    """Members per tier code now (None: no tier); members whose tier never changed count for the base tier."""


async def tier_summary(store: PointsStore) -> TierSummary:
    tier_set = await current_tier_set(store)
    members, rows = await TiersSql(store.pool).summary()
    by_tier: dict[str | None, int] = {code or None: n for code, n in rows.items()}
    implicit = members - sum(rows.values())
    by_tier[tier_set.base_code] = by_tier.get(tier_set.base_code, 0) + implicit
    return TierSummary(tier_set, members, by_tier)


# --- reviews and the catch-up -------------------------------------------------------------------------------


@dataclass
class ReviewOutcome:
    reviewed: int = 0
    confirmed: int = 0
    downgraded: int = 0
    upgraded: int = 0
    caught_up: list[int] = field(default_factory=list)
    """Versions of the tier set whose catch-up this run finished."""

    def count(self, changes: Sequence[TierChange], reviewed: bool) -> None:
        self.reviewed += len(changes) if reviewed else 0
        for c in changes:
            if c.direction is Direction.UPGRADE:
                self.upgraded += 1
            elif c.direction is Direction.DOWNGRADE:
                self.downgraded += 1
            else:
                self.confirmed += 1


async def run_tier_reviews(
    store: PointsStore, topic: str, zone: ZoneInfo, now: datetime, chunk: int = CHUNK
) -> ReviewOutcome:
    """Review every tier due by `now`, then catch up members whose points reach a higher tier of a new tier set.

    Each chunk of members is its own transaction; safe when several processes run it at once, and run again.
    """
    outcome = ReviewOutcome()
    while await _review_chunk(store, topic, zone, now, chunk, outcome):
        pass
    found = await TiersSql(store.pool).latest()
    if found is not None and not found[1]:
        await _catch_up(store, topic, zone, now, chunk, found[0], outcome)
    return outcome


async def _review_chunk(
    store: PointsStore, topic: str, zone: ZoneInfo, now: datetime, chunk: int, outcome: ReviewOutcome
) -> bool:
    """Review up to `chunk` members due; False when none was left that no other transaction holds."""
    today = day_of(now, zone)
    async with store.transaction() as tx:
        sql = TiersSql(tx.conn)
        await sql.lock_tier_set_shared()
        found = await sql.latest()
        if found is None:
            return False
        tier_set = found[0]
        due = await sql.due(today - timedelta(days=tier_set.grace_days), chunk)
        locked = await sql.lock_members(due, skip_locked=True) if due else []
        states = await sql.states(locked)  # read again under the lock: another run may have reviewed them
        sums = await _sums(sql, tier_set, states, today)
        changes = []
        for member, state in sorted(states.items()):
            judged = judged_window(tier_set, state)
            judged_points = sums[(member, *judged)] if judged else 0
            made = review(tier_set, member, state, judged_points, sums[(member, *tier_set.window(today))], today, now)
            if made is not None:
                changes.append(made)
        await _save(tx, topic, changes, tier_set, zone)
    outcome.count(changes, reviewed=True)
    return bool(locked)


async def _sums(
    sql: TiersSql, tier_set: TierSet, states: dict[uuid.UUID, TierState], today: date
) -> dict[tuple[uuid.UUID, date, date], int]:
    """Each member's qualifying points in its current window and in the window its review judges."""
    ranges = []
    for member, state in states.items():
        ranges.append((member, *tier_set.window(today)))
        judged = judged_window(tier_set, state)
        if judged:
            ranges.append((member, *judged))
    return await sql.window_sums(ranges)


async def _catch_up(
    store: PointsStore, topic: str, zone: ZoneInfo, now: datetime, chunk: int, tier_set: TierSet,
    outcome: ReviewOutcome,
) -> None:  # fmt: skip
    """Members whose current window already reaches a tier above theirs move there (reason tier_set_changed)."""
    window = tier_set.window(day_of(now, zone))
    above_base = [t.threshold_points for t in tier_set.tiers if t.threshold_points > 0]
    pools = TiersSql(store.pool)
    scans = []
    if above_base:
        scans.append(lambda after: pools.reaching(after, window, min(above_base), chunk))
    if tier_set.base is not None:  # members a former tier set left without a tier now hold the base tier
        scans.append(lambda after: pools.without_tier(after, chunk))
    for scan in scans:
        after = uuid.UUID(int=0)
        while found := await scan(after):
            after = found[-1][0]
            if not await _catch_up_chunk(store, topic, zone, now, tier_set.version, [m for m, _ in found], outcome):
                return  # a newer tier set arrived: its own catch-up takes over
            if len(found) < chunk:
                break
    await pools.mark_caught_up(tier_set.version, now)
    outcome.caught_up.append(tier_set.version)


async def _catch_up_chunk(
    store: PointsStore, topic: str, zone: ZoneInfo, now: datetime, version: int, members: list[uuid.UUID],
    outcome: ReviewOutcome,
) -> bool:  # fmt: skip
    today = day_of(now, zone)
    async with store.transaction() as tx:
        sql = TiersSql(tx.conn)
        await sql.lock_tier_set_shared()
        found = await sql.latest()
        if found is None or found[0].version != version:
            return False
        tier_set = found[0]
        locked = await sql.lock_members(members, skip_locked=False)  # an earn batch in flight finishes first
        states = await sql.states(locked)
        window = tier_set.window(today)
        sums = await sql.window_sums([(m, *window) for m in locked])
        changes = []
        for member in locked:
            state = states.get(member) or implicit_state(tier_set)
            made = upgrade(tier_set, member, state, sums[(member, *window)], today, now, Reason.TIER_SET_CHANGED)
            if made is not None:
                changes.append(made)
        await _save(tx, topic, changes, tier_set, zone)
    outcome.count(changes, reviewed=False)
    return True
