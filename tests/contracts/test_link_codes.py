"""Link codes as issuers and the points service read them (contracts.link_codes)."""

from __future__ import annotations

import re

import pytest

from contracts.events.links import LinkCodePayload
from contracts.link_codes import ALPHABET, LENGTH, MalformedLinkCodeError, code_hash, new_code, normalise

HASH = "0" * 64


def test_a_new_code_is_ten_unambiguous_characters_in_two_groups():
    codes = {new_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert re.fullmatch(rf"[{ALPHABET}]{{5}}-[{ALPHABET}]{{5}}", code)
    assert not set("ILOU") & set(ALPHABET)
    assert len(ALPHABET) ** LENGTH >= 2**50


def test_a_code_is_read_as_a_person_types_it():
    assert normalise(" k7q2m-9xd4t ") == "K7Q2M9XD4T"
    assert normalise("O1IL0-ABCDE") == "01110ABCDE", "O reads as 0, I and L as 1"
    assert code_hash("k7q2m 9xd4t") == code_hash("K7Q2M-9XD4T")
    assert code_hash("K7Q2M-9XD4T") != code_hash("K7Q2M-9XD4V")
    assert re.fullmatch(r"[0-9a-f]{64}", code_hash("K7Q2M-9XD4T"))


@pytest.mark.parametrize("typed", ["", "K7Q2M", "K7Q2M-9XD4TT", "K7Q2M-9XD4U", "K7Q2M-9XD4!"])
def test_text_that_cannot_be_a_code_is_refused_with_what_a_code_looks_like(typed):
    with pytest.raises(MalformedLinkCodeError, match="10 letters and digits"):
        normalise(typed)


@pytest.mark.parametrize(
    "identifier",
    [
        {},
        {"partner_id": "skymall"},
        {"customer_ref": "c-1"},
        {"partner_id": "skymall", "customer_ref": "c-1", "card_token": "tok_ada00000001"},
        {"partner_id": "skymall", "card_token": "tok_ada00000001"},
    ],
)
def test_an_issued_code_names_exactly_one_identifier(identifier):
    with pytest.raises(ValueError, match="partner_id and customer_ref, or for a card_token"):
        LinkCodePayload(code_sha256=HASH, expires_at="2026-11-20T09:45:00Z", **identifier)


def test_an_issued_code_carries_only_the_hash():
    payload = LinkCodePayload(
        partner_id="skymall", customer_ref="c-1", code_sha256=HASH, expires_at="2026-11-20T09:45:00+08:00"
    )
    assert payload.expires_at.utcoffset().total_seconds() == 0
    with pytest.raises(ValueError, match="pattern"):
        LinkCodePayload(card_token="tok_ada00000001", code_sha256="K7Q2M-9XD4T", expires_at=payload.expires_at)
