"""Publishing partner events to Kafka with the service's own acks=all, idempotent producer.

Plain aiokafka rather than a FastStream publisher: intake sends up to 1,000 events per request, and
a per-message middleware chain cost more CPU than the rest of the request. The request's trace
continues through one producer span whose context every message carries in its headers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from contracts.envelope import Event
from loyalty_runtime.kafka import reliable_producer
from loyalty_runtime.telemetry import inject_context
from partners.handlers.intake import EventsUnavailableError


class KafkaEventPublisher:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        client_id: str,
        tracer_provider: trace.TracerProvider,
        start_wait: float = 10.0,
        publish_timeout: float = 5.0,
    ) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._client_id = client_id
        self._tracer = tracer_provider.get_tracer(__name__)
        self._producer: AIOKafkaProducer | None = None
        self._started = asyncio.Event()
        self._start_wait = start_wait
        self._publish_timeout = publish_timeout

    async def run(self) -> None:
        """Own the producer for as long as the service runs (a background task of the service)."""
        producer = reliable_producer(self._bootstrap, f"{self._client_id}-intake", linger_ms=1)
        await producer.start()
        self._producer = producer
        self._started.set()
        try:
            await asyncio.Event().wait()
        finally:
            self._started.clear()
            self._producer = None
            await producer.stop()

    async def publish(self, keyed_events: Sequence[tuple[str, Event]]) -> None:
        if self._producer is None:  # the service is starting (or the producer restarting after a failure)
            try:
                async with asyncio.timeout(self._start_wait):  # not wait_for: it can swallow a cancel on 3.11
                    await self._started.wait()
            except TimeoutError:
                raise EventsUnavailableError("the intake producer is not running") from None
        producer = self._producer
        if producer is None:
            raise EventsUnavailableError("the intake producer stopped")
        with self._tracer.start_as_current_span(f"{self._topic} publish", kind=SpanKind.PRODUCER) as span:
            span.set_attribute("messaging.system", "kafka")
            span.set_attribute("messaging.destination.name", self._topic)
            span.set_attribute("messaging.batch.message_count", len(keyed_events))
            context = [(k, v.encode()) for k, v in inject_context({}).items()]
            try:
                # A broker that is gone makes the partner wait this long at most, then answer 503: what was
                # queued may still reach it, and the partner's retry with the same keys is the same events.
                async with asyncio.timeout(self._publish_timeout):
                    # Queued together so the producer batches them; each future resolves on the broker's ack.
                    acks = [
                        await producer.send(
                            self._topic,
                            event.model_dump_json().encode(),
                            key=key.encode(),
                            headers=[("type", event.type.encode()), *context],
                        )
                        for key, event in keyed_events
                    ]
                    confirmed = asyncio.gather(*acks)
                    confirmed.add_done_callback(_retrieve)
                    await asyncio.shield(confirmed)  # a timeout must not cancel the producer's own futures
            except (KafkaError, TimeoutError, ConnectionError) as error:
                raise EventsUnavailableError(f"{type(error).__name__}: {error}") from error


def _retrieve(confirmed: asyncio.Future[object]) -> None:
    """Read the outcome of acks nobody waits for any more (after a timeout), so it is not reported as lost."""
    if not confirmed.cancelled():
        confirmed.exception()
