"""The generic audit of ops writes (audit_http.py) on a small app, with a fake pool that keeps the entries.

No `from __future__ import annotations`: FastAPI must resolve the local `Ops` alias in the routes.
"""

import json
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException

from loyalty_runtime import audit
from loyalty_runtime.audit_http import AuditMiddleware, subject_of
from loyalty_runtime.auth import Principal, Role, TokenAuthority, ops_dependency, principal_dependency
from loyalty_runtime.settings import LOCAL_JWT_SECRET

AUTHORITY = TokenAuthority(LOCAL_JWT_SECRET)
OPS = {"Authorization": f"Bearer {AUTHORITY.issue('ops-1', Role.OPS)}"}


class FakeConnection:
    def __init__(self, kept: list[tuple[Any, ...]]) -> None:
        self.kept = kept

    async def fetchval(self, _sql: str, *args: Any) -> int:
        self.kept.append(args)
        return len(self.kept)


class FakePool:
    def __init__(self) -> None:
        self.kept: list[tuple[Any, ...]] = []

    @asynccontextmanager
    async def acquire(self):  # type: ignore[no-untyped-def]
        yield FakeConnection(self.kept)

    def entries(self) -> list[dict[str, Any]]:
        names = ("actor", "role", "action", "subject", "before", "after", "note", "request_id", "details")
        return [
            {
                n: json.loads(v) if n in ("before", "after", "details") and v else v
                for n, v in zip(names, a, strict=True)
            }
            for a in self.kept
        ]


@pytest.fixture
def app_and_pool() -> tuple[FastAPI, FakePool]:
    pool = FakePool()
    app = FastAPI()
    ops = ops_dependency(principal_dependency(lambda: AUTHORITY))
    api = APIRouter(prefix="/v1/ops/things")
    Ops = Annotated[Principal, Depends(ops)]
    state = {"name": "old"}

    @api.get("/{thing_id}")
    async def show(thing_id: str, _caller: Ops) -> dict[str, str]:
        return {"thing_id": thing_id, **state}

    @api.put("/{thing_id}")
    async def rename(thing_id: str, body: dict[str, Any], _caller: Ops) -> dict[str, str]:
        if not body.get("name"):
            raise HTTPException(422, "a thing needs a name")
        state["name"] = body["name"]
        return {"thing_id": thing_id, **state}

    @api.post("/{thing_id}/archive")
    async def archive(thing_id: str, caller: Ops) -> dict[str, str]:
        async with pool.acquire() as conn:  # the route's own entry, as a route that changes state writes it
            await audit.record(conn, audit.AuditEntry(caller.subject, "ops", "thing.archived", f"thing:{thing_id}"))  # type: ignore[arg-type]
        return {"thing_id": thing_id, "archived": "yes"}

    app.include_router(api)
    app.add_middleware(AuditMiddleware, service="test", pool=lambda: pool, authority=lambda: AUTHORITY,
                       routes=lambda: app.routes)  # fmt: skip
    return app, pool


async def call(app: FastAPI, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        return await client.request(method, path, **kwargs)


async def test_an_ops_write_is_recorded_with_before_from_its_get_twin_after_and_the_redacted_request(app_and_pool):
    app, pool = app_and_pool
    answer = await call(app, "PUT", "/v1/ops/things/t1", json={"name": "new", "secret": "s3cr3t"},
                        headers={**OPS, "X-Request-Id": "req-1"})  # fmt: skip
    assert answer.status_code == 200
    [entry] = pool.entries()
    assert (entry["actor"], entry["action"], entry["subject"]) == ("ops-1", "PUT /v1/ops/things/{thing_id}", "thing:t1")
    assert entry["before"] == {"thing_id": "t1", "name": "old"}
    assert entry["after"] == {"thing_id": "t1", "name": "new"}
    assert entry["request_id"] == "req-1"
    assert entry["details"]["request"] == {"name": "new", "secret": "[redacted]"}
    assert entry["details"]["status"] == 200


async def test_a_refused_attempt_is_recorded_with_its_reason(app_and_pool):
    app, pool = app_and_pool
    answer = await call(app, "PUT", "/v1/ops/things/t1", json={}, headers=OPS)
    assert answer.status_code == 422
    [entry] = pool.entries()
    assert entry["after"] is None
    assert (entry["details"]["status"], entry["details"]["refusal"]) == (422, "a thing needs a name")


async def test_a_route_that_records_its_own_entry_gets_no_generic_one_and_lends_it_the_request_id(app_and_pool):
    app, pool = app_and_pool
    await call(app, "POST", "/v1/ops/things/t1/archive", headers={**OPS, "X-Request-Id": "req-2"})
    assert [(e["action"], e["request_id"]) for e in pool.entries()] == [("thing.archived", "req-2")]


async def test_requests_without_an_ops_token_are_not_ops_actions(app_and_pool):
    app, pool = app_and_pool
    member = {"Authorization": f"Bearer {AUTHORITY.issue('m-1', Role.MEMBER)}"}
    assert (await call(app, "PUT", "/v1/ops/things/t1", json={"name": "x"}, headers=member)).status_code == 403
    assert (await call(app, "PUT", "/v1/ops/things/t1", json={"name": "x"})).status_code == 401
    assert (await call(app, "GET", "/v1/ops/things/t1", headers=OPS)).status_code == 200
    assert pool.entries() == []


def test_the_subject_is_the_first_path_parameter_else_an_id_answered_or_sent():
    assert subject_of({"partner_id": "acme", "offer_id": "o1"}, None, None, "/x") == "partner:acme"
    assert subject_of({"number": 7}, None, None, "/v1/ops/dead-letters/{number}/replay") == "dead-letter:7"
    assert subject_of({}, {"adjustment_id": "a1"}, None, "/v1/ops/adjustments") == "adjustment:a1"
    assert subject_of({"identifier": "card:tok_1", "member_id": "m1"}, None, None, "/x") == "member:m1"
    assert subject_of({}, {"detail": "no"}, {"topic": "t"}, "/v1/ops/dead-letters/replay") == (
        "/v1/ops/dead-letters/replay"
    )


def test_credentials_shown_once_codes_and_personal_data_never_reach_the_log():
    sent = {"secret": "s", "nested": [{"link_code": "123456", "card_token": "tok_1"}], "url_token": "u", "name": "n"}
    assert audit.redacted(sent) == {
        "secret": "[redacted]", "nested": [{"link_code": "[redacted]", "card_token": "[personal]"}],
        "url_token": "[redacted]", "name": "n",
    }  # fmt: skip


def test_an_unclaimed_accounts_name_keeps_only_its_kind_in_any_field_and_subject():
    moved = {"transfers": [{"debit": "unclaimed:partner:skymall:cust-7", "credit": "member:m1", "amount": 300}]}
    assert audit.redacted(moved) == {
        "transfers": [{"debit": "unclaimed:[personal]", "credit": "member:m1", "amount": 300}]
    }
    assert audit.masked("unclaimed:card:tok_1") == "unclaimed:[personal]"
    assert audit.masked("partner:skymall:issued") == "partner:skymall:issued"
