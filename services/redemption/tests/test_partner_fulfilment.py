"""The fulfilment callback: signed with the partner's own key; in production sent only to an address checked then."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from contracts.signing import KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from redemption.adapters.fulfilment import PartnerFulfilment
from redemption.domain.fulfilment_keys import FulfilmentKey, derive_secret, first_key
from redemption.domain.fulfilment_urls import PERMISSIVE, Address, UrlPolicy
from redemption.domain.orders import Order

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
MASTER = "a-master-secret-of-thirty-two-characters-or-more"
PRODUCTION = UrlPolicy.parse(True, "")


def order(partner_id: str = "skyair", *, in_doubt: bool = False) -> Order:
    return Order(
        uuid.uuid4(), uuid.uuid4(), partner_id, "lounge", "product", 1, 500,
        hold_expires_at=NOW + timedelta(minutes=30), fulfilment_deadline=NOW + timedelta(minutes=2), in_doubt=in_doubt,
    )  # fmt: skip


class Partners:
    """Every partner's fulfilment endpoint: remembers each request, answers 200."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json={"reference": "REF-1"})

    def fulfilment(self, urls: UrlPolicy = PERMISSIVE, *addresses: str) -> PartnerFulfilment:
        async def resolver(host: str, port: int) -> list[Address]:
            return [ipaddress.ip_address(a) for a in addresses]

        return PartnerFulfilment(MASTER, httpx.MockTransport(self.handle), urls=urls, resolver=resolver)


def verifies(request: httpx.Request, secret: str) -> bool:
    timestamp = int(request.headers[TIMESTAMP_HEADER])
    return verify(secret, "POST", request.url.path, timestamp, request.content, request.headers[SIGNATURE_HEADER])


async def test_each_partner_s_callback_carries_its_own_key_and_verifies_only_with_its_own_secret():
    partners = Partners()
    skyair, skymall = first_key("skyair", NOW), first_key("skymall", NOW)
    fulfilment = partners.fulfilment()
    await fulfilment.fulfil(order("skyair"), "http://127.0.0.1:9000/fulfil", skyair)
    await fulfilment.fulfil(order("skymall"), "http://127.0.0.1:9001/fulfil", skymall)

    to_skyair, to_skymall = partners.requests
    assert (to_skyair.headers[KEY_HEADER], to_skymall.headers[KEY_HEADER]) == ("fk_skyair_v1", "fk_skymall_v1")
    skyair_secret, skymall_secret = derive_secret(MASTER, skyair), derive_secret(MASTER, skymall)
    assert skyair_secret != skymall_secret
    assert verifies(to_skyair, skyair_secret)
    assert not verifies(to_skyair, skymall_secret)
    assert verifies(to_skymall, skymall_secret)
    assert not verifies(to_skymall, skyair_secret)
    assert not verifies(to_skyair, MASTER), "the programme-wide secret signs nothing any more"


async def test_a_rotated_key_changes_the_key_id_and_the_signature():
    partners = Partners()
    v1 = first_key("skyair", NOW)
    v2 = FulfilmentKey("skyair", 2, issued=True, created_at=NOW, active_from=NOW)
    fulfilment = partners.fulfilment()
    same = order()
    await fulfilment.fulfil(same, "http://127.0.0.1:9000/fulfil", v1)
    await fulfilment.fulfil(same, "http://127.0.0.1:9000/fulfil", v2)
    before, after = partners.requests
    assert (before.headers[KEY_HEADER], after.headers[KEY_HEADER]) == ("fk_skyair_v1", "fk_skyair_v2")
    assert verifies(after, derive_secret(MASTER, v2))
    assert not verifies(after, derive_secret(MASTER, v1))


async def test_in_production_the_call_goes_to_the_checked_address_with_the_host_kept_for_tls():
    partners = Partners()
    answer = await partners.fulfilment(PRODUCTION, "93.184.216.34").fulfil(
        order(), "https://fulfil.skyair.example/orders?x=1", first_key("skyair", NOW)
    )
    assert (answer.outcome, answer.reference) == ("delivered", "REF-1")
    [request] = partners.requests
    assert (request.url.host, request.url.path, request.url.query) == ("93.184.216.34", "/orders", b"x=1")
    assert request.headers["Host"] == "fulfil.skyair.example"
    assert request.extensions["sni_hostname"] == "fulfil.skyair.example"
    assert verifies(request, derive_secret(MASTER, first_key("skyair", NOW)))


async def test_in_production_a_host_that_now_resolves_to_a_private_address_is_not_called_and_the_order_declined():
    partners = Partners()
    fulfilment = partners.fulfilment(PRODUCTION, "93.184.216.34", "10.0.0.9")
    answer = await fulfilment.fulfil(order(), "https://fulfil.skyair.example/f", first_key("skyair", NOW))
    assert (answer.outcome, answer.reason) == ("declined", "fulfilment_url_refused")
    assert partners.requests == []


async def test_a_refused_url_for_an_order_in_doubt_is_asked_again_not_declined():
    partners = Partners()
    fulfilment = partners.fulfilment(PRODUCTION, "127.0.0.1")
    answer = await fulfilment.fulfil(order(in_doubt=True), "https://fulfil.skyair.example/f", first_key("skyair", NOW))
    assert (answer.outcome, answer.in_doubt) == ("retry", True), "an earlier call may have delivered"
    assert answer.reason.startswith("fulfilment_url_refused: 'fulfil.skyair.example' resolves to 127.0.0.1, a loopback")
    assert partners.requests == []


@pytest.mark.parametrize("url", ["http://127.0.0.1/fulfil", "https://10.0.0.5/fulfil", "http://partner.example/f"])
async def test_in_production_a_stored_url_that_is_refused_now_declines_without_a_call(url: str):
    partners = Partners()
    answer = await partners.fulfilment(PRODUCTION, "93.184.216.34").fulfil(order(), url, first_key("skyair", NOW))
    assert (answer.outcome, answer.reason) == ("declined", "fulfilment_url_refused")
    assert partners.requests == []


async def test_a_host_that_does_not_resolve_is_tried_again_later():
    async def nowhere(host: str, port: int) -> list[Address]:
        raise OSError("Name or service not known")

    partners = Partners()
    fulfilment = PartnerFulfilment(MASTER, httpx.MockTransport(partners.handle), urls=PRODUCTION, resolver=nowhere)
    answer = await fulfilment.fulfil(order(), "https://fulfil.skyair.example/f", first_key("skyair", NOW))
    assert (answer.outcome, answer.in_doubt) == ("retry", False)
    assert "cannot resolve" in answer.reason
