"""The messaging systems' callbacks: signed with the messaging key, fresh, once; bodies checked; results per item."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from contracts.signing import signed_headers
from loyalty_runtime.auth import Principal, Role
from points.api import messages as messages_api
from points.domain.messages import Reported

SECRET = "test-messaging-secret-of-thirty-two-or-more"
KNOWN, UNKNOWN = uuid.uuid4(), uuid.uuid4()
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
PATH = "/v1/messages/callbacks"


class FakeMessages:
    def __init__(self) -> None:
        self.signatures: set[str] = set()
        self.recorded: list[dict[uuid.UUID, Reported]] = []

    async def apply_callbacks(
        self, signature: str, _signed_at: datetime, reported: dict[uuid.UUID, Reported]
    ) -> set[uuid.UUID] | None:
        if signature in self.signatures:
            return None
        self.signatures.add(signature)
        self.recorded.append(dict(reported))
        return {KNOWN} & set(reported)


@pytest.fixture
def fake() -> FakeMessages:
    return FakeMessages()


@pytest.fixture
async def api(fake: FakeMessages):
    app = FastAPI()
    app.include_router(
        messages_api.router(lambda: fake, lambda: Principal("ops-1", Role.OPS), "messaging", SECRET, lambda: NOW)  # type: ignore[arg-type,return-value]
    )

    async def refused(_request: object, error: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=409)

    app.add_exception_handler(messages_api.SignatureReplayedError, refused)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://points") as client:
        yield client


def body(*items: dict[str, Any]) -> bytes:
    return json.dumps({"callbacks": list(items)}).encode()


def item(message: uuid.UUID, event: str, minute: int = 0) -> dict[str, Any]:
    return {"message_id": str(message), "event": event, "at": f"2026-11-20T08:{minute:02}:00+00:00"}


async def post(api: httpx.AsyncClient, raw: bytes, *, key: str = "messaging", secret: str = SECRET,
               stamp: int | None = None) -> httpx.Response:  # fmt: skip
    headers = signed_headers(key, secret, "POST", PATH, raw, stamp or int(NOW.timestamp()))
    return await api.post(PATH, content=raw, headers={**headers, "content-type": "application/json"})


async def test_a_signed_batch_is_recorded_and_unknown_ids_are_named_per_item(api, fake):
    answer = await post(api, body(item(KNOWN, "clicked", 5), item(UNKNOWN, "opened"), item(KNOWN, "delivered", 1)))
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"] == [
        {"message_id": str(KNOWN), "status": "recorded"},
        {"message_id": str(UNKNOWN), "status": "unknown"},
        {"message_id": str(KNOWN), "status": "recorded"},
    ]
    [folded] = fake.recorded
    minute = NOW.replace(minute=5)
    assert folded[KNOWN] == Reported(delivered_at=NOW.replace(minute=1), opened_at=minute, clicked_at=minute)


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ({"key": "partner-key"}, "unknown key 'partner-key'"),
        ({"secret": "another-secret-of-thirty-two-characters!"}, "the signature does not match"),
        ({"stamp": int(NOW.timestamp()) - 301}, "not within 300 s of our clock"),
        ({"stamp": int(NOW.timestamp()) + 301}, "not within 300 s of our clock"),
    ],
)
async def test_a_wrongly_signed_request_is_refused_and_records_nothing(api, fake, how, reason):
    answer = await post(api, body(item(KNOWN, "opened")), **how)
    assert answer.status_code == 401
    assert reason in answer.json()["detail"]
    assert fake.recorded == []


async def test_an_unsigned_request_is_refused(api, fake):
    answer = await api.post(PATH, content=body(item(KNOWN, "opened")), headers={"content-type": "application/json"})
    assert answer.status_code == 401
    assert "sign the request" in answer.json()["detail"]
    assert fake.recorded == []


async def test_a_signature_is_accepted_once(api, fake):
    raw = body(item(KNOWN, "opened"))
    assert (await post(api, raw)).status_code == 200
    replay = await post(api, raw)
    assert replay.status_code == 409
    assert "this signature was already used" in replay.json()["detail"]
    assert len(fake.recorded) == 1


@pytest.mark.parametrize(
    "raw",
    [
        body(),
        body(item(KNOWN, "bounced")),
        body({"message_id": str(KNOWN), "event": "opened", "at": "2026-11-20T08:00:00"}),
        b"{not json",
        json.dumps({"callbacks": [item(KNOWN, "opened")] * 1001}).encode(),
    ],
)
async def test_a_body_that_is_not_a_list_of_callbacks_is_a_422(api, fake, raw):
    answer = await post(api, raw)
    assert answer.status_code == 422, answer.text
    assert fake.recorded == []


async def test_a_body_beyond_its_limit_is_a_413(api, fake):
    answer = await post(api, b" " * (messages_api.MAX_BODY_BYTES + 1))
    assert answer.status_code == 413
