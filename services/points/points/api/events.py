"""Whether the points service has applied an event: the end of the walking skeleton's trail."""

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel

from points.adapters.store import PointsStore


class AppliedEvent(BaseModel):
    event_id: uuid.UUID
    topic: str
    received_at: datetime
    kind: str | None = None
    partner_id: str | None = None
    customer_ref: str | None = None
    external_id: str | None = None
    amount_minor: int | None = None
    currency: str | None = None


def router(store: Callable[[], PointsStore]) -> APIRouter:
    api = APIRouter(prefix="/v1/events", tags=["events"])
    Store = Annotated[PointsStore, Depends(store)]

    @api.get("/{event_id}", response_model=AppliedEvent, responses={404: {"description": "Not applied (yet)."}})
    async def get_applied_event(event_id: uuid.UUID, points: Store) -> AppliedEvent:
        """The event as the ledger recorded it, once it was applied."""
        found = await points.applied_event(event_id)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"event {event_id} has not been applied (yet)")
        return AppliedEvent.model_validate(found)

    return api
