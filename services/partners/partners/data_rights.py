"""Wiring of data rights: the member export route, and the consumer of erasures that erases the copies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from faststream import Context
from faststream.kafka.message import KafkaMessage

from contracts.events.erasures import MemberErased
from contracts.topics import MEMBER_ERASURES
from loyalty_runtime.auth import TokenAuthority, principal_dependency
from loyalty_runtime.consumer import BatchConsumer, Delivery
from loyalty_runtime.service import ServiceShell
from partners.adapters.member_data_store import MemberDataStore
from partners.api import member_data as api
from partners.handlers.authentication import Clock
from partners.handlers.member_data import erase_copies
from partners.settings import Settings


class ErasuresConsumer(BatchConsumer[MemberErased]):
    span_name = "erase"

    def __init__(self, shell: ServiceShell, group_id: str, store: MemberDataStore) -> None:
        super().__init__(shell, MEMBER_ERASURES, group_id)
        self.store = store

    async def apply(self, deliveries: Sequence[Delivery[MemberErased]]) -> None:
        await erase_copies(self.store, self.name, [d.item for d in deliveries])


def add_data_rights(shell: ServiceShell, settings: Settings, clock: Clock) -> ErasuresConsumer:
    store = MemberDataStore(lambda: shell.pool)
    tokens = TokenAuthority(settings.jwt_secret)
    shell.app.include_router(api.router(store, principal_dependency(lambda: tokens), clock))
    erasures = ErasuresConsumer(shell, settings.consumer_group, store)

    @shell.broker.subscriber(erasures.name, **erasures.subscriber_options())  # type: ignore[call-overload]
    async def on_member_erasures(
        batch: list[MemberErased], message: Annotated[KafkaMessage, Context("message")]
    ) -> None:
        await erasures.consume(batch, message)

    return erasures
