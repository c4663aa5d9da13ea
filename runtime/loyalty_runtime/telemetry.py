"""OpenTelemetry wiring: HTTP, Kafka and database spans, W3C trace context in Kafka headers.

Export is configured by the standard variables: OTEL_EXPORTER_OTLP_ENDPOINT (or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) sends spans over OTLP/HTTP; OTEL_TRACES_EXPORTER=console
prints them. With neither, tracing is a no-op apart from propagating incoming context.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()


def build_tracer_provider(service: str, exporter: SpanExporter | None = None) -> trace.TracerProvider:
    """A provider for one service; `exporter` (tests) wins over the environment."""
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return trace.NoOpTracerProvider()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif os.environ.get("OTEL_TRACES_EXPORTER") == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    else:
        return trace.NoOpTracerProvider()
    return provider


def instrument_http(app: FastAPI, provider: trace.TracerProvider) -> None:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls="health,ready")


def instrument_database(provider: trace.TracerProvider) -> None:
    """asyncpg is instrumented process-wide, once, and only when spans are exported."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    instrumentor = AsyncPGInstrumentor()
    if isinstance(provider, TracerProvider) and not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider)


@contextmanager
def message_spans(tracer: trace.Tracer, name: str, headers: Sequence[Mapping[str, str]]) -> Iterator[list[Span]]:
    """One consumer span per message of a batch, each a child of the span that published it.

    A batch is applied in one transaction, so every span covers that transaction: each
    message's trace stays whole from the partner's HTTP request to the ledger, while the
    database spans sit under the batch's own span.
    """
    spans = [tracer.start_span(name, context=_PROPAGATOR.extract(h), kind=SpanKind.CONSUMER) for h in headers]
    try:
        yield spans
    finally:
        for span in spans:
            span.end()


def inject_context(headers: dict[str, str]) -> dict[str, str]:
    """Add the current span's W3C `traceparent` to outgoing message headers."""
    _PROPAGATOR.inject(headers)
    return headers
