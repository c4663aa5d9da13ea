"""Reward offers for tests: bodies a partner PUTs, and raw events as the partners service publishes them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.events.offers import OfferPayload, OfferPublished, OfferWithdrawn, OfferWithdrawnPayload


def now() -> datetime:
    return datetime.now(UTC)


def offer_body(**overrides: Any) -> dict[str, Any]:
    """A voucher on sale from yesterday for thirty days; `overrides` change or add fields (None removes one)."""
    body: dict[str, Any] = {
        "kind": "voucher",
        "title": "100 CNY shopping voucher",
        "description": "Valid in every SkyMall store.",
        "category": "vouchers",
        "price_points": 10_000,
        "stock": 50,
        "valid_from": (now() - timedelta(days=1)).isoformat(),
        "valid_until": (now() + timedelta(days=30)).isoformat(),
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def published(partner_id: str, offer_id: str, revision: int, **overrides: Any) -> OfferPublished:
    """OfferPublished with the fields of `offer_body`; the event id is random (the partners service derives its own)."""
    fields: dict[str, Any] = {**offer_body(), **overrides}
    event_id = uuid.uuid4()
    payload = OfferPayload(partner_id=partner_id, offer_id=offer_id, revision=revision, **fields)
    return OfferPublished(
        event_id=event_id, occurred_at=now(), source="partners", correlation_id=event_id, payload=payload
    )


def withdrawn(partner_id: str, offer_id: str, revision: int) -> OfferWithdrawn:
    event_id = uuid.uuid4()
    payload = OfferWithdrawnPayload(partner_id=partner_id, offer_id=offer_id, revision=revision)
    return OfferWithdrawn(
        event_id=event_id, occurred_at=now(), source="partners", correlation_id=event_id, payload=payload
    )
