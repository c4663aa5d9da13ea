"""Ops API of a service's audit log: search it, newest first. Every service mounts it (ServiceShell).

No `from __future__ import annotations` here: FastAPI must resolve the local `Ops` alias in the signatures.
"""

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, BaseModel, Field

from loyalty_runtime import audit
from loyalty_runtime.auth import Principal

MAX_PAGE = 500


class AuditEntryOut(BaseModel):
    seq: int = Field(description="The entry's number in this service's log; pages go by it.")
    service: str
    at: dt.datetime
    actor: str = Field(description="The ops user's subject (or `scheduler`, `import`, ... for the system).")
    role: str
    action: str = Field(description="`<area>.<verb>` from the route itself, or `<METHOD> <route>` for a request.")
    subject: str = Field(description="What it was done to: `member:<id>`, `partner:<id>`, `adjustment:<id>`, ...")
    before: Any
    after: Any
    note: str | None
    request_id: str | None = Field(description="Entries of one request share it.")
    details: Any


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_before: int | None = Field(description="Pass as `before` for the next (older) page; null on the last.")


def router(service: str, pool: Callable[[], asyncpg.Pool], ops: Callable[..., Principal]) -> APIRouter:
    api = APIRouter(prefix="/v1/ops/audit", tags=["audit"])
    Ops = Annotated[Principal, Depends(ops)]

    @api.get("", summary="The audit log of ops actions, newest first, by actor, action, subject and time")
    async def search(
        _caller: Ops,
        actor: Annotated[str | None, Query(max_length=200, description="Exactly this actor.")] = None,
        action: Annotated[str | None, Query(max_length=200, description="Actions starting with this.")] = None,
        subject: Annotated[str | None, Query(max_length=300, description="Subjects starting with this.")] = None,
        since: Annotated[AwareDatetime | None, Query(alias="from", description="At or after this moment.")] = None,
        until: Annotated[AwareDatetime | None, Query(alias="to", description="Before this moment.")] = None,
        before: Annotated[int | None, Query(ge=1, description="`next_before` of the previous page.")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    ) -> AuditPage:
        query = audit.Search(actor or None, action or None, subject or None, since, until, before, limit)
        found = await audit.search(pool(), query)
        more = len(found) == limit
        items = [AuditEntryOut(service=service, **vars(entry)) for entry in found]
        return AuditPage(items=items, next_before=found[-1].seq if more else None)

    return api
