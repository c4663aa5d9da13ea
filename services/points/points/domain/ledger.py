"""The ledger's vocabulary and rules: accounts, transfers, lots (TigerBeetle's words, DESIGN.md).

- An account has posted and pending debits and credits. Accounts that must not overdraw
  (a member's, an unclaimed identifier's) never let debits exceed credits.
- A transfer moves a positive whole number of points from a debit account to a credit account.
  Its id is derived from its cause, so the same cause can never move points twice.
- Every credit to an account that holds lots creates a lot with an expiry date; every debit
  from such an account takes lots, those that expire first first. Its live lots sum to its
  posted balance.

`Book` is the working set of one database transaction: the accounts and lots it loaded,
and the changes it made, which an adapter then writes in a few batched statements.
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

# Fixed forever: every transfer id in the ledger derives from it.
_TRANSFER_IDS = uuid.UUID("1b6f2c59-3d44-4f0e-8c1e-7a3e9b0d5a61")


class AccountKind(StrEnum):
    MEMBER = "member"
    UNCLAIMED = "unclaimed"
    PARTNER_ISSUED = "partner_issued"
    CARD_ISSUED = "card_issued"
    BREAKAGE = "breakage"
    RECEIVABLE = "receivable"
    PARTNER_REDEEMED = "partner_redeemed"
    ACTIVITY_BUDGET = "activity_budget"
    PROGRAMME = "programme"
    PACKET = "packet"
    """A red packet's pool: the lots it was funded with wait here until grabbed or returned (domain/packets.py)."""
    CARD_EXCHANGE = "card_exchange"
    """Issues the alliance points converted from the bank's card points (domain/exchange.py), like an issuer."""
    REVIEW = "review"
    """Suspense: earnings the velocity rules hold for review, until ops release or reject them (domain/velocity.py)."""
    ADJUSTMENT = "adjustment"
    """Ops adjustments (domain/adjustments.py): credits to members come from it, debits go back to it."""
    MIGRATION = "migration"
    """Issues the balances migrated from the old programme (domain/imports.py), like the card's issuer."""

    @property
    def holds_lots(self) -> bool:
        return self in _HOLDS_LOTS

    @property
    def must_not_overdraw(self) -> bool:
        return self in _MUST_NOT_OVERDRAW

    @property
    def balance_decides(self) -> bool:
        """Whether a decision reads this account's balance: overdraft checks, and a receivable's debt.

        The other accounts (issuers, breakage, redeemed, programme) take whatever the ledger books, so a
        batch need not hold them while it works: they are shared by every batch (DESIGN.md, hot accounts).
        """
        return self in _BALANCE_DECIDES

    @classmethod
    def of(cls, value: str) -> AccountKind:
        """The kind stored as `value` (a dictionary lookup: the enum's own constructor is slow on hot paths)."""
        return _BY_VALUE[value]


# Sets of members, not tuples built per call: these are asked for every transfer the ledger makes.
_HOLDS_LOTS = frozenset({AccountKind.MEMBER, AccountKind.UNCLAIMED, AccountKind.PACKET})
_MUST_NOT_OVERDRAW = _HOLDS_LOTS | {AccountKind.ACTIVITY_BUDGET}
_BALANCE_DECIDES = _MUST_NOT_OVERDRAW | {AccountKind.RECEIVABLE}
_BY_VALUE = {kind.value: kind for kind in AccountKind}

BREAKAGE = "breakage"
CARD_ISSUED = "card:issued"
PROGRAMME = "programme"
"""Funds reward activities' budgets: its balance is what the programme has committed to bonuses."""
CARD_POINTS_EXCHANGE = "card-points:exchange"
"""Issuer of points converted from card points: minus its balance is what card points brought in (exchange)."""
REVIEW_PENDING = "review:pending"
"""Points of earnings held for review: its balance is the sum of the open reviews' points (never a member's)."""
MIGRATION = "migration"
"""Issuer of migrated balances (batch import): minus its balance is what the import brought in."""
ADJUSTMENTS = "adjustments"
"""Ops adjustments' counterparty: minus its balance is what adjustments added to members, net."""


@functools.lru_cache(maxsize=1 << 17)  # a member's accounts are named many times per batch
def member_account(member_id: uuid.UUID) -> str:
    return f"member:{member_id}"


@functools.lru_cache(maxsize=1 << 17)  # a member's accounts are named many times per batch
def member_of(account_id: str) -> uuid.UUID:
    """The member whose account (member or receivable) this is."""
    prefix, _, rest = account_id.partition(":")
    if prefix not in ("member", "receivable"):
        raise ValueError(f"{account_id!r} is not a member's account")
    return uuid.UUID(rest)


def unclaimed_account(identifier: str) -> str:
    return f"unclaimed:{identifier}"


def packet_account(packet_id: uuid.UUID) -> str:
    """A red packet's pool of points."""
    return f"packet:{packet_id}"


def partner_issued_account(partner_id: str) -> str:
    return f"partner:{partner_id}:issued"


def partner_redeemed_account(partner_id: str) -> str:
    """Points redeemed with a partner: what the programme owes it for (settlement)."""
    return f"partner:{partner_id}:redeemed"


@functools.lru_cache(maxsize=1 << 17)  # a member's accounts are named many times per batch
def receivable_account(member_id: uuid.UUID) -> str:
    """What a member owes after a refund reversed points it had already spent (a clawback)."""
    return f"receivable:{member_id}"


@functools.lru_cache(maxsize=1 << 17)  # asked for every account of every batch, several times
def kind_of(account_id: str) -> AccountKind:
    if account_id.startswith("member:"):  # by far the most frequent: tested first
        return AccountKind.MEMBER
    if account_id == BREAKAGE:
        return AccountKind.BREAKAGE
    if account_id == CARD_ISSUED:
        return AccountKind.CARD_ISSUED
    if account_id == PROGRAMME:
        return AccountKind.PROGRAMME
    if account_id == CARD_POINTS_EXCHANGE:
        return AccountKind.CARD_EXCHANGE
    if account_id == REVIEW_PENDING:
        return AccountKind.REVIEW
    if account_id == MIGRATION:
        return AccountKind.MIGRATION
    if account_id == ADJUSTMENTS:
        return AccountKind.ADJUSTMENT
    if account_id.startswith("activity:") and account_id.endswith(":budget"):
        return AccountKind.ACTIVITY_BUDGET
    prefix = account_id.split(":", 1)[0]
    if prefix == "partner" and account_id.endswith(":issued"):
        return AccountKind.PARTNER_ISSUED
    if prefix == "partner" and account_id.endswith(":redeemed"):
        return AccountKind.PARTNER_REDEEMED
    kinds = {"member": AccountKind.MEMBER, "unclaimed": AccountKind.UNCLAIMED, "receivable": AccountKind.RECEIVABLE,
             "packet": AccountKind.PACKET}  # fmt: skip
    if prefix in kinds:
        return kinds[prefix]
    raise ValueError(f"unknown account id {account_id!r}")


def transfer_id(cause: uuid.UUID | str, leg: str) -> uuid.UUID:
    """The id of the transfer that `cause` makes for `leg`; the same cause and leg, the same id."""
    return uuid.uuid5(_TRANSFER_IDS, f"{cause}\x1f{leg}")


class LedgerError(Exception):
    pass


class InsufficientPointsError(LedgerError):
    def __init__(self, account_id: str, available: int, wanted: int) -> None:
        super().__init__(f"{account_id} has {available} points available, {wanted} needed")
        self.account_id = account_id
        self.available = available
        self.wanted = wanted


@dataclass
class Account:
    account_id: str
    kind: AccountKind
    debits_posted: int = 0
    credits_posted: int = 0
    debits_pending: int = 0
    credits_pending: int = 0

    @property
    def posted(self) -> int:
        """Posted credits minus posted debits: what the account holds."""
        return self.credits_posted - self.debits_posted

    @property
    def available(self) -> int:
        """What can still be debited: posted balance minus pending debits (holds)."""
        return self.credits_posted - self.debits_posted - self.debits_pending


@dataclass
class Lot:
    lot_id: uuid.UUID
    account_id: str
    amount: int
    remaining: int
    earned_at: datetime
    expires_at: datetime
    issuer: str | None = None
    """The account that issued these points (a partner's, the card programme's); kept through claims and gifts."""

    def sort_key(self) -> tuple[datetime, datetime, str]:
        return (self.expires_at, self.earned_at, str(self.lot_id))


@dataclass(frozen=True)
class Transfer:
    transfer_id: uuid.UUID
    debit_account: str
    credit_account: str
    amount: int
    reason: str
    cause_event_id: uuid.UUID
    occurred_at: datetime
    memo: Mapping[str, Any] = field(default_factory=dict)
    expires_at: datetime | None = None
    """Expiry of the lot this transfer created on its credit side, if it created one."""


@dataclass(frozen=True)
class LotDebit:
    transfer_id: uuid.UUID
    lot_id: uuid.UUID
    amount: int


@dataclass
class Changes:
    transfers: list[Transfer]
    new_lots: list[Lot]
    lot_remaining: dict[uuid.UUID, int]
    """Existing lots whose `remaining` changed, with the new value."""
    lot_debits: list[LotDebit]
    deltas: dict[str, tuple[int, int, int, int]]
    """Per account: (posted debits, posted credits, pending debits, pending credits) added; pending may shrink."""


class Book:
    """Accounts and lots loaded for one transaction, and the transfers made against them."""

    def __init__(self, accounts: Iterable[Account], lots: Iterable[Lot] = ()) -> None:
        self._accounts = {a.account_id: a for a in accounts}
        self._lots: dict[str, list[Lot]] = {}
        self._loaded_lots: set[uuid.UUID] = set()
        self._touched_lots: set[uuid.UUID] = set()
        for lot in lots:
            self._lots.setdefault(lot.account_id, []).append(lot)
            self._loaded_lots.add(lot.lot_id)
        for held in self._lots.values():
            held.sort(key=Lot.sort_key)
        self._lots_loaded_for = set(self._lots)
        self._transfers: list[Transfer] = []
        self._new_lots: list[Lot] = []
        self._lot_debits: list[LotDebit] = []
        self._deltas: dict[str, list[int]] = {}
        self._seen: set[uuid.UUID] = set()

    def mark_lots_loaded(self, account_ids: Iterable[str]) -> None:
        """Declare that every live lot of these accounts was given, even if they have none."""
        self._lots_loaded_for.update(account_ids)

    def account(self, account_id: str) -> Account:
        try:
            return self._accounts[account_id]
        except KeyError:
            raise LedgerError(f"account {account_id} was not loaded into this transaction") from None

    def has_account(self, account_id: str) -> bool:
        return account_id in self._accounts

    def live_lots(self, account_id: str) -> list[Lot]:
        return [lot for lot in self._lots.get(account_id, []) if lot.remaining > 0]

    def transfer(
        self,
        *,
        transfer_id: uuid.UUID,
        debit: str,
        credit: str,
        amount: int,
        reason: str,
        cause_event_id: uuid.UUID,
        occurred_at: datetime,
        memo: Mapping[str, Any] | None = None,
        lot_expires_at: datetime | None = None,
        lot_earned_at: datetime | None = None,
        lot_issuer: str | None = None,
        prefer_lot: uuid.UUID | None = None,
    ) -> Transfer:
        """Post a transfer. Raises InsufficientPointsError instead of overdrawing."""
        if amount <= 0:
            raise LedgerError(f"a transfer moves a positive amount, not {amount}")
        if debit == credit:
            raise LedgerError("a transfer needs two different accounts")
        if transfer_id in self._seen:
            raise LedgerError(f"transfer {transfer_id} was already made in this transaction")
        source, target = self.account(debit), self.account(credit)
        if source.kind.must_not_overdraw and source.available < amount:
            raise InsufficientPointsError(debit, source.available, amount)
        if target.kind.holds_lots and lot_expires_at is None:
            raise LedgerError(f"a credit to {credit} creates a lot and needs its expiry date")

        made = Transfer(
            transfer_id, debit, credit, amount, reason, cause_event_id, occurred_at, dict(memo or {}),
            lot_expires_at if target.kind.holds_lots else None,
        )  # fmt: skip
        if source.kind.holds_lots:
            self._take_lots(source.account_id, made, prefer_lot)
        if target.kind.holds_lots and lot_expires_at is not None:
            lot = Lot(transfer_id, credit, amount, amount, lot_earned_at or occurred_at, lot_expires_at, lot_issuer)
            self._lots.setdefault(credit, []).append(lot)
            self._lots[credit].sort(key=Lot.sort_key)
            self._new_lots.append(lot)

        source.debits_posted += amount
        target.credits_posted += amount
        self._delta(debit)[0] += amount
        self._delta(credit)[1] += amount
        self._transfers.append(made)
        self._seen.add(transfer_id)
        return made

    def reserve(self, debit: str, credit: str, amount: int) -> None:
        """The pending half of a two-phase transfer (a hold). Raises instead of overdrawing."""
        if amount <= 0:
            raise LedgerError(f"a hold reserves a positive amount, not {amount}")
        source, target = self.account(debit), self.account(credit)
        if source.kind.must_not_overdraw and source.available < amount:
            raise InsufficientPointsError(debit, source.available, amount)
        source.debits_pending += amount
        target.credits_pending += amount
        self._delta(debit)[2] += amount
        self._delta(credit)[3] += amount

    def unreserve(self, debit: str, credit: str, amount: int) -> None:
        """Undo `reserve`: before a hold is posted (as a transfer) or when it is voided."""
        source, target = self.account(debit), self.account(credit)
        if source.debits_pending < amount or target.credits_pending < amount:
            raise LedgerError(f"no pending {amount} between {debit} and {credit} to release")
        source.debits_pending -= amount
        target.credits_pending -= amount
        self._delta(debit)[2] -= amount
        self._delta(credit)[3] -= amount

    def _delta(self, account_id: str) -> list[int]:
        return self._deltas.setdefault(account_id, [0, 0, 0, 0])

    def _take_lots(self, account_id: str, made: Transfer, prefer_lot: uuid.UUID | None) -> None:
        if account_id not in self._lots_loaded_for:
            raise LedgerError(f"the lots of {account_id} were not loaded into this transaction")
        lots = self.live_lots(account_id)
        if prefer_lot is not None:
            lots.sort(key=lambda lot: lot.lot_id != prefer_lot)  # stable: the rest stay by expiry
        wanted = made.amount
        for lot in lots:
            if wanted == 0:
                break
            taken = min(lot.remaining, wanted)
            lot.remaining -= taken
            wanted -= taken
            if lot.lot_id in self._loaded_lots:
                self._touched_lots.add(lot.lot_id)
            self._lot_debits.append(LotDebit(made.transfer_id, lot.lot_id, taken))
        if wanted:
            raise LedgerError(f"the live lots of {account_id} hold less than its balance")

    def add_memo(self, transfer_id: uuid.UUID, memo: Mapping[str, Any]) -> Transfer:
        """Add to the memo of a transfer made in this transaction (before it is written): what else caused it."""
        for index, made in enumerate(self._transfers):
            if made.transfer_id == transfer_id:
                self._transfers[index] = dataclasses.replace(made, memo={**made.memo, **memo})
                return self._transfers[index]
        raise LedgerError(f"transfer {transfer_id} was not made in this transaction")

    def changes(self) -> Changes:
        return Changes(
            transfers=list(self._transfers),
            new_lots=list(self._new_lots),
            lot_remaining={
                lot.lot_id: lot.remaining
                for held in self._lots.values()
                for lot in held
                if lot.lot_id in self._touched_lots
            },
            lot_debits=list(self._lot_debits),
            deltas={account: (d, c, dp, cp) for account, (d, c, dp, cp) in self._deltas.items()},
        )
