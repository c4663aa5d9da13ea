"""Data rights: what the partners service holds of a member, for the member itself or ops (handlers/member_data.py)."""

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from loyalty_runtime.auth import Principal, resolve_member
from partners.adapters.member_data_store import MemberDataStore
from partners.handlers.member_data import MAX_PURCHASES, export_member_data


def router(store: MemberDataStore, authenticate: Callable[..., Principal], clock: Callable[[], datetime]) -> APIRouter:
    api = APIRouter(prefix="/v1/members", tags=["data rights"])
    Caller = Annotated[Principal, Depends(authenticate)]

    @api.get(
        "/{member_ref}/data-export",
        responses={
            400: {"description": "`me` with a token that is not a member's."},
            403: {"description": "A member asking for another member, or partner staff."},
            422: {"description": f"Not a member id, or more than {MAX_PURCHASES} purchase event ids."},
        },
    )
    async def data_export(
        member_ref: Annotated[str, Path(description="A member id, or `me`.")],
        caller: Caller,
        purchase_event_id: Annotated[
            list[uuid.UUID],
            Query(
                max_length=MAX_PURCHASES,
                description="The member's partner purchases, as the points service's "
                "export lists them (`partner_purchase_event_ids`): they lead to its customer references.",
            ),
        ] = [],  # noqa: B006 - FastAPI copies query defaults
    ) -> dict[str, Any]:
        """The purchases, refunds and refused requests partners posted under the member's customer references.

        The service keys nothing by member: the purchase event ids (from the points service's export, which only
        the member and ops can read) lead to its customer references. Audited.
        """
        member_id = resolve_member(caller, member_ref)
        return await export_member_data(store, member_id, purchase_event_id, caller, clock())

    return api
