"""What an expiry run takes from each due lot: what is left of it, as far as the account's available balance goes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from points.domain.ledger import BREAKAGE, Lot, transfer_id
from points.domain.lifecycle import expiry_amounts, expiry_transfer

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def lot(account: str, amount: int, remaining: int, expired_days_ago: int, issuer: str | None = None) -> Lot:
    return Lot(uuid.uuid4(), account, amount, remaining, T0 - timedelta(days=800),
               T0 - timedelta(days=expired_days_ago), issuer)  # fmt: skip


def test_lots_give_what_is_left_in_expiry_order_until_the_available_balance_runs_out():
    older, newer, late = lot("member:a", 100, 100, 5), lot("member:a", 50, 30, 2), lot("member:a", 40, 40, 1)
    other = lot("member:b", 10, 10, 3)

    taken = expiry_amounts({"member:a": 110, "member:b": 10}, [late, newer, other, older])

    # 110 available: the oldest lot in full, 10 of the next; the last gives nothing (a hold reserves it).
    assert [(x.lot_id, amount) for x, amount in taken] == [(older.lot_id, 100), (other.lot_id, 10),
                                                            (newer.lot_id, 10)]  # fmt: skip


def test_nothing_is_taken_from_an_account_whose_points_are_all_held():
    assert expiry_amounts({"member:a": 0}, [lot("member:a", 10, 10, 1)]) == []


def test_the_transfer_is_named_by_what_the_lot_had_given_before_and_keeps_its_issuer():
    partly = lot("member:a", 60, 35, 1, issuer="partner:skymall:issued")
    made = expiry_transfer(partly, 35)

    assert made.transfer_id == transfer_id(partly.lot_id, "expiry:25")
    assert (made.debit_account, made.credit_account, made.amount, made.reason) == ("member:a", BREAKAGE, 35, "expiry")
    assert (made.cause_event_id, made.occurred_at, made.memo) == (partly.lot_id, partly.expires_at,
                                                                  {"issuer": "partner:skymall:issued"})  # fmt: skip
    assert expiry_transfer(lot("member:a", 5, 5, 1), 5).memo == {}
