"""Ops' read of the batch import runs (`make import`): the import itself is an operator's CLI job."""

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from loyalty_runtime.auth import Principal, require_ops
from points.adapters.store import PointsStore
from points.api.ops import OPS_RESPONSES
from points.handlers.imports import import_runs


class ImportRunOut(BaseModel):
    run_id: uuid.UUID
    file_name: str = Field(description="The file as the operator named it on the command line.")
    file_sha256: str
    kind: Literal["members", "balances", "purchases"]
    actor: str = Field(description="Who ran it: the OS user, or --actor.")
    rows_total: int
    rows_done: int = Field(description="Rows committed so far; a run interrupted resumes after them.")
    rows_imported: int
    rows_existing: int = Field(description="Rows an earlier run (or an overlapping file) imported already.")
    rows_refused: int
    refusals: dict[str, int] = Field(description="Refused rows by reason (`unknown_member`, `already_expired`...).")
    points: int = Field(description="Points the run's balance rows migrated (0 for members and purchases).")
    status: Literal["running", "completed"]
    outcome: Literal["running", "interrupted", "imported", "imported with refusals"]
    started_at: dt.datetime
    finished_at: dt.datetime | None
    resumed: int = Field(description="How many times a rerun resumed it after an interruption.")


class ImportRunsOut(BaseModel):
    items: list[ImportRunOut]


def router(store: Callable[[], PointsStore], authenticate: Callable[..., Principal]) -> APIRouter:
    api = APIRouter(prefix="/v1/ops", tags=["ops"])
    Caller = Annotated[Principal, Depends(authenticate)]
    Store = Annotated[PointsStore, Depends(store)]

    @api.get("/imports", response_model=ImportRunsOut, responses=OPS_RESPONSES)
    async def get_imports(
        caller: Caller, points: Store, limit: Annotated[int, Query(ge=1, le=200)] = 50
    ) -> ImportRunsOut:
        """Batch import runs, newest first: the file, its kind, what its rows came to, when it ran."""
        require_ops(caller)
        return ImportRunsOut.model_validate({"items": await import_runs(points, limit)})

    return api
