"""Data rights on real Kafka and PostgreSQL: a member earns, gifts and redeems, exports everything, then erases it.

After the erasure no original personal value remains in any text or jsonb column of the three databases, while
balances, the ledger's invariants and the settlement figures are exactly what they were; a second erasure changes
nothing; an export afterwards shows the pseudonyms.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from contracts.topics import CARD_TRANSACTIONS, OFFERS, PARTNER_PURCHASES
from points.handlers.verify import verify_ledger
from tests.support.ledger import OPS, balance, card_purchase, link, member_headers, new_member, publish, purchase
from tests.support.offers import published
from tests.support.partner_client import SignedPartnerClient, ops_token, purchase_item, register_partner
from tests.support.services import http, partners_service, points_service, redemption_service, running
from tests.support.waiting import eventually
from tools.reconcile import ledger_figures

pytestmark = pytest.mark.integration

WIDE = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


@dataclass
class Stack:
    points: httpx.AsyncClient
    partners: httpx.AsyncClient
    redemption: httpx.AsyncClient
    skymall: SignedPartnerClient
    dsns: dict[str, str]
    prefix: str
    kafka: str


@pytest.fixture
async def stack(infra, topic_prefix, database) -> AsyncIterator[Stack]:
    dsns = {name: await database(name) for name in ("points", "partners", "redemption")}
    fulfilment = httpx.MockTransport(lambda r: httpx.Response(200, json={"reference": "SKY-1"}))
    async with (
        running(points_service(infra.kafka, dsns["points"], topic_prefix)) as points,
        running(partners_service(infra.kafka, dsns["partners"], topic_prefix)) as partners,
        running(redemption_service(infra.kafka, dsns["redemption"], topic_prefix, partners=fulfilment)) as redemption,
        http(points) as points_api,
        http(partners) as partners_api,
        http(redemption) as redemption_api,
    ):
        token = ops_token(partners.settings.jwt_secret)
        skymall = SignedPartnerClient(partners_api, await register_partner(partners_api, token, "skymall"))
        await register_partner(partners_api, token, "skyair")
        yield Stack(points_api, partners_api, redemption_api, skymall, dsns, topic_prefix, infra.kafka)


async def fetch(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


TEXT_COLUMNS = """
SELECT table_name, column_name FROM information_schema.columns
 WHERE table_schema = 'public' AND data_type IN ('text', 'jsonb', 'json', 'character varying', 'character', 'ARRAY')
 ORDER BY 1, 2
"""


async def where_found(dsn: str, values: list[str]) -> list[str]:
    """`table.column: a sample` of every column in the database whose text holds one of `values`."""
    conn = await asyncpg.connect(dsn)
    try:
        found = []
        for row in await conn.fetch(TEXT_COLUMNS):
            table, column = row["table_name"], row["column_name"]
            sql = f'SELECT "{column}"::text FROM "{table}" WHERE "{column}"::text LIKE ANY($1::text[]) LIMIT 1'
            sample = await conn.fetchval(sql, [f"%{v}%" for v in values])
            if sample is not None:
                found.append(f"{table}.{column}: {sample[:300]}")
        return found
    finally:
        await conn.close()


@dataclass
class Story:
    member: uuid.UUID
    friend: uuid.UUID
    name: str
    customer_ref: str
    card_token: str
    gift_message: str

    @property
    def personal(self) -> list[str]:
        return [self.name, self.customer_ref, self.card_token, self.gift_message]


async def earn_gift_and_redeem(stack: Stack) -> Story:
    """Points from a partner (before and after the link) and the card, a gift to a friend, a voucher redeemed."""
    tag = uuid.uuid4().hex[:10]
    name = f"Zhang Secret{tag}"
    story = Story(await new_member(stack.points, name), await new_member(stack.points, "Friend"), name,
                  f"cust-secret-{tag}", f"tok_SECRET{tag}", f"thanks from Zhang{tag}")  # fmt: skip
    answer = await stack.skymall.purchase(purchase_item(f"a-{tag}", 30_000, customer_ref=story.customer_ref))
    assert answer.status_code == 202, answer.text
    await eventually(lambda: _earned(stack, 1), what="the purchase before the link")
    await link(stack.points, story.member, partner_id="skymall", customer_ref=story.customer_ref)
    await link(stack.points, story.member, card_token=story.card_token)
    answer = await stack.skymall.purchase(purchase_item(f"b-{tag}", 20_000, customer_ref=story.customer_ref))
    assert answer.status_code == 202, answer.text
    await publish(stack.kafka, CARD_TRANSACTIONS.qualified(stack.prefix), [card_purchase(story.card_token, f"t{tag}",
                                                                                         10_000)])  # fmt: skip
    await eventually(lambda: _earned(stack, 3), what="the purchase after the link and the card purchase")
    gift = {"gift_id": str(uuid.uuid4()), "to_member_id": str(story.friend), "amount": 40,
            "message": story.gift_message}  # fmt: skip
    gifts = f"/v1/members/{story.member}/gifts"
    answer = await stack.points.post(gifts, json=gift, headers=member_headers(story.member))
    assert answer.status_code == 201, answer.text
    await redeem(stack, story.member)
    return story


async def _earned(stack: Stack, count: int) -> bool:
    return len(await fetch(stack.dsns["points"], "SELECT 1 FROM earnings")) >= count


async def redeem(stack: Stack, member: uuid.UUID) -> None:
    offer = published("skyair", "coffee", 1, price_points=100, valid_from=datetime.now(UTC) - timedelta(days=1))
    await publish(stack.kafka, OFFERS.qualified(stack.prefix), [offer], key=b"skyair")

    async def listed() -> bool:
        return (await stack.redemption.get("/v1/catalog/skyair/coffee", headers=OPS)).status_code == 200

    await eventually(listed, what="the offer in the catalog")
    body = {"partner_id": "skyair", "offer_id": "coffee", "idempotency_key": uuid.uuid4().hex}
    answer = await stack.redemption.post("/v1/orders", json=body, headers=member_headers(member))
    assert answer.status_code in (200, 202), answer.text
    order_id = answer.json()["order_id"]

    async def fulfilled() -> bool:
        found = (await stack.redemption.get(f"/v1/orders/{order_id}", headers=member_headers(member))).json()
        return found["state"] == "fulfilled"

    await eventually(fulfilled, timeout=30, what="the order fulfilled")


async def export(stack: Stack, member: uuid.UUID, headers: dict[str, str]) -> dict[str, Any]:
    parts = {}
    for name, api in (("points", stack.points), ("redemption", stack.redemption)):
        answer = await api.get(f"/v1/members/{member}/data-export", headers=headers)
        assert answer.status_code == 200, answer.text
        parts[name] = answer.json()
    purchases = parts["points"]["partner_purchase_event_ids"]
    answer = await stack.partners.get(f"/v1/members/{member}/data-export", params={"purchase_event_id": purchases},
                                      headers=headers)  # fmt: skip
    assert answer.status_code == 200, answer.text
    parts["partners"] = answer.json()
    return parts


async def figures(stack: Stack, members: list[uuid.UUID]) -> dict[str, Any]:
    """Balances, the ledger's settlement figures and the partners service's settlement entries."""
    points = await asyncpg.connect(stack.dsns["points"])
    try:
        ledger = await ledger_figures(points, *WIDE)
        sums = await points.fetch("SELECT account_id, debits_posted, credits_posted FROM accounts ORDER BY 1")
    finally:
        await points.close()
    entries = await fetch(stack.dsns["partners"], "SELECT partner_id, measure, sum(points) AS p FROM "
                          "settlement_entries GROUP BY 1, 2 ORDER BY 1, 2")  # fmt: skip
    return {
        "balances": [await balance(stack.points, m) for m in members],
        "ledger": ledger,
        "totals": sorted((r["debits_posted"], r["credits_posted"]) for r in sums),
        "settlement": [tuple(r) for r in entries],
    }


async def erase(stack: Stack, member: uuid.UUID, headers: dict[str, str]) -> dict[str, Any]:
    answer = await stack.points.post(f"/v1/members/{member}/erasure", json={"confirm": "ERASE"}, headers=headers)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def erased_everywhere(stack: Stack, story: Story) -> dict[str, list[str]]:
    async def gone() -> dict[str, list[str]] | None:
        found = {name: await where_found(dsn, story.personal) for name, dsn in stack.dsns.items()}
        return None if any(found.values()) else found

    try:
        return await eventually(gone, timeout=20, what="no personal value left in any database")
    except AssertionError:
        return {name: await where_found(dsn, story.personal) for name, dsn in stack.dsns.items()}


async def test_export_has_everything_and_erasure_leaves_no_personal_value_while_the_ledger_stays(stack: Stack):
    story = await earn_gift_and_redeem(stack)
    exported = await export(stack, story.member, member_headers(story.member))
    points = exported["points"]["tables"]
    assert points["members"][0]["display_name"] == story.name
    assert sorted(i["identifier"] for i in points["identifiers"]) == sorted(
        [f"card:{story.card_token}", f"partner:skymall:{story.customer_ref}"]
    )
    assert len(points["earnings"]) == 3
    assert [g["message"] for g in points["gifts"]] == [story.gift_message]
    assert {t["reason"] for t in points["transfers"]} >= {"partner_purchase", "card_purchase", "claim", "gift"}
    assert len(points["holds"]) == 1
    assert [o["state"] for o in exported["redemption"]["tables"]["orders"]] == ["fulfilled"]
    intake = exported["partners"]["tables"]["intake_requests"]
    assert sorted(r["customer_ref"] for r in intake) == [story.customer_ref] * 2
    assert all("body_hash" not in r for r in intake)
    assert exported["partners"]["customer_refs"] == [{"partner_id": "skymall", "customer_ref": story.customer_ref}]

    before = await figures(stack, [story.member, story.friend])
    erased = await erase(stack, story.member, member_headers(story.member))
    assert (erased["identifiers"], erased["repeated"]) == (2, False)

    left = await erased_everywhere(stack, story)
    assert left == {"points": [], "partners": [], "redemption": []}, f"personal values left in {left}"
    assert await figures(stack, [story.member, story.friend]) == before, "balances and settlement must not move"
    assert await verify_ledger(stack.dsns["points"]) == []

    again = await erase(stack, story.member, OPS)
    assert (again["identifiers"], again["repeated"], again["erasure_id"]) == (0, True, erased["erasure_id"])
    assert await figures(stack, [story.member, story.friend]) == before

    after = await export(stack, story.member, OPS)
    tables = after["points"]["tables"]
    assert tables["members"][0]["display_name"].startswith("erased-")
    assert all(i["identifier"].split(":")[-1].startswith("erased-") and i["member_id"] is None
               for i in tables["identifiers"])  # fmt: skip
    assert len(tables["earnings"]) == 3, "the erased identifiers' earnings stay the member's, under pseudonyms"
    assert [g["message"] for g in tables["gifts"]] == [""]
    assert {e["action"] for e in tables["audit_log"]} >= {"member.exported", "member.erased"}
    assert all(story.name not in str(e) for e in tables["audit_log"])
    refs = after["partners"]["customer_refs"]
    assert len(refs) == 1
    assert refs[0]["customer_ref"].startswith("erased-")
    redemption_audit = await fetch(stack.dsns["redemption"], "SELECT action FROM audit_log WHERE subject = $1",
                                   f"member:{story.member}")  # fmt: skip
    assert "member.erased" in {r["action"] for r in redemption_audit}


async def test_a_purchase_with_the_old_identifier_after_the_erasure_waits_unclaimed(stack: Stack):
    tag = uuid.uuid4().hex[:8]
    member, ref = await new_member(stack.points, "Li"), f"cust-later-{tag}"
    await link(stack.points, member, partner_id="skymall", customer_ref=ref)
    await erase(stack, member, OPS)
    await publish(stack.kafka, PARTNER_PURCHASES.qualified(stack.prefix), [purchase(ref, f"late-{tag}", 5_000, 50)])
    await eventually(lambda: _earned(stack, 1), what="the late purchase")
    assert (await balance(stack.points, member))["posted"] == 0
    rows = await fetch(stack.dsns["points"], "SELECT credit_account FROM transfers")
    assert [r["credit_account"] for r in rows] == [f"unclaimed:partner:skymall:{ref}"]


async def test_erasure_refuses_without_confirmation_or_for_another_member_and_races_earnings_safely(stack: Stack):
    member, other = await new_member(stack.points, "Wu"), await new_member(stack.points, "Other")
    ref = f"cust-race-{uuid.uuid4().hex[:8]}"
    path = f"/v1/members/{member}/erasure"
    assert (await stack.points.post(path, json={"confirm": "yes"}, headers=member_headers(member))).status_code == 422
    assert (await stack.points.post(path, json={}, headers=member_headers(member))).status_code == 422
    forbidden = await stack.points.post(path, json={"confirm": "ERASE"}, headers=member_headers(other))
    assert forbidden.status_code == 403
    peek = await stack.points.get(f"/v1/members/{member}/data-export", headers=member_headers(other))
    assert peek.status_code == 403
    too_many = {"purchase_event_id": [str(uuid.uuid4()) for _ in range(1001)]}
    answer = await stack.partners.get(f"/v1/members/{member}/data-export", params=too_many, headers=OPS)
    assert answer.status_code in (414, 422, 431)

    await link(stack.points, member, partner_id="skymall", customer_ref=ref)
    events = [purchase(ref, f"race-{i}", 1_000, 10) for i in range(60)]
    topic = PARTNER_PURCHASES.qualified(stack.prefix)
    await asyncio.gather(publish(stack.kafka, topic, events), erase(stack, member, member_headers(member)))
    await eventually(lambda: _earned(stack, 60), what="every purchase of the race applied, none dead-lettered")
    assert await fetch(stack.dsns["points"], "SELECT 1 FROM dead_letters") == []
    assert await verify_ledger(stack.dsns["points"]) == []
    posted = (await balance(stack.points, member))["posted"]
    unclaimed = await fetch(stack.dsns["points"], "SELECT credits_posted - debits_posted AS p FROM accounts "
                            "WHERE kind = 'unclaimed'")  # fmt: skip
    assert posted + sum(r["p"] for r in unclaimed) == 600, "every purchase's points, to the member or unclaimed"
