"""Targeted messages: the job that tells each targeted member of a live activity once, callbacks, preferences."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from contracts.events.messages import MemberMessaged, MemberMessagedPayload
from contracts.signing import REPLAY_WINDOW_SECONDS
from loyalty_runtime.outbox import OutboxMessage
from loyalty_runtime.telemetry import inject_context
from points.adapters.activities_store import list_activities
from points.adapters.attribution_store import AttributionStore
from points.adapters.messages_store import MessagesStore, MessagingTransaction, PlannedMessage, Target
from points.domain.activities import Activity, Version
from points.domain.messages import Callback, campaign_ref, choose_channel, fold_callbacks, message_id, message_text
from points.handlers.members import MemberNotFoundError

SOURCE = "points"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Messaging:
    """The job's settings: where MemberMessaged goes, the programme's default channel, the wallet's address."""

    topic: str
    default_channel: str
    console_url: str
    chunk_size: int = 500


async def send_due_messages(store: MessagesStore, messaging: Messaging, now: datetime) -> int:
    """Message the targeted members of every live activity aimed at a segment that some are still owed; how many."""
    await store.discover(now)
    sent = 0
    for activity_id in await store.pending():
        found = await list_activities(store.pool, activity_id, 1)
        if not found:
            continue
        activity = found[0]
        if activity.status(now) == "ended":
            await store.finish(activity_id, now)  # too late: telling members now would promise what has gone
            continue
        live = activity.live_version_at(now)
        if live is None:
            continue  # scheduled for later, or paused: its members hear of it when it runs
        while (chunk := await send_chunk(store, messaging, activity, live, now)) is not None:
            sent += chunk
    return sent


async def send_chunk(
    store: MessagesStore, messaging: Messaging, activity: Activity, live: Version, now: datetime
) -> int | None:
    """The next chunk of the activity's targeted members messaged in one transaction (how many were new), or None
    when every one has its message or another process holds the activity."""
    async with store.chunk() as tx:
        after = await tx.lock(activity.activity_id)
        if after is None:
            return None
        targets = await tx.next_targets(activity.activity_id, after, messaging.chunk_size)
        if not targets:
            await tx.finish(activity.activity_id, now)
            return None
        planned = await _plan(tx, messaging, activity.activity_id, targets)
        expires_at = live.window_end or now + timedelta(days=30)
        new = await tx.insert(activity.activity_id, now, expires_at, planned)
        await tx.enqueue(
            [_event(messaging, activity, live, p, expires_at, now) for p in planned if p.message_id in new]
        )
        await tx.advance(activity.activity_id, targets[-1].member_id, len(new))
        return len(new)


async def _plan(
    tx: MessagingTransaction, messaging: Messaging, activity_id: uuid.UUID, targets: Sequence[Target]
) -> list[PlannedMessage]:
    history = await tx.history([t.member_id for t in targets])
    return [
        PlannedMessage(
            message_id(activity_id, t.member_id),
            t.member_id,
            choose_channel(t.preferred_channel, history.get(t.member_id, []), messaging.default_channel),
        )
        for t in targets
    ]


def _event(
    messaging: Messaging, activity: Activity, live: Version, planned: PlannedMessage, expires_at: datetime,
    now: datetime,
) -> OutboxMessage:  # fmt: skip
    text = message_text(activity.name, activity.kind.value, live.rules.to_json(), live.window_end)
    event = MemberMessaged(
        event_id=planned.message_id, occurred_at=now, source=SOURCE, correlation_id=activity.activity_id,
        payload=MemberMessagedPayload(
            message_id=planned.message_id, member_id=planned.member_id, activity_id=activity.activity_id,
            channel=planned.choice.channel, campaign_ref=campaign_ref(activity.activity_id), template=text.template,  # type: ignore[arg-type]
            title=text.title, body=text.body, deep_link=f"{messaging.console_url.rstrip('/')}/wallet/activities",
            expires_at=expires_at,
        ),
    )  # fmt: skip
    return OutboxMessage(messaging.topic, str(planned.member_id), event.model_dump_json().encode(), inject_context({}))


async def forget_old_signatures(store: MessagesStore, now: datetime) -> None:
    """A signature older than the replay window can never be accepted again: its record is no longer needed."""
    await store.forget_signatures(now - timedelta(seconds=REPLAY_WINDOW_SECONDS * 2))


# --- callbacks and preferences ------------------------------------------------------------------------------------


class SignatureReplayedError(Exception):
    def __init__(self) -> None:
        super().__init__("this signature was already used: sign every callback request anew, with a fresh timestamp")


async def record_callbacks(
    store: MessagesStore, signature: str, signed_at: datetime, callbacks: Sequence[Callback]
) -> list[bool]:
    """Per callback, whether its message exists (its times are recorded); each signature is accepted once."""
    known = await store.apply_callbacks(signature, signed_at, fold_callbacks(callbacks))
    if known is None:
        raise SignatureReplayedError()
    return [c.message_id in known for c in callbacks]


async def preferred_channel(store: MessagesStore, member_id: uuid.UUID) -> str | None:
    exists, channel = await store.preference(member_id)
    if not exists:
        raise MemberNotFoundError(member_id)
    return channel


async def set_preferred_channel(store: MessagesStore, member_id: uuid.UUID, channel: str | None) -> str | None:
    if not await store.set_preference(member_id, channel):
        raise MemberNotFoundError(member_id)
    return channel


async def messaging_job(
    store: Callable[[], MessagesStore], links: Callable[[], AttributionStore], messaging: Messaging, interval: float,
    clock: Callable[[], datetime],
) -> None:  # fmt: skip
    """Runs for the life of the service: messages what is due, then forgets what the replay and flood limits no
    longer need."""
    while True:
        now = clock()
        sent = await send_due_messages(store(), messaging, now)
        if sent:
            log.info("members messaged", extra={"messages": sent})
        await forget_old_signatures(store(), now)
        await links().forget_open_minutes(now - timedelta(hours=1))
        await asyncio.sleep(interval)
