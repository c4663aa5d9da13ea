"""Wiring of webhooks to partners: store, secret box, sender, dispatcher, consumers, routes, OpenAPI entries."""

from __future__ import annotations

from contracts.events.webhooks import WebhookEndpointDisabled
from contracts.topics import PARTNER_WEBHOOKS
from loyalty_runtime.auth import TokenAuthority, principal_dependency
from loyalty_runtime.service import ServiceShell
from partners import webhook_consumers
from partners.adapters.secret_box import SecretBox
from partners.adapters.webhook_sender import HttpSender, check_host
from partners.adapters.webhooks_store import WebhookStore
from partners.api import webhooks as api
from partners.handlers.webhooks import Clock, Dispatcher, Endpoints, run_dispatcher
from partners.settings import Settings


def dispatcher_of(
    shell: ServiceShell, settings: Settings, clock: Clock, sender: HttpSender | None = None
) -> Dispatcher:
    """A dispatcher on the service's pool; tests build more of them to play several processes."""
    production = settings.environment == "production"
    return Dispatcher(
        WebhookStore(lambda: shell.pool),
        sender or HttpSender(production=production, timeout=settings.webhook_timeout_seconds),
        SecretBox(settings.partner_key_secret),
        clock,
        topic_prefix=settings.kafka_topic_prefix,
        concurrency=settings.webhook_concurrency,
    )


def add_webhooks(shell: ServiceShell, settings: Settings, clock: Clock) -> None:
    shell.broker.publisher(  # declared for the AsyncAPI document; the outbox relay sends
        shell.topic(PARTNER_WEBHOOKS.name),
        title="partner webhook endpoints",
        description=PARTNER_WEBHOOKS.description,
        schema=WebhookEndpointDisabled,
    )
    store = WebhookStore(lambda: shell.pool)
    production = settings.environment == "production"
    endpoints = Endpoints(store, SecretBox(settings.partner_key_secret), production, clock, check_host,
                          settings.kafka_topic_prefix)  # fmt: skip
    tokens = TokenAuthority(settings.jwt_secret)
    shell.app.include_router(api.router(store, endpoints, principal_dependency(lambda: tokens)))
    api.install(shell.app)
    webhook_consumers.register(shell, settings.consumer_group, store, clock)
    if settings.webhook_dispatcher:
        dispatcher = dispatcher_of(shell, settings, clock)
        shell.add_background("webhook dispatcher", lambda: run_dispatcher(dispatcher, settings.webhook_poll_seconds))
