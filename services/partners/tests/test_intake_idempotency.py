"""A key names one purchase or refund, an id is accepted under one key: judged without a database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from partners.domain.earn import EarnContract
from partners.domain.idempotency import (
    ExternalIdReusedError,
    KeyReusedError,
    conflicts,
    purchase_entry,
    refund_entry,
)
from partners.domain.intake import (
    BatchRefusedError,
    DuplicateIdError,
    DuplicateKeyError,
    PurchaseReport,
    RefundReport,
    check_refunds,
    event_id_for,
    price_purchases,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CONTRACT = EarnContract("skymall", date(2026, 1, 1), "CNY", Decimal("1"), Decimal("0.5"), Decimal("0.4"))


def purchase(key: str = "k-1", amount_minor: int = 25_800, **changes: object) -> PurchaseReport:
    report = PurchaseReport(key, "cust-1", f"order-{key}", amount_minor, "CNY", None, NOW - timedelta(hours=1))
    return replace(report, **changes)  # type: ignore[arg-type]


def refund(key: str = "r-1", amount_minor: int = 500, **changes: object) -> RefundReport:
    report = RefundReport(key, "cust-1", f"refund-{key}", "order-1", amount_minor, "CNY", NOW - timedelta(hours=1))
    return replace(report, **changes)  # type: ignore[arg-type]


def test_the_body_hash_is_over_the_fields_so_the_same_instant_written_otherwise_is_the_same_body():
    utc = purchase_entry("skymall", purchase(occurred_at=datetime(2026, 11, 20, 1, 30, tzinfo=UTC)))
    shanghai = timezone(timedelta(hours=8))
    local = purchase_entry("skymall", purchase(occurred_at=datetime(2026, 11, 20, 9, 30, tzinfo=shanghai)))
    assert utc == local
    assert utc.event_id == event_id_for("purchase", "skymall", "k-1")
    assert utc.external_id == "order-k-1"


@pytest.mark.parametrize(
    "changes",
    [
        {"amount_minor": 25_801},
        {"currency": "HKD"},
        {"customer_ref": "cust-2"},
        {"category": "books"},
        {"purchase_id": "order-other"},
        {"occurred_at": NOW - timedelta(hours=1, microseconds=1)},
    ],
)
def test_any_changed_field_is_another_body(changes: dict[str, object]):
    assert purchase_entry("skymall", purchase()).body_hash != purchase_entry("skymall", purchase(**changes)).body_hash


def test_a_refund_is_hashed_over_its_own_fields():
    assert refund_entry("skymall", refund()).body_hash == refund_entry("skymall", refund()).body_hash
    assert refund_entry("skymall", refund()).body_hash != refund_entry("skymall", refund(purchase_id="o-2")).body_hash
    assert refund_entry("skymall", refund()).external_id == "refund-r-1"


def test_a_recorded_key_with_the_same_body_is_a_retry_and_with_another_a_conflict():
    recorded = [purchase_entry("skymall", purchase("k-1")), purchase_entry("skymall", purchase("k-2"))]
    entries = [
        purchase_entry("skymall", purchase("k-1")),  # retry
        purchase_entry("skymall", purchase("k-2", amount_minor=1)),  # another body
        purchase_entry("skymall", purchase("k-3", purchase_id="order-k-1")),  # the purchase under a new key
        purchase_entry("skymall", purchase("k-4")),  # new
    ]
    found = conflicts("purchase", entries, recorded)
    assert [(index, type(error)) for index, error in found] == [(1, KeyReusedError), (2, ExternalIdReusedError)]
    assert found[1][1].field == "purchase_id"
    assert "under idempotency_key 'k-1'" in found[1][1].message
    assert conflicts("purchase", entries[:1] + entries[3:], recorded) == []


def test_a_refund_id_under_a_new_key_names_the_refund_id():
    [(index, error)] = conflicts(
        "refund", [refund_entry("skymall", refund("r-2", refund_id="refund-r-1"))], [refund_entry("skymall", refund())]
    )
    assert (index, error.field) == (0, "refund_id")
    assert "a new refund needs its own refund_id" in error.message


def test_one_purchase_or_refund_twice_in_a_batch_is_refused():
    reports: list[PurchaseReport] = [purchase("k-1"), purchase("k-2", purchase_id="order-k-1"), purchase("k-1")]
    with pytest.raises(BatchRefusedError) as refused:
        price_purchases([CONTRACT], reports, NOW)
    assert [(i, type(e), e.field) for i, e in refused.value.problems] == [
        (1, DuplicateIdError, "purchase_id"),
        (2, DuplicateKeyError, "idempotency_key"),
    ]
    with pytest.raises(BatchRefusedError) as refused:
        check_refunds([CONTRACT], [refund("r-1"), refund("r-2", refund_id="refund-r-1")], NOW)
    [(index, error)] = refused.value.problems
    assert (index, error.field) == (1, "refund_id")
