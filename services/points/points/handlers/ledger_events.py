"""The ledger events a committed transfer emits, written to the outbox in the same transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import orjson

from contracts.topics import EARNING_REVIEWS, LEDGER_EVENTS, LEDGER_TRANSFERS, MEMBER_TIERS
from loyalty_runtime.outbox import OutboxMessage
from loyalty_runtime.telemetry import inject_context
from points.adapters.store import Transaction
from points.domain.ledger import Book, Changes, Transfer, member_of
from points.handlers.ledger_audit import audit_ops_move

SOURCE = "points"


class LedgerEventWriter:
    def __init__(self, topic_prefix: str) -> None:
        self.topic = LEDGER_EVENTS.qualified(topic_prefix)
        self.transfers_topic = LEDGER_TRANSFERS.qualified(topic_prefix)
        self.tiers_topic = MEMBER_TIERS.qualified(topic_prefix)
        """TierChanged of members' tiers (points/handlers/tiers.py), which the earn batch may decide too."""
        self.reviews_topic = EARNING_REVIEWS.qualified(topic_prefix)
        """Earnings held for review and their decisions (points/handlers/reviews.py), the earn batch's too."""

    @staticmethod
    def dead_letter_topic(topic: str) -> str:
        return f"{topic}.dlq"

    def for_transfers(
        self,
        transfers: Iterable[Transfer],
        posted_at: datetime,
        correlations: Mapping[uuid.UUID, uuid.UUID] | None = None,
    ) -> list[OutboxMessage]:
        """TransferPosted for every transfer; PointsCredited / PointsDebited for those touching a member.

        Serialised straight from the ledger's typed records with orjson, in the contracts' shape: this
        runs for every point the platform moves, and building and validating pydantic models here cost
        more than everything else in the earn path. Consumers validate what they read, and a test
        round-trips these messages through the contracts.
        """
        headers = inject_context({})
        messages: list[OutboxMessage] = []
        for t in transfers:
            envelope = {
                "source": SOURCE,
                "correlation_id": (correlations or {}).get(t.cause_event_id, t.cause_event_id),
                "causation_id": t.cause_event_id,
            }
            movement = {"transfer_id": t.transfer_id, "amount": t.amount, "reason": t.reason,
                        "cause_event_id": t.cause_event_id}  # fmt: skip
            posted = {
                "event_id": event_id(t.transfer_id, _POSTED), "type": "TransferPosted", "version": 1,
                "occurred_at": posted_at, **envelope,
                "payload": {**movement, "debit_account": t.debit_account, "credit_account": t.credit_account,
                            "issuer_account": t.memo.get("issuer")},
            }  # fmt: skip
            messages.append(
                OutboxMessage(self.transfers_topic, settlement_key(t), orjson.dumps(posted, default=str), headers)
            )
            if t.credit_account.startswith("member:"):
                member = member_of(t.credit_account)
                credited = {
                    "event_id": event_id(t.transfer_id, _CREDITED), "type": "PointsCredited", "version": 1,
                    "occurred_at": t.occurred_at, **envelope,
                    "payload": {**movement, "member_id": member, "counterparty_account": t.debit_account,
                                "expires_at": t.expires_at},
                }  # fmt: skip
                messages.append(OutboxMessage(self.topic, str(member), orjson.dumps(credited, default=str), headers))
            if t.debit_account.startswith("member:"):
                member = member_of(t.debit_account)
                debited = {
                    "event_id": event_id(t.transfer_id, _DEBITED), "type": "PointsDebited", "version": 1,
                    "occurred_at": t.occurred_at, **envelope,
                    "payload": {**movement, "member_id": member, "counterparty_account": t.credit_account},
                }  # fmt: skip
                messages.append(OutboxMessage(self.topic, str(member), orjson.dumps(debited, default=str), headers))
        return messages


# asyncpg hands back its own UUID type (for ids read from the database), which orjson leaves to `default`.
# Event ids derive from transfer ids by flipping fixed bits (a version 8 UUID, RFC 9562): as stable as
# a uuid5 of the transfer id, and a few hundred times cheaper on the hottest path of the ledger.
_POSTED, _CREDITED, _DEBITED = 0x5A17_0001, 0x5A17_0002, 0x5A17_0003
_VERSION_AND_VARIANT_MASK = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)


def event_id(transfer: uuid.UUID, kind: int) -> uuid.UUID:
    """The id of one of the events reporting `transfer`; the same transfer and kind, the same id."""
    flipped = (transfer.int ^ (kind << 32)) & _VERSION_AND_VARIANT_MASK
    return uuid.UUID(int=flipped | (0x8 << 76) | (0x2 << 62))


def posted_event_id(transfer: uuid.UUID) -> uuid.UUID:
    """The id of the TransferPosted event that reports `transfer`."""
    return event_id(transfer, _POSTED)


def debited_event_id(transfer: uuid.UUID) -> uuid.UUID:
    """The id of the PointsDebited event that reports `transfer` to the member it debits."""
    return event_id(transfer, _DEBITED)


def settlement_key(transfer: Transfer) -> str:
    """The partner a transfer concerns, so that one partner's transfers stay in order; 'ledger' if none."""
    for account in (transfer.debit_account, transfer.credit_account):
        if account.startswith("partner:"):
            return account.split(":")[1]
    return "ledger"


async def post_changes(
    tx: Transaction,
    book: Book,
    events: LedgerEventWriter,
    *,
    correlations: Mapping[uuid.UUID, uuid.UUID] | None = None,
    extra: Iterable[OutboxMessage] = (),
) -> Changes:
    """Write what `book` did and the events that report it, in the caller's transaction."""
    changes = book.changes()
    posted_at = datetime.now(UTC)
    await tx.write(changes, posted_at)
    await tx.enqueue([*events.for_transfers(changes.transfers, posted_at, correlations), *extra])
    await audit_ops_move(tx, changes)
    return changes
