"""Webhooks without I/O: Standard Webhooks signing (the spec's own vector), the retry schedule, the URL rules."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from contracts import webhooks as wire
from partners.domain.webhooks import (
    RETRY_WINDOW,
    AttemptResult,
    InvalidEndpointError,
    Verdict,
    checked_url,
    event_types_of,
    next_attempt_at,
    retry_after,
    signing_secrets,
)

# standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py::test_sign_function
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def no_jitter() -> float:
    return 0.0


def test_signing_matches_the_standard_webhooks_test_vector() -> None:
    assert wire.sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE
    at = datetime.fromtimestamp(SPEC_TIMESTAMP, UTC)
    headers = wire.signed_headers([SPEC_SECRET], SPEC_ID, at, SPEC_BODY)
    assert headers == {"webhook-id": SPEC_ID, "webhook-timestamp": str(SPEC_TIMESTAMP),
                       "webhook-signature": SPEC_SIGNATURE}  # fmt: skip
    assert wire.verify(SPEC_SECRET, headers, SPEC_BODY, at + timedelta(seconds=299)) == SPEC_ID


def test_verification_refuses_a_changed_body_an_old_timestamp_and_another_secret() -> None:
    at = datetime.fromtimestamp(SPEC_TIMESTAMP, UTC)
    headers = wire.signed_headers([SPEC_SECRET], SPEC_ID, at, SPEC_BODY)
    with pytest.raises(wire.WebhookVerificationError, match="no signature"):
        wire.verify(SPEC_SECRET, headers, b'{"test": 2432232315}', at)
    with pytest.raises(wire.WebhookVerificationError, match="more than 300 s"):
        wire.verify(SPEC_SECRET, headers, SPEC_BODY, at + timedelta(seconds=301))
    with pytest.raises(wire.WebhookVerificationError, match="no signature"):
        wire.verify(wire.new_secret(), headers, SPEC_BODY, at)
    with pytest.raises(wire.WebhookVerificationError, match="missing"):
        wire.verify(SPEC_SECRET, {"webhook-id": SPEC_ID}, SPEC_BODY, at)


def test_during_a_rotation_both_secrets_sign_and_either_verifies() -> None:
    new = wire.new_secret()
    assert new.startswith("whsec_")
    assert len(new) > 30
    secrets_now = signing_secrets(new, SPEC_SECRET, T0 + timedelta(hours=1), T0)
    assert secrets_now == [new, SPEC_SECRET]
    headers = wire.signed_headers(secrets_now, SPEC_ID, T0, SPEC_BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert wire.verify(SPEC_SECRET, headers, SPEC_BODY, T0) == wire.verify(new, headers, SPEC_BODY, T0)
    assert signing_secrets(new, SPEC_SECRET, T0 + timedelta(hours=1), T0 + timedelta(hours=1)) == [new]


def test_retries_follow_the_schedule_for_a_day_then_stop() -> None:
    at, attempts, times = T0, 1, [T0]
    while (following := next_attempt_at(T0, attempts, at, jitter=no_jitter)) is not None:
        at, attempts = following, attempts + 1
        times.append(at)
    waits = [b - a for a, b in itertools.pairwise(times)]
    assert waits[:6] == [timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
                         timedelta(hours=5), timedelta(hours=10)]  # fmt: skip
    assert times[-1] == T0 + RETRY_WINDOW, "the last attempt is at the end of the day"
    assert len(times) == 8


def test_jitter_moves_a_wait_by_at_most_a_tenth_and_never_past_the_day() -> None:
    assert next_attempt_at(T0, 2, T0, jitter=lambda: 1.0) == T0 + timedelta(minutes=5.5)
    assert next_attempt_at(T0, 2, T0, jitter=lambda: -7.0) == T0 + timedelta(minutes=4.5)
    late = T0 + RETRY_WINDOW - timedelta(minutes=1)
    assert next_attempt_at(T0, 6, late, jitter=no_jitter) == T0 + RETRY_WINDOW


def test_retry_after_is_honoured_but_never_shortens_the_schedule_nor_passes_the_day() -> None:
    assert next_attempt_at(T0, 1, T0, wait_at_least=timedelta(minutes=2), jitter=no_jitter) == T0 + timedelta(minutes=2)
    assert next_attempt_at(T0, 2, T0, wait_at_least=timedelta(seconds=1), jitter=no_jitter) == T0 + timedelta(minutes=5)
    assert next_attempt_at(T0, 1, T0, wait_at_least=timedelta(days=3), jitter=no_jitter) == T0 + RETRY_WINDOW
    assert retry_after("120", T0) == timedelta(seconds=120)
    assert retry_after("Mon, 02 Nov 2026 08:10:00 GMT", T0) == timedelta(minutes=10)
    assert retry_after("soon", T0) is None


@pytest.mark.parametrize(
    ("status", "verdict"),
    [(200, Verdict.DELIVERED), (204, Verdict.DELIVERED), (500, Verdict.RETRY), (503, Verdict.RETRY),
     (429, Verdict.RETRY), (408, Verdict.RETRY), (None, Verdict.RETRY), (400, Verdict.FAILED),
     (401, Verdict.FAILED), (410, Verdict.FAILED), (301, Verdict.FAILED)],
)  # fmt: skip
def test_what_an_answer_means(status: int | None, verdict: Verdict) -> None:
    assert AttemptResult(status, None if status else "timed out").verdict is verdict


@pytest.mark.parametrize(
    ("url", "production", "rule"),
    [
        ("http://partner.example/hook", False, "must use https"),
        ("http://127.0.0.1:9/hook", True, "must use https"),
        ("https://10.1.2.3/hook", True, "private"),
        ("https://169.254.169.254/latest/meta-data", True, "private"),
        ("https://[::1]/hook", True, "private"),
        ("https://localhost/hook", True, "this machine"),
        ("https://user:pw@partner.example/hook", False, "user name"),
        ("ftp://partner.example/hook", False, "https://"),
        ("https://partner.example/hook#x", False, "fragment"),
    ],
)
def test_urls_that_may_not_be_subscribed(url: str, production: bool, rule: str) -> None:
    with pytest.raises(InvalidEndpointError, match=rule):
        checked_url(url, production=production)


def test_urls_that_may_be_subscribed() -> None:
    assert checked_url("http://127.0.0.1:8080/hook", production=False)[1] == "127.0.0.1"
    assert checked_url("http://localhost:8080/hook", production=False)[1] == "localhost"
    assert checked_url("https://hooks.partner.example/loyalty", production=True)[1] == "hooks.partner.example"
    assert checked_url("https://8.8.8.8/hook", production=True)[1] == "8.8.8.8"


def test_event_types_must_be_known_and_some() -> None:
    assert [t.value for t in event_types_of(["order.placed", "statement.finalised", "order.placed"])] == [
        "statement.finalised",
        "order.placed",
    ]
    with pytest.raises(InvalidEndpointError, match="unknown event types"):
        event_types_of(["order.shipped"])
    with pytest.raises(InvalidEndpointError, match="at least one"):
        event_types_of([])
