"""What members and ops read: balance, lots, history, gifts, claimable activities, member search, the ops
summary. Reads never lock and never grow with history."""

from __future__ import annotations

import base64
import copy
import dataclasses
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from points.adapters import reads
from points.adapters.store import PointsStore
from points.domain.activities import Activity
from points.domain.ledger import Book
from points.domain.rewards import ClaimRefusedError, Rewards
from points.handlers.earn import card_identifier
from points.handlers.members import MemberNotFoundError
from points.handlers.reviews import pending_points
from points.handlers.tiers import tier_now

EXPIRING_WINDOW = timedelta(days=30)
_START = (datetime(1970, 1, 1, tzinfo=UTC), uuid.UUID(int=0))


class BadCursorError(ValueError):
    def __init__(self) -> None:
        super().__init__("cursor is not one this API returned; start again without it")


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    try:
        return orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError) as error:
        raise BadCursorError from error


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


async def balance(store: PointsStore, member_id: uuid.UUID) -> dict[str, Any]:
    row = await store.balance(member_id, EXPIRING_WINDOW)
    if row is None:
        raise MemberNotFoundError(member_id)
    return {"member_id": member_id, **dict(row), "expiring_within_days": EXPIRING_WINDOW.days,
            "pending_review": await pending_points(store, member_id)}  # fmt: skip


async def lots(store: PointsStore, member_id: uuid.UUID, cursor: str | None, limit: int) -> Page:
    await _must_exist(store, member_id)
    after = _START
    if cursor:
        raw = decode_cursor(cursor)
        try:
            after = (datetime.fromisoformat(raw[0]), uuid.UUID(raw[1]))
        except (TypeError, ValueError, IndexError) as error:
            raise BadCursorError from error
    rows = await store.lots_page(member_id, after, limit + 1)
    items = [dict(r) for r in rows[:limit]]
    more = len(rows) > limit
    last = items[-1] if items else None
    next_cursor = encode_cursor([last["expires_at"].isoformat(), str(last["lot_id"])]) if more and last else None
    return Page(items, next_cursor)


async def history(store: PointsStore, member_id: uuid.UUID, cursor: str | None, limit: int) -> Page:
    await _must_exist(store, member_id)
    before = 2**63 - 1
    if cursor:
        raw = decode_cursor(cursor)
        if not isinstance(raw, int):
            raise BadCursorError
        before = raw
    rows = await store.history_page(member_id, before, limit + 1)
    items = [{**dict(r), "memo": orjson.loads(r["memo"])} for r in rows[:limit]]
    next_cursor = encode_cursor(items[-1]["seq"]) if len(rows) > limit else None
    return Page(items, next_cursor)


async def identifiers(store: PointsStore, member_id: uuid.UUID) -> list[dict[str, Any]]:
    await _must_exist(store, member_id)
    return [dict(r) for r in await store.identifiers_of(member_id)]


async def _must_exist(store: PointsStore, member_id: uuid.UUID) -> None:
    if not await store.member_exists(member_id):
        raise MemberNotFoundError(member_id)


async def member(store: PointsStore, member_id: uuid.UUID) -> dict[str, Any]:
    row = await reads.member(store.pool, member_id)
    if row is None:
        raise MemberNotFoundError(member_id)
    return {**dict(row), "identifiers": [dict(r) for r in await store.identifiers_of(member_id)]}


async def gifts(store: PointsStore, member_id: uuid.UUID, limit: int) -> list[dict[str, Any]]:
    """Gifts the member gave and received, newest first."""
    await _must_exist(store, member_id)
    return [{**dict(r), "message": r["message"] or None} for r in await reads.gifts_of(store.pool, member_id, limit)]


# --- ops: finding members ----------------------------------------------------------------------


@dataclass(frozen=True)
class MemberSearch:
    """What a search text can mean: a member id, identifiers (exact), or part of a display name."""

    member_id: uuid.UUID | None = None
    identifiers: tuple[str, ...] = ()
    name_pattern: str | None = None
    """An ILIKE pattern: the text anywhere in the name, its wildcards taken literally."""


def search_terms(q: str) -> MemberSearch:
    """A member id finds that member; `card:<token>` or `partner:<partner>:<ref>` the member it is linked to;
    any other text the member linked to the card token it may be, and members whose display name contains it."""
    try:
        return MemberSearch(member_id=uuid.UUID(q))
    except ValueError:
        pass
    if q.startswith(("card:", "partner:")):
        return MemberSearch(identifiers=(q,))
    literal = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return MemberSearch(identifiers=(card_identifier(q),), name_pattern=f"%{literal}%")


async def find_members(store: PointsStore, q: str | None, limit: int) -> list[dict[str, Any]]:
    """Members matching `q` (exact hits first), newest first; without `q`, the newest members."""
    text = (q or "").strip()
    if not text:
        rows = await reads.newest_members(store.pool, limit)
    else:
        terms = search_terms(text)
        rows = await reads.search_members(store.pool, terms.member_id, terms.identifiers, terms.name_pattern, limit)
    return [{**dict(r), "identifiers": list(r["identifiers"])} for r in rows]


# --- ops: the summary --------------------------------------------------------------------------


async def summary(store: PointsStore, now: datetime) -> dict[str, Any]:
    """Members and points moved today and this month (UTC days and months), and the points outstanding."""
    now = now.astimezone(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    row = await reads.summary(store.pool, today, today.replace(day=1))
    return {
        "as_of": now,
        "members": {
            "total": row["members_total"], "new_today": row["members_today"], "new_this_month": row["members_month"],
        },
        "points": {
            "issued_today": row["issued_today"], "issued_this_month": row["issued_month"],
            "redeemed_today": row["redeemed_today"], "redeemed_this_month": row["redeemed_month"],
            "expired_today": row["expired_today"], "expired_this_month": row["expired_month"],
            "outstanding": row["outstanding"],
        },
    }  # fmt: skip


# --- members: activities to claim --------------------------------------------------------------

_TRIAL_CLAIM = uuid.UUID(int=0)
"""The claim id of a trial claim: it only names transfers that are never written."""


async def member_activities(
    store: PointsStore, member_id: uuid.UUID, now: datetime, lot_validity: timedelta
) -> list[dict[str, Any]]:
    """The limited give-aways the member could claim now (soonest end first), then those it claimed (newest first)."""
    view = await reads.claim_view(store.pool, member_id, now)
    if view is None:
        raise MemberNotFoundError(member_id)
    tier = await tier_now(store.pool, member_id)
    return claimable(view, member_id, now, lot_validity, tier) + claimed_activities(view, now)


def claimable(
    view: reads.ClaimView, member_id: uuid.UUID, now: datetime, lot_validity: timedelta, tier: str | None = None
) -> list[dict[str, Any]]:
    """The open give-aways a claim by the member would be granted now, soonest end first."""
    offered = []
    for activity_id in view.open:
        activity = view.activities[activity_id]
        version = activity.live_version_at(now)
        if version is not None and _claim_would_be_granted(view, activity, member_id, now, lot_validity, tier):
            offered.append({
                "activity_id": activity_id, "name": activity.name, "points": version.rules.claim_points,
                "ends_at": version.window_end, "claimed": False,
            })  # fmt: skip
    return sorted(offered, key=lambda o: (o["ends_at"], str(o["activity_id"])))


def claimed_activities(view: reads.ClaimView, now: datetime) -> list[dict[str, Any]]:
    """The give-aways the member claimed, newest claim first, with what each granted and its end as planned now."""
    claimed = []
    for grant in view.claimed:
        activity = view.activities[grant.activity_id]
        current = activity.version_at(now) or activity.version_at(grant.claimed_at)
        claimed.append({
            "activity_id": grant.activity_id, "name": activity.name, "points": grant.points,
            "ends_at": current.window_end if current else None, "claimed": True,
        })  # fmt: skip
    return claimed


def _claim_would_be_granted(
    view: reads.ClaimView, activity: Activity, member_id: uuid.UUID, now: datetime, lot_validity: timedelta,
    tier: str | None,
) -> bool:  # fmt: skip
    """Ask the domain's own claim rule (state, targets and holdout, one claim each, quantity, budget and
    per-member caps) on copies of what it reads; nothing is written."""
    book = Book([dataclasses.replace(a) for a in view.accounts])
    trial = copy.copy(activity)
    standings = {k: dataclasses.replace(s) for k, s in view.standings.items() if k[0] == activity.activity_id}
    rewards = Rewards(book, {trial.activity_id: trial}, view.targeted, standings, {}, lot_validity)
    try:
        rewards.claim(trial, member_id, _TRIAL_CLAIM, now, tier)
    except ClaimRefusedError:
        return False
    return True
