"""Ops issue or rotate each partner's fulfilment signing key, and read which key signs its callbacks."""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, status
from pydantic import BaseModel, ConfigDict, Field

from contracts.ids import PartnerId
from loyalty_runtime.auth import Principal
from redemption.adapters.fulfilment_keys_store import FulfilmentKeysStore
from redemption.domain.fulfilment_keys import MAX_GRACE, FulfilmentKey
from redemption.handlers import fulfilment_keys as handlers


class Rotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_seconds: int | None = Field(
        default=None,
        ge=0,
        le=int(MAX_GRACE.total_seconds()),
        description="How long the current key goes on signing, so the partner can install the new secret first; "
        "0 for at once (a leaked key). Default: FULFILMENT_KEY_GRACE_SECONDS. A partner whose current key was "
        "never issued (made on first use) switches at once.",
    )


class Key(BaseModel):
    key_id: str = Field(description="Sent in X-Loyalty-Key with every callback this key signs.")
    version: int
    issued: bool = Field(description="False: made at the partner's first callback; its secret was shown to nobody.")
    created_at: datetime
    active_from: datetime = Field(description="When it starts signing.")

    @classmethod
    def of(cls, key: FulfilmentKey) -> "Key":
        return cls(
            key_id=key.key_id,
            version=key.version,
            issued=key.issued,
            created_at=key.created_at,
            active_from=key.active_from,
        )


class IssuedKey(Key):
    partner_id: str
    secret: str = Field(description="Shown only now: give it to the partner, who verifies our callbacks with it.")
    signing_until_then: str | None = Field(description="The key id that signs until `active_from`, if any.")


class PartnerKeys(BaseModel):
    partner_id: str
    current_key_id: str = Field(description="The key that signs this partner's callbacks now.")
    keys: list[Key] = Field(description="Every version, oldest first.")


def router(
    store: Callable[[], FulfilmentKeysStore],
    ops: Callable[..., Principal],
    master_secret: str,
    default_grace: timedelta,
    clock: Callable[[], datetime],
) -> APIRouter:
    api = APIRouter(prefix="/v1/ops/fulfilment-keys", tags=["fulfilment keys"])
    Ops = Annotated[Principal, Depends(ops)]
    Store = Annotated[FulfilmentKeysStore, Depends(store)]
    PartnerPath = Annotated[PartnerId, Path()]
    refused: dict[int | str, dict[str, Any]] = {
        401: {"description": "No valid bearer token."},
        403: {"description": "The token is not an ops token."},
    }

    @api.post("/{partner_id}", status_code=status.HTTP_201_CREATED, responses=refused)
    async def issue(
        partner_id: PartnerPath, _ops: Ops, keys: Store, rotation: Annotated[Rotation | None, Body()] = None
    ) -> IssuedKey:
        """Issue the partner's next fulfilment key; its secret is shown only in this answer."""
        grace_seconds = rotation.grace_seconds if rotation is not None else None
        grace = default_grace if grace_seconds is None else timedelta(seconds=grace_seconds)
        issued = await handlers.issue_key(keys, master_secret, partner_id, grace, clock())
        previous = issued.signing_until_then
        return IssuedKey(
            **Key.of(issued.key).model_dump(),
            partner_id=partner_id,
            secret=issued.secret,
            signing_until_then=previous.key_id if previous is not None else None,
        )

    @api.get("/{partner_id}", responses={**refused, 404: {"description": "The partner has no key yet."}})
    async def read(partner_id: PartnerPath, _ops: Ops, keys: Store) -> PartnerKeys:
        """Which key signs the partner's callbacks now, and every version it had (never a secret)."""
        found = await handlers.partner_keys(keys, partner_id, clock())
        return PartnerKeys(
            partner_id=partner_id, current_key_id=found.current.key_id, keys=[Key.of(k) for k in found.keys]
        )

    return api
