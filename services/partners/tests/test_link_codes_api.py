"""A partner issues one-time link codes for its customers, signed; only their hashes leave, through the outbox."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from contracts.events.links import LinkCodeIssued
from contracts.link_codes import code_hash
from contracts.topics import LINK_CODES
from tests.support.kafka import read_all

pytestmark = pytest.mark.integration


async def test_a_partner_issues_a_link_code_whose_hash_alone_leaves_on_the_link_codes_topic(
    partner, infra, topic_prefix
):
    before = datetime.now(UTC)
    answer = await partner.link_code("cust-1")

    assert answer.status_code == 201, answer.text
    issued = answer.json()
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}", issued["link_code"])
    assert issued["customer_ref"] == "cust-1"
    expires_at = datetime.fromisoformat(issued["expires_at"])
    assert before + timedelta(minutes=15) <= expires_at <= datetime.now(UTC) + timedelta(minutes=15)

    [record] = await read_all(infra.kafka, LINK_CODES.qualified(topic_prefix), expected=1)
    event = LINK_CODES.decode(record.value)
    assert isinstance(event, LinkCodeIssued)
    assert (event.payload.partner_id, event.payload.customer_ref) == ("skymall", "cust-1")
    assert (event.payload.code_sha256, event.payload.expires_at) == (code_hash(issued["link_code"]), expires_at)
    assert issued["link_code"].replace("-", "").encode() not in record.value.replace(b"-", b"")
    assert record.key == b"skymall:cust-1"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"customer_ref": "has space"}, 422),
        ({"customer_ref": "c-1", "partner_id": "skyair"}, 422),
        ({}, 422),
    ],
)
async def test_a_link_code_request_names_one_customer_of_the_partner(partner, body, status):
    answer = await partner.send("POST", "/link-codes", json.dumps(body).encode())
    assert answer.status_code == status, answer.text


async def test_an_unsigned_link_code_request_is_refused(partners_api, skymall):
    answer = await partners_api.client.post("/v1/partners/skymall/link-codes", json={"customer_ref": "cust-1"})
    assert answer.status_code == 401, answer.text
