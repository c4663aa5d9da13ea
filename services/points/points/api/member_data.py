"""Data rights: a member (or ops for it) exports all its data, or erases its personal data (handlers/member_data.py)."""

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, status
from pydantic import BaseModel, ConfigDict, Field

from loyalty_runtime.auth import Principal, resolve_member
from points.adapters.store import PointsStore
from points.domain.erasure import CONFIRMATION, ErasureNotConfirmedError
from points.handlers.member_data import erase_member, export_member_data


class ErasureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    confirm: str = Field(max_length=20, description=f'Must be "{CONFIRMATION}": an erasure cannot be undone.')


class ErasureOut(BaseModel):
    member_id: uuid.UUID
    erasure_id: uuid.UUID
    erased_at: datetime
    identifiers: int = Field(description="Identifiers this request replaced with pseudonyms and unlinked.")
    repeated: bool = Field(description="True when an earlier erasure had replaced everything: nothing changed.")
    kept: list[str] = Field(description="What stays, by design.")


KEPT = [
    "the member id and its points: balance, lots, transfers, holds, orders (amounts, dates, reasons)",
    "settlement statements and the audit log (which name the member id only)",
]

RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "`me` with a token that is not a member's: name the member id."},
    403: {"description": "A member asking for another member, or partner staff."},
    404: {"description": "No such member."},
}


def router(store: Callable[[], PointsStore], authenticate: Callable[..., Principal], topic: str,
           clock: Callable[[], datetime]) -> APIRouter:  # fmt: skip
    api = APIRouter(prefix="/v1/members", tags=["data rights"])
    Caller = Annotated[Principal, Depends(authenticate)]
    Store = Annotated[PointsStore, Depends(store)]
    MemberRef = Annotated[str, Path(description="A member id, or `me` for the caller's own.")]

    @api.get("/{member_ref}/data-export", responses=RESPONSES)
    async def data_export(member_ref: MemberRef, caller: Caller, points: Store) -> dict[str, Any]:
        """Everything the points service holds of the member, table by table, as JSON (audited).

        `tables_listed` names every table read; `partner_purchase_event_ids` are what the partners service's
        export takes to find the member's purchases.
        """
        return await export_member_data(points, resolve_member(caller, member_ref), caller, clock())

    @api.post(
        "/{member_ref}/erasure",
        response_model=ErasureOut,
        responses=RESPONSES | {422: {"description": f'`confirm` is not "{CONFIRMATION}".'}},
    )
    async def erasure(member_ref: MemberRef, body: ErasureIn, caller: Caller, points: Store) -> ErasureOut:
        """Replace the member's personal data with irreversible pseudonyms (the member itself, or ops; audited).

        Its name, identifiers (unlinked), share card names and gift messages go; its points and the ledger stay.
        Asking again changes nothing. The partners and redemption services erase their copies on MemberErased.
        """
        outcome = await erase_member(points, topic, resolve_member(caller, member_ref), caller, body.confirm, clock())
        return ErasureOut(**vars(outcome), kept=KEPT)

    return api


ERRORS: dict[type[Exception], int] = {ErasureNotConfirmedError: status.HTTP_422_UNPROCESSABLE_CONTENT}
