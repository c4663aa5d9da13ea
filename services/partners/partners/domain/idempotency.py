"""What intake accepted under which idempotency key, and how a request that uses a key or an id again is judged.

- An idempotency key names one purchase (or refund) of its partner forever. The same key with the same
  body is a retry: it names the same event and is answered as the first time. The same key with another
  body is refused: the ledger would drop its event as the one it already applied.
- A purchase_id (refund_id) is accepted under one key only. Under a new key it would make a new event
  that the ledger drops as a purchase it already has: accepted here, lost there, so it is refused here.
- "The same body" means the same canonical fields (the instant of occurred_at, not how it was written),
  so a retry that serialises its JSON differently is still a retry.
- A request is all or nothing: if any of its items is refused, none is accepted.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from partners.domain.errors import ReportRefusedError
from partners.domain.intake import EXTERNAL_ID, BatchRefusedError, Kind, PurchaseReport, RefundReport, event_id_for


@dataclass(frozen=True)
class IntakeEntry:
    """One accepted item as intake records it: its key, what it said, its own id, its event."""

    idempotency_key: str
    body_hash: bytes
    external_id: str
    event_id: uuid.UUID


class KeyReusedError(ReportRefusedError):
    field = "idempotency_key"

    def __init__(self, kind: Kind, key: str, recorded: IntakeEntry) -> None:
        name = EXTERNAL_ID[kind]
        super().__init__(
            f"idempotency_key {key!r} was already used for another {kind} ({name} {recorded.external_id!r}, "
            f"with fields that differ from these), so this one was not accepted; use a new idempotency_key for "
            f"a new {kind}, or resend the original body unchanged to retry it"
        )


class ExternalIdReusedError(ReportRefusedError):
    def __init__(self, kind: Kind, external_id: str, recorded_key: str) -> None:
        name = EXTERNAL_ID[kind]
        self.field = name
        super().__init__(
            f"{name} {external_id!r} was already accepted under idempotency_key {recorded_key!r}; to retry that "
            f"{kind}, resend its original body with idempotency_key {recorded_key!r}; a new {kind} needs its own {name}"
        )


class IntakeConflictError(BatchRefusedError):
    """Items reuse a key or an id that earlier requests were accepted with; nothing of this request was accepted."""


def purchase_entry(partner_id: str, report: PurchaseReport) -> IntakeEntry:
    r = report
    fields: tuple[str | int | None, ...] = (
        r.customer_ref, r.purchase_id, r.amount_minor, r.currency, r.category, _instant(r.occurred_at)
    )  # fmt: skip
    if r.attribution is not None:  # part of the body: a retry must send the same; bodies without it hash as before
        fields += ("attribution", *r.attribution.fields)
    return _entry("purchase", partner_id, r.idempotency_key, r.purchase_id, fields)


def refund_entry(partner_id: str, report: RefundReport) -> IntakeEntry:
    r = report
    fields = (r.customer_ref, r.refund_id, r.purchase_id, r.amount_minor, r.currency, _instant(r.occurred_at))
    return _entry("refund", partner_id, r.idempotency_key, r.refund_id, fields)


def conflicts(
    kind: Kind, entries: Sequence[IntakeEntry], recorded: Sequence[IntakeEntry]
) -> list[tuple[int, ReportRefusedError]]:
    """The entries that `recorded` (what intake holds for their keys and ids) refuses, each with its index.

    An entry whose key is recorded with the same body is a retry, not a conflict; `recorded` may hold the
    entries themselves (rows this request just wrote), which are retries of themselves.
    """
    by_key = {r.idempotency_key: r for r in recorded}
    by_id = {r.external_id: r for r in recorded}
    problems: list[tuple[int, ReportRefusedError]] = []
    for index, entry in enumerate(entries):
        same_key = by_key.get(entry.idempotency_key)
        if same_key is not None:
            if same_key.body_hash != entry.body_hash:
                problems.append((index, KeyReusedError(kind, entry.idempotency_key, same_key)))
            continue
        same_id = by_id.get(entry.external_id)
        if same_id is not None:
            problems.append((index, ExternalIdReusedError(kind, entry.external_id, same_id.idempotency_key)))
    return problems


def _entry(kind: Kind, partner_id: str, key: str, external_id: str, fields: Sequence[str | int | None]) -> IntakeEntry:
    # Length-prefixed fields: no two lists encode alike, at a third of JSON's cost for a batch of 1,000.
    canonical = "".join("-" if f is None else f"{len(str(f))}:{f}" for f in fields)
    return IntakeEntry(
        idempotency_key=key,
        body_hash=hashlib.sha256(canonical.encode()).digest(),
        external_id=external_id,
        event_id=event_id_for(kind, partner_id, key),
    )


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()
