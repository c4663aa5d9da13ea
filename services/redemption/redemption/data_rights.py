"""Wiring of data rights: the member export route, and the consumer of erasures."""

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from faststream import Context
from faststream.kafka.message import KafkaMessage

from contracts.events.erasures import MemberErased
from contracts.topics import MEMBER_ERASURES
from loyalty_runtime.auth import Principal, resolve_member
from loyalty_runtime.consumer import BatchConsumer, Delivery
from loyalty_runtime.service import ServiceShell
from redemption.adapters.member_data_store import MemberDataStore
from redemption.handlers.member_data import export_member_data, record_erasures


class ErasuresConsumer(BatchConsumer[MemberErased]):
    span_name = "erase"

    def __init__(self, shell: ServiceShell, group_id: str, store: MemberDataStore) -> None:
        super().__init__(shell, MEMBER_ERASURES, group_id)
        self.store = store

    async def apply(self, deliveries: Sequence[Delivery[MemberErased]]) -> None:
        await record_erasures(self.store, self.name, [d.item for d in deliveries])


def router(store: Callable[[], MemberDataStore], authenticate: Callable[..., Principal],
           clock: Callable[[], datetime]) -> APIRouter:  # fmt: skip
    api = APIRouter(prefix="/v1/members", tags=["data rights"])
    Caller = Annotated[Principal, Depends(authenticate)]

    @api.get("/{member_ref}/data-export", responses={403: {"description": "Another member's, or partner staff."}})
    async def data_export(
        member_ref: Annotated[str, Path(description="A member id, or `me`.")], caller: Caller
    ) -> dict[str, Any]:
        """The member's orders and vouchers, and what this service knows of its tier and segments (audited)."""
        return await export_member_data(store(), resolve_member(caller, member_ref), caller, clock())

    return api


def add_data_rights(shell: ServiceShell, group_id: str, authenticate: Callable[..., Principal],
                    clock: Callable[[], datetime]) -> ErasuresConsumer:  # fmt: skip
    store = MemberDataStore(lambda: shell.pool)
    shell.app.include_router(router(lambda: store, authenticate, clock))
    erasures = ErasuresConsumer(shell, group_id, store)

    @shell.broker.subscriber(erasures.name, **erasures.subscriber_options())  # type: ignore[call-overload]
    async def on_member_erasures(
        batch: list[MemberErased], message: Annotated[KafkaMessage, Context("message")]
    ) -> None:
        await erasures.consume(batch, message)

    return erasures
