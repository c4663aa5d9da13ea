"""With no span exporter, requests keep the caller's trace context (it travels on into Kafka headers)."""

import httpx
from fastapi import FastAPI
from opentelemetry import trace

from loyalty_runtime.telemetry import TraceContextMiddleware, inject_context, instrument_http

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _app() -> FastAPI:
    app = FastAPI()
    instrument_http(app, trace.NoOpTracerProvider())

    @app.get("/context")
    async def context() -> dict[str, str]:
        return inject_context({})

    return app


async def test_an_incoming_traceparent_becomes_the_current_context_without_an_exporter():
    app = _app()
    assert any(m.cls is TraceContextMiddleware for m in app.user_middleware)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        carried = (await client.get("/context", headers={"traceparent": TRACEPARENT})).json()
        alone = (await client.get("/context")).json()
    assert carried == {"traceparent": TRACEPARENT}
    assert alone == {}, "no caller context, nothing to carry"
