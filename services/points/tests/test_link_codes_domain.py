"""Who may link an identifier, and on what proof: the link code's rules, without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from contracts.link_codes import code_hash, new_code
from points.domain.link_codes import (
    LinkCode,
    LinkCodeExhaustedError,
    LinkCodeExpiredError,
    LinkCodeMismatchError,
    LinkCodeNotKnownError,
    LinkCodeRequiredError,
    LinkCodeUsedError,
    check_code,
)

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
CARD = "card:tok_ada00000001"


def code_for(identifier: str = CARD, **changes: object) -> LinkCode:
    fields: dict[str, object] = {
        "code_hash": code_hash(new_code()),
        "identifier": identifier,
        "issued_by": "ops:card-system",
        "issued_at": NOW - timedelta(minutes=1),
        "expires_at": NOW + timedelta(minutes=14),
    }
    fields.update(changes)
    return LinkCode(**fields)  # type: ignore[arg-type]


def test_an_open_code_for_the_identifier_links_it():
    code = code_for()
    assert check_code(code, CARD, NOW, max_attempts=5) is code


@pytest.mark.parametrize(
    ("code", "refusal", "wrong_guess"),
    [
        (None, LinkCodeNotKnownError, True),
        (code_for("card:tok_bob00000002"), LinkCodeMismatchError, True),
        (code_for(used_at=NOW - timedelta(seconds=5), used_by=uuid.uuid4()), LinkCodeUsedError, False),
        (code_for(wrong_attempts=5), LinkCodeExhaustedError, False),
        (code_for(expires_at=NOW), LinkCodeExpiredError, False),
    ],
    ids=["unknown", "another identifier", "used", "too many wrong codes", "expired"],
)
def test_a_code_that_cannot_link_is_refused_with_its_reason(code, refusal, wrong_guess):
    with pytest.raises(refusal) as refused:
        check_code(code, CARD, NOW, max_attempts=5)
    assert refused.value.wrong_guess is wrong_guess, "only wrong codes count against the identifier's open codes"
    assert "link code" in str(refused.value)


def test_an_unknown_code_may_only_be_in_flight_and_says_so():
    with pytest.raises(LinkCodeNotKnownError, match=r"not known \(yet\).*try again in a few seconds"):
        check_code(None, "partner:skymall:ada-1", NOW, max_attempts=5)


def test_refusals_say_whom_to_ask_for_a_code():
    assert "ask the bank's card app for a link code" in str(LinkCodeRequiredError(CARD))
    assert "ask the skymall app" in str(LinkCodeRequiredError("partner:skymall:ada-1"))
