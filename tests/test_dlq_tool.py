"""`make dlq` (tools/dlq.py) against fake services: what it lists, shows, replays, and says when it cannot."""

from __future__ import annotations

import json

import httpx
import pytest

from tools import dlq

LETTER = {
    "id": "points:7", "number": 7, "service": "points", "topic": "loyalty.partner-purchases.v1", "partition": 2,
    "offset": 41, "key": "skymall:c1", "event_id": None, "event_type": "PartnerRefundRecorded",
    "reason": "refund in USD, its purchase in CNY; resend it in CNY", "error_class": "CurrencyMismatchError",
    "dead_at": "2026-12-01T10:00:00+00:00", "replays": 0, "last_replayed_at": None,
}  # fmt: skip


def services(seen: list[str]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.port} {request.url.path}?{request.url.query.decode()}")
        assert request.headers["Authorization"].startswith("Bearer ")
        path = request.url.path
        is_points = request.url.port == dlq.SERVICES["points"]
        if path.endswith("/summary"):
            topics = [{"topic": LETTER["topic"], "total": 1, "waiting": 1, "newest": LETTER["dead_at"]}]
            return httpx.Response(200, json={"service": "points", "topics": topics if is_points else []})
        if path.endswith("/dead-letters"):
            return httpx.Response(200, json={"items": [LETTER] if is_points else [], "next_before": None})
        if path.endswith("/7/replay"):
            return httpx.Response(202, json={"replayed": ["points:7"]})
        if path.endswith("/replay"):
            assert json.loads(request.content) == {"topic": LETTER["topic"], "include_replayed": False}
            return httpx.Response(202, json={"replayed": ["points:7"]})
        if path.endswith("/7"):
            return httpx.Response(200, json={**LETTER, "value": "{}", "value_encoding": "utf-8", "headers": {}})
        return httpx.Response(404, json={"detail": "no dead letter points:8"})

    return httpx.MockTransport(answer)


def test_the_summary_and_the_newest_dead_letters_of_every_service(capsys):
    seen: list[str] = []
    assert dlq.main([], services(seen)) == 0
    out = capsys.readouterr().out
    assert "loyalty.partner-purchases.v1" in out
    assert "points:7" in out
    assert "CurrencyMismatchError" in out
    assert {line.split()[1] for line in seen} == {str(port) for port in dlq.SERVICES.values()}


def test_list_passes_the_filters_and_replay_of_a_topic_goes_to_the_service_that_holds_it(capsys):
    seen: list[str] = []
    assert dlq.main(["list", "--topic", LETTER["topic"], "--reason", "currency"], services(seen)) == 0
    assert all("topic=loyalty.partner-purchases.v1" in call and "reason=currency" in call for call in seen)
    seen.clear()
    assert dlq.main(["replay", "--topic", LETTER["topic"]], services(seen)) == 0
    assert "replayed 1: points:7" in capsys.readouterr().out
    assert [c for c in seen if c.startswith("POST")] == [f"POST {dlq.SERVICES['points']} /v1/ops/dead-letters/replay?"]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["show", "points-7"], "is not a dead letter id; they look like points:17"),
        (["replay"], "name the dead letters to replay"),
        (["show", "points:8"], "points answered 404"),
    ],
)
def test_mistakes_are_explained_and_exit_1(argv, says, capsys):
    assert dlq.main(argv, services([])) == 1
    assert says in capsys.readouterr().err


def test_a_service_that_is_down_is_named_with_what_to_do(capsys):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    assert dlq.main(["show", "points:7"], httpx.MockTransport(refuse)) == 1
    assert "is it running (`make up`)?" in capsys.readouterr().err
