"""Webhooks: facts become deliveries in their own transaction; a dispatcher attempts what is due; people manage
endpoints and replay deliveries (each change audited)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from contracts import webhooks as wire
from contracts.envelope import Event
from contracts.events.orders import OrderFulfilled, OrderPlaced
from contracts.events.outcomes import PurchaseRefused
from contracts.events.stock import OfferOutOfStock
from contracts.events.webhooks import EndpointDisabledPayload, WebhookEndpointDisabled
from contracts.topics import PARTNER_WEBHOOKS
from loyalty_runtime import audit
from loyalty_runtime.auth import Principal
from loyalty_runtime.outbox import OutboxMessage
from loyalty_runtime.telemetry import inject_context
from partners.adapters.secret_box import SecretBox
from partners.adapters.webhooks_store import Claimed, Message, WebhookStore, WebhookTransaction
from partners.domain import webhook_messages as bodies
from partners.domain.settlement import Statement
from partners.domain.webhooks import (
    MAX_ENDPOINTS_PER_PARTNER,
    RETRY_WINDOW,
    ROTATION_OVERLAP,
    AttemptResult,
    DeliveryNotFoundError,
    EndpointDisabledError,
    EndpointIdTakenError,
    EndpointNotFoundError,
    EventType,
    Jitter,
    TooManyEndpointsError,
    Verdict,
    checked_url,
    event_types_of,
    next_attempt_at,
    random_jitter,
    signing_secrets,
)

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
DISPATCHER = "webhook-dispatcher"


# --- facts become messages -------------------------------------------------------------------------------------


def _body(event_type: EventType, at: datetime, data: bodies.Data) -> bytes:
    return bodies.BODIES[event_type](type=event_type.value, timestamp=at, data=data).model_dump_json().encode()


def message_of(event: Event) -> Message | None:
    """The message a consumed event tells its partner, or None when no webhook tells it (e.g. a cancelled order)."""
    source = f"event:{event.event_id}"
    if isinstance(event, OrderPlaced | OrderFulfilled):
        p = event.payload
        kind = EventType.ORDER_PLACED if isinstance(event, OrderPlaced) else EventType.ORDER_SETTLED
        data: bodies.Data = bodies.Order(
            order_id=p.order_id, partner_id=p.partner_id, offer_id=p.offer_id, quantity=p.quantity, points=p.points
        )
        return Message(p.partner_id, kind.value, bodies.message_id(source), _body(kind, event.occurred_at, data))
    if isinstance(event, PurchaseRefused):
        r = event.payload
        data = bodies.PurchaseRefused(
            partner_id=r.partner_id, kind=r.kind, purchase_id=r.purchase_id, refund_id=r.refund_id,
            customer_ref=r.customer_ref, amount_minor=r.amount.amount_minor, currency=r.amount.currency,
            reason=r.reason,
        )  # fmt: skip
        kind = EventType.PURCHASE_REFUSED
        return Message(r.partner_id, kind.value, bodies.message_id(source), _body(kind, event.occurred_at, data))
    if isinstance(event, OfferOutOfStock):
        s = event.payload
        data = bodies.OfferOutOfStock(
            partner_id=s.partner_id, offer_id=s.offer_id, stock=s.stock, units_reserved=s.units_reserved,
            units_sold=s.units_sold,
        )  # fmt: skip
        kind = EventType.OFFER_OUT_OF_STOCK
        return Message(s.partner_id, kind.value, bodies.message_id(source), _body(kind, event.occurred_at, data))
    return None


def statement_messages(statements: Sequence[Statement], finalised_at: datetime) -> list[Message]:
    """One statement.finalised message per partner of a month that was finalised now."""
    kind = EventType.STATEMENT_FINALISED
    found: list[Message] = []
    for s in statements:
        data = bodies.StatementFinalised(
            partner_id=s.partner_id, period=s.period.label, period_start=s.period.start, period_end=s.period.end,
            finalised_at=finalised_at, points_issued=s.points_issued, points_redeemed=s.points_redeemed,
            breakage_points=s.breakage_points,
            totals=[bodies.StatementTotals(
                currency=t.currency, issue_amount_minor=t.issue_amount_minor,
                redemption_amount_minor=t.redemption_amount_minor, breakage_rebate_minor=t.breakage_rebate_minor,
                net_minor=t.net_minor) for t in s.totals],
            statement_path=f"/v1/partners/{s.partner_id}/statements?period={s.period.label}",
        )  # fmt: skip
        source = f"statement:{s.partner_id}:{s.period.label}"
        found.append(Message(s.partner_id, kind.value, bodies.message_id(source), _body(kind, finalised_at, data)))
    return found


async def record_source_events(store: WebhookStore, topic: str, events: Sequence[Event], now: datetime) -> int:
    """One transaction per consumed batch: the inbox claim and the deliveries of its fresh events."""
    async with store.transaction() as tx:
        fresh = await tx.claim_inbox(topic, [e.event_id for e in events])
        messages = [m for e in events if e.event_id in fresh and (m := message_of(e)) is not None]
        await tx.enqueue_messages(messages, now)
    return len(messages)


# --- endpoints, managed by the partner's staff or ops --------------------------------------------------------


@dataclass(frozen=True)
class NewEndpoint:
    url: str
    event_types: Sequence[str]
    description: str = ""
    endpoint_id: uuid.UUID | None = None
    """Chosen by the caller (the portal's form), so that a double submit makes one endpoint."""


@dataclass(frozen=True)
class EndpointChange:
    enabled: bool | None = None
    event_types: Sequence[str] | None = None
    description: str | None = None


class HostCheck(Protocol):
    async def __call__(self, host: str, *, production: bool) -> None: ...


@dataclass
class Endpoints:
    """What endpoint management needs: the store, the secret box, the rules' mode, a clock."""

    store: WebhookStore
    box: SecretBox
    production: bool
    clock: Clock
    check_host: HostCheck
    topic_prefix: str = ""


def _audit(principal: Principal, action: str, row: Mapping[str, Any], before: Mapping[str, Any] | None,
           after: Mapping[str, Any] | None, note: str | None = None) -> audit.AuditEntry:  # fmt: skip
    return audit.AuditEntry(
        actor=principal.subject, role=principal.role.value, action=f"webhook_endpoint.{action}",
        subject=f"webhook_endpoint:{row['endpoint_id']}", before=before, after=after, note=note,
        details={"partner_id": row["partner_id"]},
    )  # fmt: skip


def _visible(row: Mapping[str, Any]) -> dict[str, Any]:
    """What the audit log keeps of an endpoint (never its secret)."""
    keys = ("url", "event_types", "description", "enabled", "disabled_reason")
    return {k: (list(row[k]) if k == "event_types" else row[k]) for k in keys if k in row}


async def subscribe(
    ctx: Endpoints, partner_id: str, new: NewEndpoint, principal: Principal
) -> tuple[dict[str, Any], str | None]:
    """Make the endpoint; returns it and its secret (shown this once), or the existing one and None on a repeat."""
    url, host = checked_url(new.url.strip(), production=ctx.production)
    await ctx.check_host(host, production=ctx.production)
    types = [t.value for t in event_types_of(new.event_types)]
    endpoint_id, now, secret = new.endpoint_id or uuid.uuid4(), ctx.clock(), wire.new_secret()
    row = {"endpoint_id": endpoint_id, "partner_id": partner_id, "url": url, "event_types": types,
           "description": new.description.strip()}  # fmt: skip
    async with ctx.store.transaction() as tx:
        await tx.lock_partner(partner_id)
        existing = await tx.endpoint_by_id(endpoint_id)
        if existing is not None:
            if existing["partner_id"] != partner_id or existing["url"] != url:
                raise EndpointIdTakenError()
            return existing, None
        if await tx.count_endpoints(partner_id) >= MAX_ENDPOINTS_PER_PARTNER:
            raise TooManyEndpointsError()
        await tx.insert_endpoint(row, ctx.box.seal(secret, str(endpoint_id)), now, principal.subject)
        await tx.audit(_audit(principal, "created", row, None, _visible(row)))
        made = await tx.endpoint_by_id(endpoint_id)
    assert made is not None
    return made, secret


async def change(
    ctx: Endpoints, partner_id: str, endpoint_id: uuid.UUID, asked: EndpointChange, principal: Principal
) -> dict[str, Any]:
    """Enable, disable, resubscribe or describe an endpoint; enabling starts it afresh (no failure carried over)."""
    async with ctx.store.transaction() as tx:
        before = await tx.lock_endpoint(partner_id, endpoint_id)
        if before is None:
            raise EndpointNotFoundError(partner_id, endpoint_id)
        row = dict(before)
        if asked.event_types is not None:
            row["event_types"] = [t.value for t in event_types_of(asked.event_types)]
        if asked.description is not None:
            row["description"] = asked.description.strip()
        if asked.enabled is not None and asked.enabled != before["enabled"]:
            row["enabled"] = asked.enabled
            stopped = not asked.enabled
            row["disabled_reason"] = f"disabled by {principal.subject}" if stopped else None
            row["disabled_by"], row["disabled_at"] = (principal.subject, ctx.clock()) if stopped else (None, None)
        after = await tx.update_endpoint(row)
        if _visible(before) != _visible(after):
            verb = "changed"
            if before["enabled"] != after["enabled"]:
                verb = "enabled" if after["enabled"] else "disabled"
            await tx.audit(_audit(principal, verb, after, _visible(before), _visible(after)))
    return after


async def rotate_secret(
    ctx: Endpoints, partner_id: str, endpoint_id: uuid.UUID, principal: Principal
) -> tuple[dict[str, Any], str]:
    """A new secret, shown once; the old one keeps signing beside it for ROTATION_OVERLAP."""
    secret, now = wire.new_secret(), ctx.clock()
    async with ctx.store.transaction() as tx:
        before = await tx.lock_endpoint(partner_id, endpoint_id)
        if before is None:
            raise EndpointNotFoundError(partner_id, endpoint_id)
        old = ctx.box.open(await tx.sealed_secret(endpoint_id), str(endpoint_id))
        after = await tx.rotate_secret(
            partner_id, endpoint_id, ctx.box.seal(old, str(endpoint_id)), now + ROTATION_OVERLAP,
            ctx.box.seal(secret, str(endpoint_id)),
        )  # fmt: skip
        overlap = {"previous_signs_until": now + ROTATION_OVERLAP}
        await tx.audit(_audit(principal, "secret_rotated", after, None, overlap))
    return after, secret


async def replay(ctx: Endpoints, partner_id: str, delivery_id: uuid.UUID, principal: Principal) -> dict[str, Any]:
    """Attempt the delivery again now, with the same webhook-id and a new day of retries."""
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        delivery = await tx.lock_delivery(partner_id, delivery_id)
        if delivery is None:
            raise DeliveryNotFoundError(partner_id, delivery_id)
        endpoint = await tx.endpoint_by_id(delivery["endpoint_id"])
        if endpoint is None or not endpoint["enabled"]:
            raise EndpointDisabledError()
        await tx.replay(partner_id, delivery_id, now)
        await tx.audit(audit.AuditEntry(
            actor=principal.subject, role=principal.role.value, action="webhook_delivery.replayed",
            subject=f"webhook_delivery:{delivery_id}", before={"status": delivery["status"]},
            after={"status": "pending"}, details={"partner_id": partner_id, "message_id": delivery["message_id"]},
        ))  # fmt: skip
    found = await ctx.store.delivery(partner_id, delivery_id)
    assert found is not None
    return found


# --- the dispatcher ----------------------------------------------------------------------------------------------


class Sender(Protocol):
    async def send(
        self, url: str, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> tuple[AttemptResult, int]: ...

    async def close(self) -> None: ...


@dataclass
class Dispatcher:
    """Attempts due deliveries: at most `concurrency` at once, each within the sender's timeout.

    Several dispatchers (processes) may run: each claim takes rows no other claim holds (SKIP LOCKED)
    and leases them past the attempt's timeout, so one attempt is sent by one of them.
    """

    store: WebhookStore
    sender: Sender
    box: SecretBox
    clock: Clock
    topic_prefix: str = ""
    concurrency: int = 8
    batch: int = 50
    lease: timedelta = timedelta(seconds=60)
    jitter: Jitter = field(default=random_jitter)

    async def dispatch_due(self) -> int:
        """Attempt every delivery due now, once each; returns how many were attempted."""
        now = self.clock()
        async with self.store.transaction() as tx:
            claimed = await tx.claim_due(now, now + self.lease, self.batch)
        if claimed:
            gate = asyncio.Semaphore(self.concurrency)
            await asyncio.gather(*(self._attempt(c, gate) for c in claimed))
        return len(claimed)

    async def _attempt(self, claimed: Claimed, gate: asyncio.Semaphore) -> None:
        async with gate:
            started = self.clock()
            headers = wire.signed_headers(self._secrets(claimed, started), claimed.message_id, started, claimed.body)
            result, duration = await self.sender.send(claimed.url, headers, claimed.body, started)
        await self._record(claimed, started, result, duration)

    def _secrets(self, claimed: Claimed, now: datetime) -> list[str]:
        key = str(claimed.endpoint_id)
        previous = self.box.open(claimed.previous_sealed, key) if claimed.previous_sealed else None
        return signing_secrets(self.box.open(claimed.secret_sealed, key), previous, claimed.previous_until, now)

    async def _record(self, claimed: Claimed, started: datetime, result: AttemptResult, duration: int) -> None:
        now = self.clock()
        verdict = result.verdict
        next_at = None
        if verdict is Verdict.RETRY:
            window_attempts = claimed.attempt - claimed.attempts_before
            next_at = next_attempt_at(claimed.window_start, window_attempts, now,
                                      wait_at_least=result.retry_after, jitter=self.jitter)  # fmt: skip
        state = {Verdict.DELIVERED: "delivered", Verdict.FAILED: "failed"}.get(verdict, "pending")
        if verdict is Verdict.RETRY and next_at is None:
            state = "failed"
        async with self.store.transaction() as tx:
            if not await tx.record_attempt(claimed, started, result.status, result.error, duration):
                return
            if not await tx.settle(claimed, state, next_at, result.status, result.error, now):
                return
            if verdict is Verdict.RETRY and next_at is None:
                await self._disable_if_failing(tx, claimed, result, now)
        log.info("webhook attempt", extra={"delivery_id": str(claimed.delivery_id), "attempt": claimed.attempt,
                                           "status": result.status, "outcome": state})  # fmt: skip

    async def _disable_if_failing(
        self, tx: WebhookTransaction, claimed: Claimed, result: AttemptResult, now: datetime
    ) -> None:
        """A delivery failed for a day: disable its endpoint unless it delivered something meanwhile, and say so."""
        hours = int(RETRY_WINDOW.total_seconds() // 3600)
        reason = f"every attempt failed for {hours} h (last: {result.status or result.error})"[:500]
        row = await tx.disable_failing(claimed.endpoint_id, claimed.window_start, reason, now)
        if row is None:
            return
        event_id = uuid.uuid4()
        event = WebhookEndpointDisabled(
            event_id=event_id, occurred_at=now, source="partners", correlation_id=event_id,
            payload=EndpointDisabledPayload(partner_id=row["partner_id"], endpoint_id=row["endpoint_id"],
                                            url=row["url"], failing_since=claimed.window_start, reason=reason,
                                            last_status=result.status),
        )  # fmt: skip
        topic = PARTNER_WEBHOOKS.qualified(self.topic_prefix)
        await tx.outbox([OutboxMessage(topic, row["partner_id"], event.model_dump_json().encode(),
                                       inject_context({"type": event.type}))])  # fmt: skip
        await tx.audit(audit.AuditEntry(
            actor=DISPATCHER, role="system", action="webhook_endpoint.disabled",
            subject=f"webhook_endpoint:{row['endpoint_id']}",
            before={"enabled": True}, after={"enabled": False, "disabled_reason": reason},
            details={"partner_id": row["partner_id"]},
        ))  # fmt: skip
        log.warning("webhook endpoint disabled", extra={"endpoint_id": str(row["endpoint_id"]), "reason": reason})


async def run_dispatcher(dispatcher: Dispatcher, every: float) -> None:
    """Until cancelled: attempt what is due, then wait a moment when nothing was (a full batch goes on at once).

    Its sender's connections close when it is cancelled (the service stops)."""
    try:
        while True:
            if await dispatcher.dispatch_due() < dispatcher.batch:
                await asyncio.sleep(every)
    finally:
        await dispatcher.sender.close()
