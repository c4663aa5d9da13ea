"""One trace spans the partner's HTTP request, the Kafka hop and the points consumer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from loyalty_runtime.telemetry import build_tracer_provider
from tests.support.partner_client import SignedPartnerClient, bearer, ops_token, purchase_item, register_partner
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
            token = ops_token(partners.settings.jwt_secret)
            partner = SignedPartnerClient(partners_api, await register_partner(partners_api, token, "skymall"))
            answer = await partner.purchase(purchase_item("trace-1", 1_000))
            assert answer.status_code == 202, answer.text
            event_id = answer.json()["event_id"]

            async def applied() -> bool:
                return (await points_api.get(f"/v1/events/{event_id}", headers=bearer(token))).status_code == 200

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

    consumer = next(s for s in in_trace if s.name.startswith("points apply"))
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
