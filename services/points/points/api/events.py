"""What the ledger did with an event: for partners' and ops' support, and the demo."""

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel

from loyalty_runtime.auth import Principal, require_ops
from points.adapters.store import PointsStore


class TransferOut(BaseModel):
    transfer_id: uuid.UUID
    debit_account: str
    credit_account: str
    amount: int
    reason: str
    occurred_at: datetime
    posted_at: datetime


class AppliedEvent(BaseModel):
    event_id: uuid.UUID
    topic: str
    received_at: datetime
    transfers: list[TransferOut]


def router(store: Callable[[], PointsStore], authenticate: Callable[..., Principal]) -> APIRouter:
    api = APIRouter(prefix="/v1/events", tags=["events"])
    Store = Annotated[PointsStore, Depends(store)]
    Caller = Annotated[Principal, Depends(authenticate)]

    @api.get("/{event_id}", response_model=AppliedEvent, responses={404: {"description": "Not applied (yet)."}})
    async def get_applied_event(event_id: uuid.UUID, points: Store, caller: Caller) -> AppliedEvent:
        """The event as the ledger applied it (ops): when it arrived and the transfers it made."""
        require_ops(caller)
        entry, transfers = await points.event_trail(event_id)
        if entry is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"event {event_id} has not been applied (yet)")
        return AppliedEvent(
            event_id=entry["event_id"],
            topic=entry["topic"],
            received_at=entry["received_at"],
            transfers=[TransferOut.model_validate(dict(t)) for t in transfers],
        )

    return api
