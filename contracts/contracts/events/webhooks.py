"""Webhook endpoints of partners (contracts.webhooks): what became of them."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from contracts.envelope import Contract, Event, UtcDatetime
from contracts.ids import PartnerId


class EndpointDisabledPayload(Contract):
    partner_id: PartnerId
    endpoint_id: uuid.UUID
    url: str = Field(max_length=2048)
    failing_since: UtcDatetime = Field(description="The first attempt of the oldest delivery that never succeeded.")
    reason: str = Field(min_length=1, max_length=500)
    last_status: int | None = Field(default=None, description="The last HTTP status it answered, if it answered.")


class WebhookEndpointDisabled(Event):
    """The partners service stopped delivering to an endpoint that failed every attempt for a day.

    Its staff (or ops) enable it again in the portal; the deliveries it missed can be replayed.
    """

    type: Literal["WebhookEndpointDisabled"] = "WebhookEndpointDisabled"
    version: Literal[1] = 1
    payload: EndpointDisabledPayload
