"""The request signature that partners, tests and the service share (contracts.signing), and its checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from contracts.signing import canonical_string, sign, signed_headers, verify
from partners.domain.credentials import (
    ApiKey,
    BadSignatureError,
    ForeignPartnerError,
    MalformedTimestampError,
    MissingSignatureError,
    RevokedKeyError,
    SignedRequest,
    StaleTimestampError,
    UnknownKeyError,
    check_acts_as,
    check_fresh,
    check_signed_by,
    derive_secret,
    new_key_id,
    read_timestamp,
)

BODY = b'{"amount_minor": 100}'
MASTER = "m" * 32


def test_the_canonical_string_is_method_path_timestamp_and_body_digest_on_four_lines():
    text = canonical_string("post", "/v1/partners/skymall/purchases", 1_795_000_000, BODY)
    assert text == ("POST\n/v1/partners/skymall/purchases\n1795000000\n" + hashlib.sha256(BODY).hexdigest())


def test_the_signature_is_hex_hmac_sha256_of_the_canonical_string_under_the_secret():
    expected = hmac.new(b"s3cret", canonical_string("POST", "/p", 1, BODY).encode(), hashlib.sha256).hexdigest()
    assert sign("s3cret", "POST", "/p", 1, BODY) == expected
    assert verify("s3cret", "POST", "/p", 1, BODY, expected)


@pytest.mark.parametrize(
    "tampered",
    [
        {"secret": "other"},
        {"method": "PUT"},
        {"path": "/v1/partners/skyair/purchases"},
        {"timestamp": 2},
        {"body": BODY + b" "},
    ],
)
def test_any_change_to_the_signed_parts_breaks_the_signature(tampered: dict[str, object]):
    signature = sign("s3cret", "POST", "/p", 1, BODY)
    parts: dict[str, object] = {"secret": "s3cret", "method": "POST", "path": "/p", "timestamp": 1, "body": BODY}
    parts.update(tampered)
    assert not verify(signature=signature, **parts)  # type: ignore[arg-type]


def test_only_the_lowercase_hex_spelling_verifies_and_odd_headers_do_not_crash():
    signature = sign("s3cret", "POST", "/p", 1, BODY)
    assert not verify("s3cret", "POST", "/p", 1, BODY, signature.upper())
    assert not verify("s3cret", "POST", "/p", 1, BODY, "é" * 64)
    assert not verify("s3cret", "POST", "/p", 1, BODY, "")


def test_signed_headers_carry_key_timestamp_and_signature():
    headers = signed_headers("pk_x", "s3cret", "POST", "/p", BODY, 42)
    assert headers == {
        "X-Loyalty-Key": "pk_x",
        "X-Loyalty-Timestamp": "42",
        "X-Loyalty-Signature": sign("s3cret", "POST", "/p", 42, BODY),
    }


def test_key_ids_are_pk_and_24_url_safe_characters_and_secrets_are_derived_not_stored():
    key_id = new_key_id()
    assert key_id.startswith("pk_")
    assert len(key_id) == 27
    assert set(key_id[3:]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert new_key_id() != key_id
    digest = hmac.new(MASTER.encode(), key_id.encode(), hashlib.sha256).digest()
    assert derive_secret(MASTER, key_id) == base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert "=" not in derive_secret(MASTER, key_id)
    assert derive_secret(MASTER, key_id) != derive_secret("n" * 32, key_id)


def request(**changes: object) -> SignedRequest:
    fields: dict[str, object] = {
        "key_id": "pk_" + "a" * 24,
        "timestamp": "1000",
        "signature": "0" * 64,
        "method": "POST",
        "path": "/v1/partners/skymall/purchases",
        "body": BODY,
    }
    fields.update(changes)
    return SignedRequest(**fields)  # type: ignore[arg-type]


def test_missing_headers_are_named():
    with pytest.raises(MissingSignatureError, match="missing X-Loyalty-Timestamp, X-Loyalty-Signature"):
        read_timestamp(request(timestamp=None, signature=""))


@pytest.mark.parametrize("raw", ["12.5", "-5", "soon", "١٢٣", "9" * 20])
def test_a_timestamp_must_be_whole_unix_seconds(raw: str):
    with pytest.raises(MalformedTimestampError, match="unix seconds"):
        read_timestamp(request(timestamp=raw))


def test_the_replay_window_is_300_seconds_either_way():
    check_fresh(1000, now=1300)
    check_fresh(1300, now=1000)
    with pytest.raises(StaleTimestampError, match="replay window is ±300 s"):
        check_fresh(1000, now=1301)
    with pytest.raises(StaleTimestampError, match="301 s away"):
        check_fresh(1301, now=1000)


def test_a_request_is_signed_by_a_known_unrevoked_key_with_its_derived_secret():
    key = ApiKey("pk_" + "a" * 24, "skymall", datetime(2026, 1, 1, tzinfo=UTC))
    secret = derive_secret(MASTER, key.key_id)
    good = request(signature=sign(secret, "POST", "/v1/partners/skymall/purchases", 1000, BODY))
    assert check_signed_by(key, key.key_id, MASTER, good, 1000) == key
    with pytest.raises(UnknownKeyError, match="unknown API key"):
        check_signed_by(None, key.key_id, MASTER, good, 1000)
    revoked = ApiKey(key.key_id, "skymall", key.created_at, datetime(2026, 2, 1, tzinfo=UTC))
    with pytest.raises(RevokedKeyError, match="was revoked at 2026-02-01"):
        check_signed_by(revoked, key.key_id, MASTER, good, 1000)
    with pytest.raises(BadSignatureError, match="does not match"):
        check_signed_by(key, key.key_id, "x" * 32, good, 1000)


def test_a_partner_acts_only_as_itself():
    key = ApiKey("pk_" + "a" * 24, "skymall", datetime(2026, 1, 1, tzinfo=UTC))
    check_acts_as(key, "skymall")
    with pytest.raises(ForeignPartnerError, match="belongs to partner 'skymall', not 'skyair'"):
        check_acts_as(key, "skyair")
