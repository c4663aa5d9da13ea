"""Points exchange on the real broker and databases (issue 13, item 2).

In: the card system's CardPointsConverted becomes alliance points at the dated rate, once per request id;
without a rate it is dead-lettered. Out: a member's exchange holds points, reaches the partner, whose
confirmation captures the hold (and prices it in the partner's statement) and whose refusal releases it;
the daily limit and a second decision are refused.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from contracts.events.exchange import CardPointsConverted, CardPointsConvertedPayload
from contracts.topics import CARD_POINTS_EXCHANGES
from points.handlers.verify import verify_ledger
from tests.support.kafka import read_all
from tests.support.ledger import OPS, balance, link, member_headers, new_member, publish
from tests.support.partner_client import SignedPartnerClient, bearer, ops_token, register_partner
from tests.support.services import http, partners_service, points_service, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

RATE_FROM = datetime.now(UTC) - timedelta(days=1)


@pytest.fixture
async def both(infra, topic_prefix, database):
    """Points and partners, SkyAir registered (redemption price 0.4 minor units per point) with a programme."""
    partners_dsn, points_dsn = await database("partners"), await database("points")
    async with (
        running(partners_service(infra.kafka, partners_dsn, topic_prefix)) as partners,
        running(points_service(infra.kafka, points_dsn, topic_prefix)) as points,
        http(partners) as partners_api,
        http(points) as api,
    ):
        sky = SignedPartnerClient(partners_api, await register_partner(partners_api, ops_token(), "skyair"))
        rate = {"valid_from": RATE_FROM.isoformat(), "rate": "0.25"}
        answer = await api.post("/v1/ops/card-points-rates", json=rate, headers=OPS)
        assert answer.status_code == 201, answer.text
        terms = {"units_name": "miles", "min_points": 200, "step_points": 100, "daily_limit_points": 800}
        answer = await api.put("/v1/ops/exchange-programmes/skyair", json=terms, headers=OPS)
        assert answer.status_code == 200, answer.text
        answer = await api.post("/v1/ops/exchange-programmes/skyair/rates", json={**rate, "rate": "0.8"}, headers=OPS)
        assert answer.status_code == 201, answer.text
        yield api, sky, partners_api, points_dsn, topic_prefix


def converted(card_token: str, card_points: int, request_id: uuid.UUID | None = None, at: datetime | None = None):
    event_id = uuid.uuid4()
    return CardPointsConverted(
        event_id=event_id, occurred_at=at or datetime.now(UTC), source="card-system", correlation_id=event_id,
        payload=CardPointsConvertedPayload(request_id=request_id or uuid.uuid4(), card_token=card_token,
                                           card_points=card_points),
    )  # fmt: skip


async def member_with_card_points(api: httpx.AsyncClient, kafka: str, prefix: str, card_points: int) -> uuid.UUID:
    member = await new_member(api)
    token = f"tok_{member.hex[:16]}"
    await link(api, member, card_token=token)
    await publish(kafka, CARD_POINTS_EXCHANGES.qualified(prefix), [converted(token, card_points)])

    async def credited() -> bool:
        return (await balance(api, member))["posted"] == card_points // 4

    await eventually(credited, what="the converted card points")
    return member


async def ask(api: httpx.AsyncClient, member: uuid.UUID, points: int, exchange_id: uuid.UUID | None = None):
    body = {"exchange_id": str(exchange_id or uuid.uuid4()), "partner_id": "skyair", "points": points,
            "membership_number": "SKY-0042"}  # fmt: skip
    return await api.post(f"/v1/members/{member}/exchanges", json=body, headers=member_headers(member))


async def pending_at_partner(sky: SignedPartnerClient, exchange_id: str) -> dict[str, Any]:
    async def listed() -> dict[str, Any] | None:
        items = (await sky.send("GET", "/exchanges?status=pending")).json()["items"]
        return next((i for i in items if i["exchange_id"] == exchange_id), None)

    return await eventually(listed, what="the exchange at the partner")


async def status_in_ledger(api: httpx.AsyncClient, member: uuid.UUID, exchange_id: str, wanted: str) -> None:
    async def settled() -> bool:
        items = (await api.get(f"/v1/members/{member}/exchanges", headers=member_headers(member))).json()["items"]
        return any(i["exchange_id"] == exchange_id and i["status"] == wanted for i in items)

    await eventually(settled, what=f"the exchange {wanted}")


async def test_card_points_are_credited_once_at_the_dated_rate_and_without_a_rate_dead_lettered(both, infra):
    api, _sky, _partners, dsn, prefix = both
    member = await new_member(api)
    token, stranger = f"tok_{member.hex[:16]}", f"tok_{uuid.uuid4().hex[:16]}"
    await link(api, member, card_token=token)
    request = uuid.uuid4()
    first, repeat = converted(token, 1003, request), converted(token, 1003, request)
    too_early = converted(token, 5000, at=RATE_FROM - timedelta(hours=1))
    unlinked = converted(stranger, 400)
    await publish(infra.kafka, CARD_POINTS_EXCHANGES.qualified(prefix), [first, too_early, repeat, unlinked])

    dead = await read_all(infra.kafka, prefix + CARD_POINTS_EXCHANGES.dead_letter, expected=1)
    assert "no card-points rate" in dict((k, v.decode()) for k, v in dead[0].headers)["dlq-reason"], [
        dict(r.headers) for r in dead
    ]

    async def credited() -> dict[str, int] | None:
        state = await balance(api, member)
        return state if state["posted"] == 250 else None

    await eventually(credited, what="250 points: 1003 card points at 0.25, rounded down")
    history = (await api.get(f"/v1/members/{member}/history", headers=member_headers(member))).json()["items"]
    assert (history[0]["reason"], history[0]["amount"], history[0]["counterparty"]) == (
        "exchange_in", 250, "card-points:exchange",
    )  # fmt: skip

    other = await new_member(api, "Late linker")
    await eventually(lambda: _verified(dsn), what="the unlinked card's conversion")
    await link(api, other, card_token=stranger)
    assert (await balance(api, other))["posted"] == 100, "the unclaimed conversion is claimed on link"
    assert (await balance(api, member))["posted"] == 250, "the repeat changed nothing"
    assert await verify_ledger(dsn) == []


async def _verified(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT count(*) FROM card_points_conversions") == 2
    finally:
        await conn.close()


async def test_a_confirmed_exchange_is_captured_once_and_priced_in_the_partners_statement(both, infra):
    api, sky, partners_api, dsn, prefix = both
    member = await member_with_card_points(api, infra.kafka, prefix, 4000)  # 1000 points
    exchange_id = uuid.uuid4()
    made = await ask(api, member, 600, exchange_id)
    assert made.status_code == 201, made.text
    assert (made.json()["status"], made.json()["units"]) == ("pending", 480)
    assert (await ask(api, member, 600, exchange_id)).status_code == 200, "a retry answers the same exchange"
    assert (await ask(api, member, 700, exchange_id)).status_code == 409
    assert (await balance(api, member))["available"] == 400

    over = await ask(api, member, 300)
    assert (over.status_code, over.json()["reason"]) == (422, "daily_limit")
    step = await ask(api, member, 250)
    assert (step.status_code, step.json()["reason"]) == (422, "not_a_step")

    seen = await pending_at_partner(sky, str(exchange_id))
    assert (seen["units"], seen["units_name"], seen["membership_number"]) == (480, "miles", "SKY-0042")
    path = f"/exchanges/{exchange_id}"
    confirmed = await sky.post(f"{path}/confirm", {"partner_reference": "SKY-TX-1"})
    assert (confirmed.status_code, confirmed.json()["status"]) == (200, "confirmed"), confirmed.text
    again = await sky.post(f"{path}/confirm", {"partner_reference": "SKY-TX-2"})
    assert (again.status_code, again.json()["reason"]) == (409, "already_confirmed")
    late_refusal = await sky.post(f"{path}/refuse", {"reason": "changed our mind"})
    assert (late_refusal.status_code, late_refusal.json()["reason"]) == (409, "already_confirmed")

    await status_in_ledger(api, member, str(exchange_id), "captured")
    state = await balance(api, member)
    assert (state["posted"], state["pending"], state["available"]) == (400, 0, 400)

    period = datetime.now(UTC).strftime("%Y-%m")

    async def in_statement() -> dict[str, Any] | None:
        answer = await partners_api.get(f"/v1/ops/statements?period={period}", headers=bearer(ops_token()))
        found = [s for s in answer.json()["statements"] if s["partner_id"] == "skyair"]
        return found[0] if found and found[0]["points_exchanged"] == 600 else None

    statement = await eventually(in_statement, what="the exchange in SkyAir's statement")
    (line,) = statement["lines"]
    assert (line["points_redeemed"], line["points_exchanged"], line["exchange_amount_minor"]) == (0, 600, 240)
    assert line["net_minor"] == 240 - line["issue_amount_minor"]
    assert await verify_ledger(dsn) == []


async def test_a_refused_exchange_is_released_and_frees_the_daily_limit(both, infra):
    api, sky, _partners, dsn, prefix = both
    member = await member_with_card_points(api, infra.kafka, prefix, 4000)
    first = (await ask(api, member, 800)).json()["exchange_id"]
    assert (await ask(api, member, 200)).json()["reason"] == "daily_limit"

    await pending_at_partner(sky, first)
    refused = await sky.post(f"/exchanges/{first}/refuse", {"reason": "unknown membership number"})
    assert (refused.status_code, refused.json()["status"]) == (200, "refused"), refused.text
    confirm_after = await sky.post(f"/exchanges/{first}/confirm", {"partner_reference": "SKY-TX-9"})
    assert (confirm_after.status_code, confirm_after.json()["reason"]) == (409, "already_refused")
    unknown = await sky.post(f"/exchanges/{uuid.uuid4()}/confirm", {"partner_reference": "X"})
    assert unknown.status_code == 404

    await status_in_ledger(api, member, first, "refused")
    assert (await balance(api, member))["available"] == 1000
    assert (await ask(api, member, 800)).status_code == 201, "a released exchange no longer counts against the limit"
    assert await verify_ledger(dsn) == []
