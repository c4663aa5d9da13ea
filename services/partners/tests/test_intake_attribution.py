"""Purchases may say where they came from (channel, branch, staff, campaign, share link): validated, published,
and part of the body that a retry must send unchanged."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import httpx
import pytest

from contracts.topics import PARTNER_PURCHASES
from partners.domain.idempotency import purchase_entry
from partners.domain.intake import AttributionReport, PurchaseReport
from tests.support.kafka import read_all
from tests.support.partner_client import purchase_item


def problems(answer: httpx.Response) -> list[tuple[list[object], str]]:
    return [(p["loc"], p["msg"]) for p in answer.json()["detail"]]


ATTRIBUTION = {"channel": "wechat", "branch_id": "sh-pudong", "staff_id": "ops-2", "campaign_ref": "spring-26",
               "share_code": "Abc_def-0123456789xyz"}  # fmt: skip


def test_a_purchase_without_attribution_hashes_as_before_so_earlier_keys_stay_retries():
    at = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
    plain = PurchaseReport("k-1", "cust-1", "order-1", 10_000, "CNY", None, at)
    fields = ("cust-1", "order-1", 10_000, "CNY", None, at.isoformat())
    canonical = "".join("-" if f is None else f"{len(str(f))}:{f}" for f in fields)
    assert purchase_entry("skymall", plain).body_hash == hashlib.sha256(canonical.encode()).digest()
    attributed = PurchaseReport("k-1", "cust-1", "order-1", 10_000, "CNY", None, at, AttributionReport("app"))
    other = PurchaseReport("k-1", "cust-1", "order-1", 10_000, "CNY", None, at, AttributionReport("sms"))
    hashes = {purchase_entry("skymall", r).body_hash for r in (plain, attributed, other)}
    assert len(hashes) == 3, "the attribution is part of the body"


@pytest.mark.integration
async def test_an_attributed_purchase_is_published_with_its_attribution_single_and_in_a_batch(partners_api, partner):
    single = await partner.purchase(purchase_item("a-1", 10_000, attribution=ATTRIBUTION))
    assert single.status_code == 202, single.text
    batch = await partner.purchases_batch([
        purchase_item("a-2", 5_000, attribution={"channel": "branch", "branch_id": "bj-chaoyang"}),
        purchase_item("a-3", 5_000),
        purchase_item("a-4", 5_000, attribution={}),
    ])  # fmt: skip
    assert batch.status_code == 202, batch.text
    topic = partners_api.shell.topic(PARTNER_PURCHASES.name)
    records = await read_all(partners_api.shell.settings.kafka_bootstrap_servers, topic, expected=4)
    events = {e.payload.purchase_id: e for e in (PARTNER_PURCHASES.decode(r.value) for r in records)}
    assert events["order-a-1"].payload.attribution.model_dump() == ATTRIBUTION
    assert events["order-a-2"].payload.attribution.model_dump(exclude_none=True) == {
        "channel": "branch", "branch_id": "bj-chaoyang"
    }  # fmt: skip
    assert events["order-a-3"].payload.attribution is None
    assert events["order-a-4"].payload.attribution is None, "an empty attribution says nothing"


@pytest.mark.integration
@pytest.mark.parametrize(
    ("attribution", "where", "reason"),
    [
        ({"channel": "pigeon"}, "channel", "Input should be 'app', 'sms', 'wechat', 'branch', 'web' or 'partner'"),
        ({"branch_id": "=HYPERLINK(1)"}, "branch_id", "String should match pattern"),
        ({"staff_id": "x" * 65}, "staff_id", "at most 64 characters"),
        ({"share_code": "short"}, "share_code", "at least 16 characters"),
        ({"share_code": "a" * 20 + "/"}, "share_code", "String should match pattern"),
        ({"coupon": "x"}, "coupon", "Extra inputs are not permitted"),
    ],
)
async def test_a_bad_attribution_is_refused_with_its_reason(partner, attribution, where, reason):
    answer = await partner.purchase(purchase_item("bad", 10_000, attribution=attribution))
    assert answer.status_code == 422, answer.text
    [(loc, msg)] = problems(answer)
    assert loc == ["body", "attribution", where]
    assert reason in msg
    in_batch = await partner.purchases_batch([purchase_item("ok"), purchase_item("bad", attribution=attribution)])
    assert in_batch.status_code == 422
    assert problems(in_batch)[0][0] == ["body", "purchases", 1, "attribution", where]


@pytest.mark.integration
async def test_the_same_key_with_another_attribution_is_another_body(partner):
    first = await partner.purchase(purchase_item("k-1", 10_000, attribution={"channel": "app"}))
    assert first.status_code == 202, first.text
    retry = await partner.purchase(purchase_item("k-1", 10_000, attribution={"channel": "app"}))
    assert retry.status_code == 202
    assert retry.json() == first.json()
    changed = await partner.purchase(purchase_item("k-1", 10_000, attribution={"channel": "sms"}))
    assert changed.status_code == 409, changed.text
    dropped = await partner.purchase(purchase_item("k-1", 10_000))
    assert dropped.status_code == 409, "leaving the attribution out is another body too"
