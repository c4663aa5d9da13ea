"""Rules of purchase intake that do not depend on how a purchase arrives."""

from __future__ import annotations

import uuid

# Fixed forever: changing it would give a retried request a new event id.
_EVENT_IDS = uuid.UUID("5b0f6a38-4d0e-4bb5-9a55-3f6f1c7f2b1e")


def event_id_for(partner_id: str, idempotency_key: str) -> uuid.UUID:
    """The same partner and key always name the same event, so a retried request is applied once."""
    return uuid.uuid5(_EVENT_IDS, f"{partner_id}\x1f{idempotency_key}")


def partition_key(partner_id: str, customer_ref: str) -> str:
    """One customer's purchases and refunds share a partition and stay in order."""
    return f"{partner_id}:{customer_ref}"
