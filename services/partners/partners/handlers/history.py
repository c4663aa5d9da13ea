"""What a partner posted to intake, newest first: what was accepted, and what was refused with its reason.

Intake keeps a refusal only once the request proved who sent it (a valid, fresh signature never used
before), so a stranger cannot fill the record; what the body said is kept only when it had the right
type and length, and the reason is cut to MAX_REASON characters.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from partners.domain.intake import Kind, PurchaseReport, RefundReport
from partners.domain.registry import UnknownPartnerError

log = logging.getLogger(__name__)

Outcome = Literal["accepted", "refused"]

MAX_REASON = 500
MAX_FIELD = 128
MAX_CURRENCY = 16


@dataclass(frozen=True)
class ItemFacts:
    """What one purchase or refund said; None where it said nothing usable."""

    idempotency_key: str | None = None
    customer_ref: str | None = None
    purchase_id: str | None = None
    refund_id: str | None = None
    amount_minor: int | None = None
    currency: str | None = None

    @classmethod
    def of_purchase(cls, report: PurchaseReport) -> ItemFacts:
        return cls.sniff(vars(report))

    @classmethod
    def of_refund(cls, report: RefundReport) -> ItemFacts:
        return cls.sniff(vars(report))

    @classmethod
    def sniff(cls, said: Mapping[str, object]) -> ItemFacts:
        """The fields of a body that may not have validated, each kept only if it is text (or an amount) that fits."""
        return cls(
            idempotency_key=_text(said.get("idempotency_key"), MAX_FIELD),
            customer_ref=_text(said.get("customer_ref"), MAX_FIELD),
            purchase_id=_text(said.get("purchase_id"), MAX_FIELD),
            refund_id=_text(said.get("refund_id"), MAX_FIELD),
            amount_minor=_amount(said.get("amount_minor")),
            currency=_text(said.get("currency"), MAX_CURRENCY),
        )


@dataclass(frozen=True)
class RefusedItem:
    facts: ItemFacts
    reason: str


@dataclass(frozen=True)
class IntakeRecord:
    """One line of the listing; `position` orders them (newer is larger) and makes the cursor."""

    position: int
    received_at: datetime
    kind: Kind
    outcome: Outcome
    reason: str | None
    facts: ItemFacts
    points: int | None
    event_id: uuid.UUID | None


@dataclass(frozen=True)
class IntakePage:
    items: Sequence[IntakeRecord]
    next_before: int | None


class IntakeHistory(Protocol):
    async def keep_refused(self, partner_id: str, kind: Kind, items: Sequence[RefusedItem]) -> None:
        """Store the refused items in one statement."""

    async def newest(
        self, partner_id: str, outcome: Outcome | None, before: int | None, limit: int
    ) -> list[IntakeRecord]:
        """At most `limit` records older than position `before` (all when None), newest first."""


class PartnerLookup(Protocol):
    async def contracts_of(self, partner_id: str) -> Sequence[object]: ...


def refusals_of(facts: Sequence[ItemFacts], problems: Sequence[tuple[int | None, str]]) -> list[RefusedItem]:
    """Every item of a refused request: those at fault with their reasons, the others with why they were not taken.

    A problem without an index (or with one past the items) is about the whole request and applies to every item.
    """
    items = list(facts) or [ItemFacts()]
    general = [reason for index, reason in problems if index is None or not 0 <= index < len(items)]
    own: dict[int, list[str]] = {}
    for index, reason in problems:
        if index is not None and 0 <= index < len(items):
            own.setdefault(index, []).append(reason)
    first = min(own, default=None)
    sibling = f"not accepted: item {first} of the same request was refused, so nothing of the request was accepted"
    return [
        RefusedItem(item, _bounded("; ".join([*general, *own.get(i, [])]) or sibling)) for i, item in enumerate(items)
    ]


async def keep_refusals(history: IntakeHistory, partner_id: str, kind: Kind, items: Sequence[RefusedItem]) -> None:
    """Keep the refusal for the partner's portal; a failure to keep it must not hide the reason from the partner."""
    try:
        await history.keep_refused(partner_id, kind, items)
    except Exception:  # the caller answers the refusal whatever happens to its record
        log.exception("a refused intake request was not recorded", extra={"partner_id": partner_id, "kind": kind})


async def list_intake(
    history: IntakeHistory,
    partners: PartnerLookup,
    partner_id: str,
    outcome: Outcome | None,
    before: int | None,
    limit: int,
) -> IntakePage:
    """One page, newest first; `next_before` continues it, None on the last page. 404 for an unknown partner."""
    records = await history.newest(partner_id, outcome, before, limit + 1)
    if not records and before is None and not await partners.contracts_of(partner_id):
        raise UnknownPartnerError(partner_id)  # every partner has a contract: none means no such partner
    page = records[:limit]
    return IntakePage(page, page[-1].position if len(records) > limit else None)


def _bounded(reason: str) -> str:
    clean = _printable(reason)
    return clean if len(clean) <= MAX_REASON else clean[: MAX_REASON - 1] + "…"


def _printable(text: str) -> str:
    """Without NUL (PostgreSQL text refuses it) and without lone surrogates (not UTF-8)."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _text(value: object, limit: int) -> str | None:
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        return None
    return value if _printable(value) == value else None


def _amount(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if -(2**63) <= value < 2**63 else None
