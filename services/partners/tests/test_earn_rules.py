"""Points at intake: the contract in force on the purchase's UTC date, its rate, rounded down, exactly."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from partners.domain.earn import (
    BackdatedContractError,
    EarnContract,
    NoContractError,
    check_new_version_start,
    contract_on,
    points_for,
)
from partners.domain.intake import (
    BatchRefusedError,
    CurrencyMismatchError,
    DatedInFutureError,
    DuplicateKeyError,
    PurchaseReport,
    RefundReport,
    TooManyPointsError,
    check_refunds,
    event_id_for,
    price_purchases,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def contract(valid_from: date = date(2026, 1, 1), **changes: object) -> EarnContract:
    fields: dict[str, object] = {
        "partner_id": "skymall",
        "valid_from": valid_from,
        "currency": "CNY",
        "points_per_unit": Decimal("1"),
        "issue_price_minor_per_point": Decimal("0.5"),
        "redemption_price_minor_per_point": Decimal("0.4"),
        "category_rates": {},
    }
    fields.update(changes)
    return EarnContract(**fields)  # type: ignore[arg-type]


def purchase(key: str = "k-1", amount_minor: int = 25_800, **changes: object) -> PurchaseReport:
    fields: dict[str, object] = {
        "idempotency_key": key,
        "customer_ref": "cust-1",
        "purchase_id": f"order-{key}",
        "amount_minor": amount_minor,
        "currency": "CNY",
        "category": None,
        "occurred_at": NOW - timedelta(hours=1),
    }
    fields.update(changes)
    return PurchaseReport(**fields)  # type: ignore[arg-type]


def test_points_are_the_amount_in_major_units_times_the_rate_rounded_down():
    terms = contract(points_per_unit=Decimal("1.5"))
    assert points_for(terms, 25_899, None) == 388  # 258.99 x 1.5 = 388.485
    assert points_for(terms, 66, None) == 0  # 0.66 x 1.5 = 0.99: no rounding up


def test_a_category_rate_replaces_the_base_rate_and_zero_excludes_a_category():
    terms = contract(category_rates={"electronics": Decimal("2.25"), "gift-cards": Decimal("0")})
    assert points_for(terms, 10_000, "electronics") == 225
    assert points_for(terms, 10_000, "gift-cards") == 0
    assert points_for(terms, 10_000, "groceries") == 100
    assert points_for(terms, 10_000, None) == 100


def test_points_use_the_currencys_minor_units():
    assert points_for(contract(currency="JPY", points_per_unit=Decimal("0.01")), 12_345, None) == 123
    assert points_for(contract(currency="USD", points_per_unit=Decimal("3")), 999, None) == 29


def test_points_are_exact_where_binary_floats_would_round_wrong():
    # 0.1 + 0.2 style: 1.15 x 100.00 is 114.99999999999999 as a float.
    assert points_for(contract(points_per_unit=Decimal("1.15")), 10_000, None) == 115
    # Too many digits for the default 28-digit Decimal context, still exact.
    huge = points_for(contract(points_per_unit=Decimal("999999.9999")), 10**13, None)
    assert huge == 99_999_999_990_000_000


def test_the_contract_in_force_is_the_latest_version_that_started_on_or_before_the_day():
    versions = [contract(date(2026, 1, 1)), contract(date(2026, 6, 1), points_per_unit=Decimal("2"))]
    assert contract_on(versions, date(2026, 5, 31)).valid_from == date(2026, 1, 1)
    assert contract_on(versions, date(2026, 6, 1)).valid_from == date(2026, 6, 1)
    assert contract_on(list(reversed(versions)), date(2027, 1, 1)).valid_from == date(2026, 6, 1)
    with pytest.raises(NoContractError, match=r"valid on 2025-12-31.*first contract starts 2026-01-01"):
        contract_on(versions, date(2025, 12, 31))


def test_the_purchase_date_is_its_utc_date_not_the_partners_local_date():
    versions = [contract(date(2026, 1, 1)), contract(date(2026, 6, 1), points_per_unit=Decimal("2"))]
    # 07:30 in Shanghai on 1 June is still 31 May in UTC.
    local_morning = datetime.fromisoformat("2026-06-01T07:30:00+08:00")
    [priced] = price_purchases(versions, [purchase(amount_minor=10_000, occurred_at=local_morning)], NOW)
    assert (priced.points, priced.contract_valid_from) == (100, date(2026, 1, 1))
    evening = datetime.fromisoformat("2026-06-01T08:00:00+08:00")
    [priced] = price_purchases(versions, [purchase(amount_minor=10_000, occurred_at=evening)], NOW)
    assert (priced.points, priced.contract_valid_from) == (200, date(2026, 6, 1))


def test_a_batch_is_refused_whole_with_every_problem_and_its_index():
    versions = [contract(date(2026, 1, 1))]
    reports = [
        purchase("ok"),
        purchase("usd", currency="USD"),
        purchase("future", occurred_at=NOW + timedelta(minutes=5, seconds=1)),
        purchase("old", occurred_at=datetime(2025, 12, 31, 23, 59, tzinfo=UTC)),
        purchase("ok"),
    ]
    with pytest.raises(BatchRefusedError) as refused:
        price_purchases(versions, reports, NOW)
    problems = {index: type(error) for index, error in refused.value.problems}
    assert problems == {
        1: CurrencyMismatchError,
        2: DatedInFutureError,
        3: NoContractError,
        4: DuplicateKeyError,
    }
    assert "nothing was accepted" in refused.value.message


def test_a_purchase_up_to_five_minutes_ahead_of_our_clock_is_accepted():
    [priced] = price_purchases([contract()], [purchase(occurred_at=NOW + timedelta(minutes=5))], NOW)
    assert priced.points == 258


def test_a_purchase_that_would_earn_more_than_an_event_can_carry_is_refused():
    versions = [contract(currency="JPY", points_per_unit=Decimal("999999"))]
    with pytest.raises(BatchRefusedError) as refused:
        price_purchases(versions, [purchase(amount_minor=10**13, currency="JPY")], NOW)
    [(_, error)] = refused.value.problems
    assert isinstance(error, TooManyPointsError)


def test_refunds_may_use_any_contracted_currency_but_not_be_dated_in_the_future():
    versions = [contract(date(2026, 1, 1)), contract(date(2026, 6, 1), currency="HKD")]

    def refund(key: str, currency: str, occurred_at: datetime = NOW) -> RefundReport:
        return RefundReport(key, "cust-1", f"r-{key}", "order-1", 100, currency, occurred_at)

    check_refunds(versions, [refund("a", "CNY"), refund("b", "HKD")], NOW)
    with pytest.raises(BatchRefusedError) as refused:
        check_refunds(versions, [refund("a", "USD"), refund("b", "CNY", NOW + timedelta(minutes=6))], NOW)
    assert [type(e) for _, e in refused.value.problems] == [CurrencyMismatchError, DatedInFutureError]
    assert "CNY or HKD" in refused.value.problems[0][1].message


def test_a_new_contract_version_cannot_start_before_today():
    check_new_version_start(date(2026, 11, 20), today=date(2026, 11, 20))
    with pytest.raises(BackdatedContractError, match="cannot start in the past"):
        check_new_version_start(date(2026, 11, 19), today=date(2026, 11, 20))


def test_event_ids_are_stable_and_differ_by_kind_and_partner():
    assert event_id_for("purchase", "skymall", "k-1") == event_id_for("purchase", "skymall", "k-1")
    assert event_id_for("purchase", "skymall", "k-1") != event_id_for("refund", "skymall", "k-1")
    assert event_id_for("purchase", "skymall", "k-1") != event_id_for("purchase", "skyair", "k-1")
    # Purchase ids published before refunds existed keep their value (uuid5 of the same namespace and name).
    assert str(event_id_for("purchase", "skymall", "k-1")) == "172d57d4-3a6e-580f-9b76-ae7b5e27b6d3"
