"""Publishing partner events to Kafka through a declared FastStream publisher."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka.errors import KafkaError
from faststream.kafka.publisher.usecase import DefaultPublisher

from contracts.envelope import Event
from partners.handlers.intake import EventsUnavailableError


class KafkaEventPublisher:
    def __init__(self, publisher: DefaultPublisher) -> None:
        self._publisher = publisher

    async def publish(self, keyed_events: Sequence[tuple[str, Event]]) -> None:
        # Sent together so the producer batches them; each future resolves on the broker's ack.
        try:
            await asyncio.gather(
                *(
                    self._publisher.publish(
                        event.model_dump_json().encode(), key=key.encode(), headers={"type": event.type}
                    )
                    for key, event in keyed_events
                )
            )
        except (KafkaError, TimeoutError, ConnectionError) as error:
            raise EventsUnavailableError(str(error)) from error
