"""Attribution's rules and maths without a database: share links, report periods, rows, incremental spend."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from points.domain.attribution import (
    Attribution,
    AttributionRow,
    AttributionRuleError,
    ChannelCohort,
    Figure,
    Sharer,
    ShareTarget,
    attribution_rows,
    incremental_by_channel,
    leaderboard,
    new_share_link,
    open_day,
    open_minute,
    report_period,
    share_request_sha256,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 20, 16, 30, 45, 123, tzinfo=UTC)
ACTIVITY = uuid.UUID("00000000-0000-4000-8000-00000000000a")
MEMBER = uuid.UUID("00000000-0000-4000-8000-0000000000b1")


def test_an_attribution_keeps_only_what_it_says_and_refuses_an_unknown_channel():
    said = Attribution(channel="wechat", staff_id="ops-2")
    assert said.to_memo() == {"channel": "wechat", "staff_id": "ops-2"}
    assert Attribution.from_memo(said.to_memo()) == said
    assert Attribution().empty
    assert Attribution.from_memo(None).empty
    with pytest.raises(AttributionRuleError, match="channel 'fax' is not one of app, sms"):
        Attribution(channel="fax")


def test_a_member_shares_for_itself_and_staff_at_their_branch():
    member = Sharer("m", member_id=MEMBER)
    staff = Sharer("ops-2", staff_id="ops-2", branch_id="sh-pudong")
    assert staff.branch_id == "sh-pudong"
    with pytest.raises(AttributionRuleError, match="branch_id is for the links of staff"):
        Sharer("m", member_id=MEMBER, branch_id="sh-pudong")
    with pytest.raises(AttributionRuleError, match="a member's or a staff member's"):
        Sharer("x")
    with pytest.raises(AttributionRuleError, match="a member's or a staff member's"):
        Sharer("x", member_id=MEMBER, staff_id="ops-2")
    assert member.member_id == MEMBER


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        (lambda: ShareTarget("activity"), "activity_id only"),
        (lambda: ShareTarget("activity", ACTIVITY, partner_id="skymall"), "activity_id only"),
        (lambda: ShareTarget("offer", partner_id="skymall"), "partner_id and offer_id only"),
        (lambda: ShareTarget("offer", ACTIVITY, "skymall", "o-1"), "partner_id and offer_id only"),
        (lambda: ShareTarget("packet"), "for an offer or an activity"),
    ],
)
def test_a_target_names_an_activity_or_an_offer(target, reason):
    with pytest.raises(AttributionRuleError, match=reason):
        target()


@pytest.mark.parametrize("days", [0, 31, -1])
def test_a_response_window_is_one_to_thirty_days(days):
    with pytest.raises(AttributionRuleError, match="window_days must be 1 to 30"):
        new_share_link(uuid.uuid4(), "c" * 22, Sharer("m", member_id=MEMBER), ShareTarget("activity", ACTIVITY),
                       None, None, days, NOW)  # fmt: skip


def test_the_same_request_hashes_alike_and_any_change_differs():
    sharer, target = Sharer("ops-2", staff_id="ops-2"), ShareTarget("activity", ACTIVITY)
    first = share_request_sha256(sharer, target, "wechat", None, 7)
    assert first == share_request_sha256(sharer, target, "wechat", None, 7)
    others = {
        share_request_sha256(Sharer("ops-2", staff_id="ops-2", branch_id="b"), target, "wechat", None, 7),
        share_request_sha256(sharer, target, "sms", None, 7),
        share_request_sha256(sharer, target, "wechat", "c", 7),
        share_request_sha256(sharer, target, "wechat", None, 8),
        share_request_sha256(sharer, ShareTarget("offer", None, "skymall", "o"), "wechat", None, 7),
    }
    assert first not in others
    assert len(others) == 5


def test_opens_count_on_the_programme_day_and_the_minute():
    late_utc = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)  # 01:00 the next day in Shanghai
    assert open_day(late_utc, SHANGHAI) == date(2026, 11, 21)
    assert open_day(late_utc, ZoneInfo("UTC")) == date(2026, 11, 20)
    assert open_minute(NOW) == datetime(2026, 11, 20, 16, 30, tzinfo=UTC)


def test_a_period_is_whole_programme_days_both_included():
    period = report_period(date(2026, 11, 1), date(2026, 11, 30), SHANGHAI)
    assert period.start == datetime(2026, 10, 31, 16, 0, tzinfo=UTC)
    assert period.end == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    assert report_period(date(2026, 11, 1), date(2026, 11, 1), SHANGHAI).end == datetime(2026, 11, 1, 16, tzinfo=UTC)
    with pytest.raises(AttributionRuleError, match=r"to \(2026-10-31\) is before from \(2026-11-01\)"):
        report_period(date(2026, 11, 1), date(2026, 10, 31), SHANGHAI)
    with pytest.raises(AttributionRuleError, match="at most 366 days"):
        report_period(date(2025, 1, 1), date(2026, 1, 2), SHANGHAI)


def test_rows_gather_their_figures_rank_by_responders_and_rate_exactly():
    figures = [
        Figure("reach", "app", 3), Figure("responders", "app", 1), Figure("opens", "app", 2),
        Figure("reach", "wechat", 7), Figure("responders", "wechat", 2), Figure("points", "wechat", 500),
        Figure("spend", "wechat", 12_345, "CNY"), Figure("spend", "wechat", 10, "USD"), Figure("opens", "wechat", 4),
        Figure("reach", None, 7), Figure("responders", None, 2),
    ]  # fmt: skip
    rows = attribution_rows(figures, {})
    assert [r.key for r in rows] == ["wechat", None, "app"], "responders, then reach, then points"
    wechat = rows[0]
    assert (wechat.reach, wechat.responders, wechat.opens, wechat.points_granted) == (7, 2, 4, 500)
    assert wechat.response_rate == Decimal("0.2857")
    assert {c: (s.spend_minor, s.incremental_spend_minor) for c, s in wechat.spend.items()} == {
        "CNY": (12_345, None), "USD": (10, None)
    }  # fmt: skip
    assert rows[2].response_rate == Decimal("0.3333")
    assert AttributionRow("x").response_rate == Decimal("0.0000"), "nobody reached: 0, not a division by zero"
    with pytest.raises(ValueError, match="unknown figure"):
        attribution_rows([Figure("clicks", "app", 1)], {})


def test_the_leaderboard_is_the_first_ten_named_rows():
    rows = [AttributionRow(f"ops-{i:02}", reach=20, responders=i) for i in range(12)]
    rows.append(AttributionRow(None, reach=99, responders=50))
    board = leaderboard(rows)
    assert [r.key for r in board] == [f"ops-{i:02}" for i in range(11, 1, -1)]


def test_incremental_spend_compares_each_channel_with_its_own_activitys_holdout():
    other = uuid.uuid4()
    cohorts = [
        # activity A: 4 on app spent 1,000 in all (250 each), 2 on sms spent 0, holdout of 5 spent 500 (100 each)
        ChannelCohort(ACTIVITY, "app", 4, {"CNY": 1_000}),
        ChannelCohort(ACTIVITY, "sms", 2, {}),
        ChannelCohort(ACTIVITY, None, 5, {"CNY": 500}),
        # activity B: 3 on app spent 100 each, holdout of 3 spent 101 in all
        ChannelCohort(other, "app", 3, {"CNY": 300}),
        ChannelCohort(other, None, 3, {"CNY": 101}),
        # activity C: no holdout member: no comparison at all
        ChannelCohort(uuid.uuid4(), "wechat", 10, {"CNY": 10_000}),
    ]
    found = incremental_by_channel(cohorts)
    # A app: (250 - 100) x 4 = 600; B app: (100 - 33.67) x 3 = 199 exactly (300 - 101)
    assert found == {("app", "CNY"): 600 + 199, ("sms", "CNY"): -200}
    rows = attribution_rows([Figure("reach", "app", 7)], found)
    assert rows[0].spend["CNY"].incremental_spend_minor == 799
    assert rows[0].spend["CNY"].spend_minor == 0


def test_a_claims_attribution_joins_the_memo_of_its_grant_transfer_before_it_is_written():
    from points.domain.ledger import Account, AccountKind, Book, LedgerError, transfer_id

    budget, member = "activity:x:budget", f"member:{MEMBER}"
    book = Book([Account(budget, AccountKind.ACTIVITY_BUDGET, credits_posted=500), Account(member, AccountKind.MEMBER)])
    made = book.transfer(transfer_id=transfer_id(MEMBER, "claim"), debit=budget, credit=member, amount=100,
                         reason="bonus_limited_claim", cause_event_id=MEMBER, occurred_at=NOW,
                         memo={"activity": "Give-away"}, lot_expires_at=NOW)  # fmt: skip
    book.add_memo(made.transfer_id, {"attribution": {"share_code": "c" * 22}})
    [written] = book.changes().transfers
    assert written.memo == {"activity": "Give-away", "attribution": {"share_code": "c" * 22}}
    assert made.memo == {"activity": "Give-away"}, "the transfer first made is not changed behind its back"
    with pytest.raises(LedgerError, match="was not made in this transaction"):
        book.add_memo(uuid.uuid4(), {"attribution": {}})
