"""Red packets' rules, without a database: the split, the limits, who may grab, and how lots move."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from points.domain import packets
from points.domain.ledger import (
    Account,
    AccountKind,
    Book,
    InsufficientPointsError,
    Lot,
    member_account,
    packet_account,
    transfer_id,
)
from points.domain.packets import (
    MAX_POINTS,
    MAX_SHARES,
    Audience,
    AudienceKind,
    NotInAudienceError,
    Packet,
    PacketExhaustedError,
    PacketGoneError,
    PacketRuleError,
    PacketState,
    split,
)

T0 = datetime(2026, 2, 10, 12, tzinfo=UTC)
ADA, BOB, CAI = (uuid.UUID(f"00000000-0000-4000-8000-00000000000{i}") for i in (1, 2, 3))
PACKET_ID = uuid.UUID("00000000-0000-4000-8000-0000000000aa")
POOL = packet_account(PACKET_ID)


# --- the split -------------------------------------------------------------------------------------------------


def check_double_mean(points: int, shares: int, drawn: list[int]) -> None:
    assert len(drawn) == shares
    assert sum(drawn) == points
    assert min(drawn) >= 1
    remaining = points
    for left, share in zip(range(shares, 0, -1), drawn, strict=True):
        assert share * left <= 2 * remaining or left == 1, (points, shares, drawn)
        remaining -= share
    assert remaining == 0


@pytest.mark.parametrize("seed", range(40))
def test_every_share_is_at_least_one_at_most_twice_the_mean_left_and_they_sum_to_the_pool(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(50):
        shares = rng.choice([1, 2, 3, 5, rng.randint(1, 50), rng.randint(1, MAX_SHARES)])
        points = rng.choice([shares, shares + 1, 2 * shares, rng.randint(shares, 100 * shares), MAX_POINTS])
        check_double_mean(points, shares, split(points, shares, rng))


def test_a_pool_of_one_point_a_share_gives_everyone_one() -> None:
    assert split(1_000, 1_000, random.Random(1)) == [1] * 1_000


def test_one_share_takes_the_whole_pool() -> None:
    assert split(777, 1, random.Random(1)) == [777]


class Greedy:
    """Always the highest share allowed: the draw that would starve the last shares without the second bound."""

    def randint(self, a: int, b: int) -> int:
        return b


def test_the_highest_draw_still_leaves_a_point_for_every_share_to_come() -> None:
    # floor(2R / L) alone would let the first of two shares of 3 points take all 3.
    assert split(3, 2, Greedy()) == [2, 1]
    assert split(3, 3, Greedy()) == [1, 1, 1]
    drawn = split(10, 4, Greedy())
    check_double_mean(10, 4, drawn)
    assert drawn == [5, 3, 1, 1]


def test_the_shares_are_random_and_the_same_seed_draws_the_same() -> None:
    assert split(1_000, 5, random.Random(7)) == split(1_000, 5, random.Random(7))
    assert len({tuple(split(1_000, 5, random.Random(seed))) for seed in range(20)}) > 15


def test_shares_average_the_pool_over_many_draws() -> None:
    rng = random.Random(3)
    firsts = [split(1_000, 10, rng)[0] for _ in range(4_000)]
    assert 95 <= sum(firsts) / len(firsts) <= 105  # uniform in [1, 200]: mean 100.5


@pytest.mark.parametrize(
    ("points", "shares", "reason"),
    [
        (10, 0, "1 to 1,000 shares"),
        (5_000, 1_001, "1 to 1,000 shares"),
        (4, 5, "at least 1 a share"),
        (MAX_POINTS + 1, 10, "1,000,000 points"),
    ],
)
def test_sizes_outside_the_limits_are_refused_with_the_reason(points: int, shares: int, reason: str) -> None:
    with pytest.raises(PacketRuleError, match=reason):
        split(points, shares, random.Random(0))


# --- deadline, audience, message -------------------------------------------------------------------------------


def test_a_deadline_is_a_moment_or_a_duration_from_one_minute_to_seven_days() -> None:
    assert packets.deadline(T0, None, timedelta(minutes=1)) == T0 + timedelta(minutes=1)
    assert packets.deadline(T0, T0 + timedelta(days=7), None) == T0 + timedelta(days=7)
    for expires_at, duration in ((None, None), (T0 + timedelta(hours=1), timedelta(hours=1))):
        with pytest.raises(PacketRuleError, match="either expires_at or duration_minutes"):
            packets.deadline(T0, expires_at, duration)
    for too in (timedelta(seconds=59), timedelta(days=7, seconds=1), -timedelta(hours=1)):
        with pytest.raises(PacketRuleError, match="1 minute to 7 days"):
            packets.deadline(T0, T0 + too, None)


@pytest.mark.parametrize(
    ("audience", "by_ops", "reason"),
    [
        (Audience(AudienceKind.SEGMENT, uuid.uuid4()), False, "only ops send a red packet to a segment"),
        (Audience(AudienceKind.FRIENDS, None, (BOB, CAI)), True, "not to a list of friends"),
        (Audience(AudienceKind.SEGMENT), True, "names its segment_id"),
        (Audience(AudienceKind.LINK, None, (BOB,)), False, "give no segment_id or member_ids"),
        (Audience(AudienceKind.FRIENDS, uuid.uuid4()), False, "or none for your friend circle"),
        (Audience(AudienceKind.FRIENDS, None, tuple(uuid.uuid4() for _ in range(201))), False, "up to 200"),
        (Audience(AudienceKind.FRIENDS, None, (ADA, BOB)), False, "cannot send a red packet to yourself"),
        (Audience(AudienceKind.FRIENDS, None, (BOB,)), False, "2 shares for 1 friends"),
    ],
)
def test_an_audience_the_rules_do_not_allow_is_refused(audience: Audience, by_ops: bool, reason: str) -> None:
    with pytest.raises(PacketRuleError, match=reason):
        packets.check_audience(audience, 2, by_ops=by_ops, creator=None if by_ops else ADA)


def test_allowed_audiences_pass() -> None:
    packets.check_audience(Audience(AudienceKind.FRIENDS, None, (BOB, CAI, BOB)), 2, by_ops=False, creator=ADA)
    packets.check_audience(Audience(AudienceKind.LINK), 5, by_ops=False, creator=ADA)
    packets.check_audience(Audience(AudienceKind.FRIENDS), 5, by_ops=False, creator=ADA)  # the friend circle
    packets.check_circle(5, 5)
    with pytest.raises(PacketRuleError, match="has 4 members, fewer than the 5 shares"):
        packets.check_circle(4, 5)
    packets.check_audience(Audience(AudienceKind.SEGMENT, uuid.uuid4()), 5, by_ops=True, creator=None)
    packets.check_message("恭喜发财" * 20)
    with pytest.raises(PacketRuleError, match="at most 80 characters"):
        packets.check_message("x" * 81)


def test_a_link_token_is_unguessable_and_only_its_hash_is_kept() -> None:
    tokens = {packets.new_link_token() for _ in range(100)}
    assert len(tokens) == 100
    token = tokens.pop()
    assert len(token) == 32
    assert packets.link_hash(token) == packets.link_hash(token)
    assert len(packets.link_hash(token)) == 64
    assert token not in packets.link_hash(token)


def test_a_request_fingerprint_ignores_key_order_and_a_grab_id_is_one_per_member() -> None:
    assert packets.fingerprint({"a": 1, "b": [2, 3]}) == packets.fingerprint({"b": [2, 3], "a": 1})
    assert packets.fingerprint({"a": 1}) != packets.fingerprint({"a": 2})
    assert packets.grab_id(PACKET_ID, BOB) == packets.grab_id(PACKET_ID, BOB) != packets.grab_id(PACKET_ID, CAI)


# --- who may grab ----------------------------------------------------------------------------------------------


def packet(audience: AudienceKind = AudienceKind.FRIENDS, state: PacketState = PacketState.OPEN) -> Packet:
    return Packet(
        PACKET_ID, POOL, member_account(ADA), ADA, str(ADA), None, 100, 3, audience, None, "Happy new year",
        state, T0, T0 + timedelta(hours=1),
    )  # fmt: skip


def test_a_member_in_the_audience_may_grab_an_open_packet_before_its_deadline() -> None:
    packets.judge_grab(packet(), BOB, T0, via_link=False, in_audience=True)
    packets.judge_grab(packet(AudienceKind.LINK), BOB, T0, via_link=True, in_audience=False)


@pytest.mark.parametrize(
    ("shown", "member", "at", "via_link", "listed", "refusal", "reason"),
    [
        (packet(), ADA, T0, False, True, NotInAudienceError, "your own red packet"),
        (packet(AudienceKind.LINK), BOB, T0, False, False, NotInAudienceError, "opens with its link only"),
        (packet(), BOB, T0, False, False, NotInAudienceError, "not among them"),
        (packet(AudienceKind.SEGMENT), BOB, T0, False, False, NotInAudienceError, "members of a segment"),
        (packet(state=PacketState.EXHAUSTED), BOB, T0, False, True, PacketExhaustedError, "all 3 shares"),
        (packet(state=PacketState.CLOSED), BOB, T0, False, True, PacketGoneError, "its sender closed"),
        (packet(state=PacketState.EXPIRED), BOB, T0, False, True, PacketGoneError, "goes back to its sender"),
        (packet(), BOB, T0 + timedelta(hours=1), False, True, PacketGoneError, "closed at 2026-02-10T13:00:00"),
        # Who it is for comes first: a stranger learns nothing of the state.
        (packet(state=PacketState.CLOSED), CAI, T0, False, False, NotInAudienceError, "not among them"),
    ],
)
def test_a_grab_is_refused_with_the_reason(
    shown: Packet, member: uuid.UUID, at: datetime, via_link: bool, listed: bool, refusal: type, reason: str
) -> None:
    with pytest.raises(refusal, match=reason):
        packets.judge_grab(shown, member, at, via_link=via_link, in_audience=listed)


def test_the_state_people_see() -> None:
    open_one = packet()
    assert packets.state_now(open_one, 1, T0) is PacketState.OPEN
    assert packets.state_now(open_one, 3, T0) is PacketState.EXHAUSTED
    assert packets.state_now(open_one, 1, T0 + timedelta(hours=2)) is PacketState.EXPIRED
    assert packets.state_now(packet(state=PacketState.CLOSED), 1, T0) is PacketState.CLOSED
    assert packets.settled_state(0, PacketState.CLOSED) is PacketState.EXHAUSTED
    assert packets.settled_state(5, PacketState.EXPIRED) is PacketState.EXPIRED


# --- lots move with their dates --------------------------------------------------------------------------------


def lot(account_id: str, amount: int, days: int, issuer: str) -> Lot:
    return Lot(uuid.uuid4(), account_id, amount, amount, T0 - timedelta(days=30), T0 + timedelta(days=days), issuer)


def ledger(*lots: Lot) -> Book:
    held: dict[str, int] = {}
    for x in lots:
        held[x.account_id] = held.get(x.account_id, 0) + x.remaining
    accounts = [
        Account(member_account(ADA), AccountKind.MEMBER, credits_posted=held.get(member_account(ADA), 0)),
        Account(member_account(BOB), AccountKind.MEMBER),
        Account(POOL, AccountKind.PACKET, credits_posted=held.get(POOL, 0)),
        Account("activity:x:budget", AccountKind.ACTIVITY_BUDGET, credits_posted=500),
    ]
    book = Book(accounts, lots)
    book.mark_lots_loaded([member_account(ADA), member_account(BOB), POOL])
    return book


def lots_of(book: Book, account_id: str) -> list[tuple[int, datetime, datetime, str | None]]:
    return [(x.remaining, x.expires_at, x.earned_at, x.issuer) for x in book.live_lots(account_id)]


def test_a_members_packet_takes_its_soonest_lots_and_keeps_their_dates_through_grab_and_return() -> None:
    soon, later = (
        lot(member_account(ADA), 60, 10, "partner:skymall:issued"),
        lot(member_account(ADA), 80, 400, "card:issued"),
    )
    book = ledger(later, soon)
    packets.fund_from_member(book, PACKET_ID, member_account(ADA), POOL, 100, T0)
    assert lots_of(book, POOL) == [(60, soon.expires_at, soon.earned_at, soon.issuer),
                                   (40, later.expires_at, later.earned_at, later.issuer)]  # fmt: skip
    assert book.account(member_account(ADA)).posted == 40

    grab = packets.grab_id(PACKET_ID, BOB)
    made = packets.grab(book, PACKET_ID, grab, POOL, member_account(BOB), 70, T0, "Happy new year")
    funded = [transfer_id(PACKET_ID, f"fund:{x.lot_id}") for x in (soon, later)]  # the packet's lots' ids
    assert [t.transfer_id for t in made] == [transfer_id(grab, f"grab:{lot_id}") for lot_id in funded]
    assert lots_of(book, member_account(BOB)) == [(60, soon.expires_at, soon.earned_at, soon.issuer),
                                                  (10, later.expires_at, later.earned_at, later.issuer)]  # fmt: skip
    assert {t.reason for t in made} == {"red_packet_grab"}
    assert all(t.memo["message"] == "Happy new year" for t in made)

    assert packets.give_back(book, PACKET_ID, POOL, member_account(ADA), T0) == 30
    assert book.account(POOL).posted == 0
    assert (30, later.expires_at, later.earned_at, later.issuer) in lots_of(book, member_account(ADA))
    assert book.account(member_account(ADA)).posted == 70
    assert packets.give_back(book, PACKET_ID, POOL, member_account(ADA), T0) == 0


def test_a_member_cannot_put_in_more_than_it_has_and_a_budget_funds_one_dated_lot() -> None:
    book = ledger(lot(member_account(ADA), 50, 10, "card:issued"))
    with pytest.raises(InsufficientPointsError):
        packets.fund_from_member(book, PACKET_ID, member_account(ADA), POOL, 51, T0)
    assert book.changes().transfers == []

    made = packets.fund_from_budget(book, PACKET_ID, "activity:x:budget", POOL, 500, T0, timedelta(days=730), "Spring")
    assert made.transfer_id == transfer_id(PACKET_ID, "fund")
    assert lots_of(book, POOL) == [(500, T0 + timedelta(days=730), T0, "activity:x:budget")]
    with pytest.raises(InsufficientPointsError):
        packets.fund_from_budget(book, uuid.uuid4(), "activity:x:budget", POOL, 1, T0, timedelta(days=1), "x")


def test_a_grab_that_finds_the_packet_returned_under_its_lock_is_refused_as_gone() -> None:
    open_when_read = packet()
    packets.check_open(open_when_read, PacketState.OPEN, T0)
    with pytest.raises(PacketGoneError, match="its sender closed"):
        packets.check_open(open_when_read, PacketState.CLOSED, T0)
    with pytest.raises(PacketGoneError, match="goes back to its sender"):
        packets.check_open(open_when_read, PacketState.EXPIRED, T0)
