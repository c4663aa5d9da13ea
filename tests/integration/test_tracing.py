"""One trace spans the partner's HTTP request, the Kafka hop and the points consumer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from loyalty_runtime.telemetry import build_tracer_provider
from tests.support.services import http, partners_service, points_service, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def test_one_trace_spans_partners_http_kafka_and_points_consumer(
    infra, topic_prefix, database: Callable[[str], Awaitable[str]]
):
    exporter = InMemorySpanExporter()
    partners_provider = build_tracer_provider("partners", exporter)
    points_provider = build_tracer_provider("points", exporter)
    partners_dsn, points_dsn = await database("partners"), await database("points")
    try:
        async with (
            running(partners_service(infra.kafka, partners_dsn, topic_prefix, provider=partners_provider)) as partners,
            running(points_service(infra.kafka, points_dsn, topic_prefix, provider=points_provider)) as points,
            http(partners) as partners_api,
            http(points) as points_api,
        ):
            answer = await partners_api.post(
                "/v1/partners/skymall/purchases",
                json={
                    "idempotency_key": "trace-1",
                    "customer_ref": "cust-1",
                    "purchase_id": "order-trace-1",
                    "amount_minor": 1_000,
                    "currency": "CNY",
                    "occurred_at": "2026-11-20T09:30:00+08:00",
                },
            )
            assert answer.status_code == 202
            event_id = answer.json()["event_id"]

            async def applied() -> bool:
                return (await points_api.get(f"/v1/events/{event_id}")).status_code == 200

            await eventually(applied, what="points to apply the purchase")
    finally:
        AsyncPGInstrumentor().uninstrument()

    spans = exporter.get_finished_spans()
    http_span = next(
        s for s in spans if s.kind == SpanKind.SERVER and s.attributes.get("http.route", "").endswith("/purchases")
    )
    trace_id = http_span.context.trace_id
    in_trace = [s for s in spans if s.context.trace_id == trace_id]
    by_id = {s.context.span_id: s for s in in_trace}

    consumer = next(s for s in in_trace if s.name == "points apply partner event")
    assert consumer.resource.attributes["service.name"] == "points"
    assert consumer.kind == SpanKind.CONSUMER

    # Walk from the consumer up to the HTTP request: consumer <- Kafka publish <- ... <- HTTP server span.
    chain = [consumer]
    while chain[-1].parent is not None and chain[-1].parent.span_id in by_id:
        chain.append(by_id[chain[-1].parent.span_id])
    assert chain[-1] is http_span, [s.name for s in chain]
    publish = chain[1]
    assert publish.kind == SpanKind.PRODUCER
    assert publish.resource.attributes["service.name"] == "partners"
    assert topic_prefix + "loyalty.partner-purchases.v1" in publish.name

    # The database is traced as well (the batch's statements sit under the consumer's process span).
    assert any(s.attributes.get("db.system") == "postgresql" for s in spans)
