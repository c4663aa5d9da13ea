"""Liability on the real broker and databases: partners' contract prices through loyalty.partner-contracts.v1, a
month's statement after earns, a gift, a redemption and an expiry that reconciles to the ledger exactly, kept once
closed and proved by `make verify`; the refusals of the ops API."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import asyncpg
import httpx
import pytest

from contracts.events.liability import EarnContractVersionAdded, EarnContractVersionPayload, contract_event_id
from contracts.topics import ALL_TOPICS, CARD_TRANSACTIONS, HOLD_COMMANDS, PARTNER_CONTRACTS, PARTNER_PURCHASES
from loyalty_runtime import db
from loyalty_runtime.kafka import ensure_topics
from points.adapters.liability_store import LiabilityStore
from points.domain.liability import Month
from points.handlers import liability as handle
from points.handlers.verify import verify_ledger
from tests.support.holds import capture, hold
from tests.support.kafka import delete_topics
from tests.support.ledger import (
    OPS,
    balance,
    card_purchase,
    link,
    member_headers,
    new_member,
    now,
    publish,
    purchase,
)
from tests.support.partner_client import bearer, ops_token, register_partner
from tests.support.services import http, partners_service, points_service, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

PARTNER = "liabmall"
ISSUER = f"partner:{PARTNER}:issued"


@dataclass(frozen=True)
class Services:
    points: httpx.AsyncClient
    partners: httpx.AsyncClient
    dsn: str
    prefix: str
    zone: object


@pytest.fixture(scope="module")
async def services(infra, _templates) -> AsyncIterator[Services]:
    """Both services for the module (a start is seconds of consumer-group joins), with their own databases."""
    names = {s: f"t_{s}_{uuid.uuid4().hex[:10]}" for s in ("points", "partners")}
    for service, name in names.items():
        await db.ensure_database(infra.admin_dsn, name, template=_templates[service])
    points_dsn = db.with_database(infra.admin_dsn, names["points"])
    prefix = f"test-{infra.run_id}-{uuid.uuid4().hex[:6]}."
    await ensure_topics(infra.kafka, ALL_TOPICS, prefix, partitions=2)
    points_shell = points_service(infra.kafka, points_dsn, prefix)
    try:
        async with (
            running(points_shell) as shell,
            running(partners_service(infra.kafka, db.with_database(infra.admin_dsn, names["partners"]), prefix)) as p,
            http(shell) as points_api,
            http(p) as partners_api,
        ):
            yield Services(points_api, partners_api, points_dsn, prefix, shell.settings.programme_zone)
    finally:
        await delete_topics(infra.kafka, prefix)
        for name in names.values():
            await db.drop_database(infra.admin_dsn, name)


async def prices_of(api: httpx.AsyncClient, issuer: str) -> list[dict[str, object]]:
    answer = await api.get("/v1/ops/issue-prices", headers=OPS)
    assert answer.status_code == 200, answer.text
    return [p for p in answer.json()["items"] if p["issuer"] == issuer]


def contract_event(valid_from: date, price: str, event_id: uuid.UUID | None = None) -> EarnContractVersionAdded:
    event_id = event_id or contract_event_id(PARTNER, valid_from)
    return EarnContractVersionAdded(
        event_id=event_id, occurred_at=now(), source="partners", correlation_id=event_id,
        payload=EarnContractVersionPayload(partner_id=PARTNER, valid_from=valid_from, currency="CNY",
                                           issue_price_minor_per_point=Decimal(price),
                                           redemption_price_minor_per_point=Decimal("0.4")),
    )  # fmt: skip


async def test_partner_contract_prices_arrive_through_the_topic_and_repeats_change_nothing(services, infra):
    await register_partner(services.partners, ops_token(), PARTNER, issue_price_minor_per_point="0.5")

    async def priced():
        return await prices_of(services.points, ISSUER) or None

    [price] = await eventually(priced, what="the contract's issue price in points", timeout=30)
    assert (price["valid_from"], price["currency"], Decimal(price["price_minor_per_point"]), price["source"]) == (
        "2020-01-01", "CNY", Decimal("0.5"), "partner_contract")  # fmt: skip

    # The same version again (a republication), a forged copy with another price, then a late older version.
    topic = PARTNER_CONTRACTS.qualified(services.prefix)
    key = PARTNER.encode()
    await publish(infra.kafka, topic, [contract_event(date(2020, 1, 1), "0.5")], key=key)
    await publish(infra.kafka, topic, [contract_event(date(2020, 1, 1), "9", uuid.uuid4())], key=key)
    await publish(infra.kafka, topic, [contract_event(date(2019, 6, 1), "0.3")], key=key)

    async def older_arrived():
        found = await prices_of(services.points, ISSUER)
        return found if len(found) == 2 else None

    found = await eventually(older_arrived, what="the late older version")
    assert [(p["valid_from"], Decimal(p["price_minor_per_point"])) for p in found] == [
        ("2019-06-01", Decimal("0.3")), ("2020-01-01", Decimal("0.5"))]  # fmt: skip


async def test_the_month_statement_reconciles_after_earns_a_gift_a_redemption_and_an_expiry(services, infra):
    api, prefix = services.points, services.prefix
    if not await prices_of(api, ISSUER):  # run alone: the partner's price straight onto the topic
        await publish(infra.kafka, PARTNER_CONTRACTS.qualified(prefix), [contract_event(date(2020, 1, 1), "0.5")],
                      key=PARTNER.encode())  # fmt: skip
        await eventually(lambda: prices_of(api, ISSUER), what="the partner's price")
    today = datetime.now(UTC).date().isoformat()
    card_price = {"issuer": "card:issued", "valid_from": today, "currency": "CNY", "price_minor_per_point": "1.25"}
    assert (await api.post("/v1/ops/issue-prices", json=card_price, headers=OPS)).status_code == 201

    a, b, c = [await new_member(api, name) for name in ("Ada", "Bo", "Cy")]
    await link(api, a, partner_id=PARTNER, customer_ref="liab-a")
    await link(api, c, card_token="tok_liabilityC1")
    await publish(infra.kafka, PARTNER_PURCHASES.qualified(prefix), [
        purchase("liab-a", "order-1", 100_000, 1_000, partner=PARTNER),
        purchase("liab-a", "order-old", 20_000, 200, partner=PARTNER, at=now() - timedelta(days=800)),
    ])  # fmt: skip
    await publish(infra.kafka, CARD_TRANSACTIONS.qualified(prefix), [card_purchase("tok_liabilityC1", "tx-1", 10_000)])
    await eventually(lambda: _posted(api, a, 1_200), what="A's earnings")
    await eventually(lambda: _posted(api, c, 200), what="C's card points")

    assert (await api.post("/v1/ops/expiry-runs", headers=OPS)).json()["points_expired"] == 200
    gift = {"gift_id": str(uuid.uuid4()), "to_member_id": str(b), "amount": 150}
    assert (await api.post(f"/v1/members/{a}/gifts", json=gift, headers=member_headers(a))).status_code == 201
    held = hold(b, 100, partner="skyair")
    await publish(infra.kafka, HOLD_COMMANDS.qualified(prefix), [held])
    await publish(infra.kafka, HOLD_COMMANDS.qualified(prefix), [capture(held)])
    await eventually(lambda: _posted(api, b, 50), what="B's redemption captured")

    month = Month.of(datetime.now(UTC), services.zone)  # type: ignore[arg-type]
    answer = await api.get(f"/v1/ops/liability/statements/{month.label}", headers=OPS)
    assert answer.status_code == 200, answer.text
    statement = answer.json()
    assert statement["status"] == "open"
    lines = {line["issuer"]: line for line in statement["lines"]}
    sky, card = lines[ISSUER], lines["card:issued"]
    assert (sky["opening"], sky["issued"], sky["redeemed"], sky["expired"], sky["moved"], sky["closing"]) == (
        0, 1_200, 100, 200, 0, 900)  # fmt: skip
    assert (sky["received_as_gifts"], sky["closing_value_minor"], sky["received_as_gifts_value_minor"]) == (50, 450, 25)
    assert (card["issued"], card["closing"], card["closing_value_minor"]) == (200, 200, 250)
    assert statement["reconciliation"] == {"ledger_points": 1_100, "statement_points": 1_100, "difference": 0}
    assert statement["values"] == [{"currency": "CNY", "value_minor": 700}]

    position = (await api.get("/v1/ops/liability", headers=OPS)).json()
    assert (position["outstanding"], position["received_as_gifts"]) == (1_100, 50)
    assert position["reconciliation"]["difference"] == 0

    rates = (await api.get(f"/v1/ops/liability/rates?from={month.label}&to={month.label}", headers=OPS)).json()
    [this] = rates["months"]
    assert (this["redeemed"], this["expired"], this["breakage_rate"], this["redemption_rate"]) == (
        100, 200, "0.6667", "0.3333")  # fmt: skip

    forecast = (await api.get("/v1/ops/liability/forecast", headers=OPS)).json()
    assert len(forecast["months"]) == 24
    assert sum(m["points"] for m in forecast["months"]) + forecast["later_points"] == 1_100

    exported = await api.get(f"/v1/ops/liability/statements/{month.label}.csv", headers=OPS)
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["issuer"], r["closing"]) for r in rows] == [("card:issued", "200"), (ISSUER, "900"), ("total", "1100")]

    await _closed_month_is_kept_and_verified(services, month)


async def _closed_month_is_kept_and_verified(services: Services, month: Month) -> None:
    """Read the month as if it had ended: it is kept, and `make verify` proves it, and notices a tampered line."""
    store = LiabilityStore(await asyncpg.create_pool(services.dsn, min_size=1, max_size=2))
    later = handle.Clock(services.zone, month.end(services.zone) + timedelta(days=1), timedelta(minutes=5))  # type: ignore[arg-type]
    closed = await handle.month_statement(store, month, later)
    assert closed.statement.closed
    assert closed.statement.difference == 0
    again = await handle.month_statement(store, month, later)
    assert again.statement.lines == closed.statement.lines  # read back as kept
    assert await verify_ledger(services.dsn) == []

    conn = await asyncpg.connect(services.dsn)
    try:
        await conn.execute("UPDATE liability_month_lines SET opening = opening + 1, closing = closing + 1 "
                           "WHERE issuer = 'card:issued' AND month = $1", month.label)  # fmt: skip
        broken = {v.check for v in await verify_ledger(services.dsn)}
        assert {"liability_statement_reconciles", "liability_statement_lines_match_the_lots"} <= broken
        await conn.execute("UPDATE liability_month_lines SET opening = opening - 1, closing = closing - 1 "
                           "WHERE issuer = 'card:issued' AND month = $1", month.label)  # fmt: skip
    finally:
        await conn.close()
    assert await verify_ledger(services.dsn) == []


async def _posted(api: httpx.AsyncClient, member: uuid.UUID, points: int) -> bool:
    return (await balance(api, member))["posted"] == points


async def test_the_ops_api_refuses_bad_and_future_requests_with_reasons(services):
    api = services.points
    ops = bearer(ops_token())  # an ops token from the partners helper works alike
    assert (await api.get("/v1/ops/liability", headers=member_headers(uuid.uuid4()))).status_code == 403
    this = Month.of(datetime.now(UTC), services.zone)  # type: ignore[arg-type]
    future = await api.get(f"/v1/ops/liability/statements/{this.shifted(1).label}", headers=ops)
    assert future.status_code == 422
    assert "has not started" in future.json()["detail"]
    assert (await api.get("/v1/ops/liability/statements/2026-13", headers=OPS)).status_code == 422
    reversed_range = await api.get("/v1/ops/liability/rates?from=2026-05&to=2026-01", headers=OPS)
    assert reversed_range.status_code == 422
    assert "from <= to" in reversed_range.json()["detail"]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert (await api.get("/v1/ops/liability", params={"as_of": tomorrow}, headers=OPS)).status_code == 422

    today = datetime.now(UTC).date()
    body = {"issuer": "programme", "valid_from": today.isoformat(), "currency": "CNY", "price_minor_per_point": "0.7"}
    assert (await api.post("/v1/ops/issue-prices", json=body, headers=OPS)).status_code == 201
    assert (await api.post("/v1/ops/issue-prices", json=body, headers=OPS)).status_code == 201  # the same, once
    changed = await api.post("/v1/ops/issue-prices", json={**body, "price_minor_per_point": "0.8"}, headers=OPS)
    assert changed.status_code == 409
    partner = await api.post("/v1/ops/issue-prices", json={**body, "issuer": ISSUER}, headers=OPS)
    assert partner.status_code == 422
    assert "earn contract" in partner.json()["detail"]
    past = await api.post("/v1/ops/issue-prices", headers=OPS,
                          json={**body, "valid_from": (today - timedelta(days=1)).isoformat()})  # fmt: skip
    assert past.status_code == 422
    assert "past" in past.json()["detail"]
    conn = await asyncpg.connect(services.dsn)
    try:
        entries = await conn.fetch("SELECT actor, action, subject FROM audit_log WHERE action = 'issue_price.set' "
                                   "AND subject LIKE 'issue_price:programme:%'")  # fmt: skip
    finally:
        await conn.close()
    assert [(e["actor"], e["subject"]) for e in entries] == [("ops-test", f"issue_price:programme:{today}")]
