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
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Receive, Scope, Send

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
    """Server spans for every request when spans are exported; otherwise only the caller's trace context.

    The full instrumentation costs about a sixth of a partner request's CPU (attributes, route
    matching, metrics); with nothing to export, the incoming `traceparent` is still carried on into
    the Kafka messages the request publishes.
    """
    if not isinstance(provider, TracerProvider):
        app.add_middleware(TraceContextMiddleware)
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls="health,ready")


class TraceContextMiddleware:
    """Pure ASGI: makes an incoming W3C `traceparent` the current context for the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            carrier = {
                name.decode("latin-1"): value.decode("latin-1")
                for name, value in scope["headers"]
                if name in (b"traceparent", b"tracestate")
            }
            if carrier:
                token = otel_context.attach(_PROPAGATOR.extract(carrier))
                try:
                    await self.app(scope, receive, send)
                finally:
                    otel_context.detach(token)
                return
        await self.app(scope, receive, send)


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
