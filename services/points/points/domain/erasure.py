"""Erasure of a member's personal data (GDPR art. 17, PIPL art. 47): irreversible pseudonyms, the ledger intact.

What is personal data here, and what becomes of it:

- the member's display name: replaced by `erased-<hex>`;
- its identifiers, partner customer references (personal data of the partner's customer) and card tokens (tokens
  of the card system, yet still a key that the card system maps back to a person): each replaced everywhere by
  `partner:<partner_id>:erased-<hex>` or `card:erased-<hex>`, and unlinked from the member. The identifier's
  unclaimed account `unclaimed:<identifier>` is renamed with it (accounts, transfers, lots, holds, earnings...),
  so every amount, every transfer and its id, and every balance stay as they were: `make verify` and settlement
  read the same sums. A purchase that later arrives with the old identifier finds no such identifier and waits
  in a fresh unclaimed account, as any identifier nobody linked;
- the names on its share cards: removed (the cards are revoked: they showed its points publicly);
- the messages it wrote or received with gifts and red packets: emptied (free text may name anyone).

What stays: the member id (a random UUID, the key of its points, which remain the member's: an erasure does not
forfeit them), the amounts, dates and reasons of every transfer, lot, hold, order and statement, the partner ids,
and the audit log, whose entries name the member id only. Identifiers that the member once held and that another
member holds now are that member's data and stay; the erased member's history entries keep naming them.

A pseudonym is `erased-` and 32 hex digits of HMAC-SHA256 over the original value with a key drawn at random for
this one erasure and never stored: the same value within one erasure gives the same pseudonym (an identifier and
its unclaimed account stay one), but nobody can recompute it, not even with the list of all possible card tokens
(a plain hash could be reversed by trying them). A value that is a pseudonym already is left alone, so that
erasing twice changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

PREFIX = "erased-"
DIGITS = 32
"""Hex digits of a pseudonym: 128 bits, no collision in practice."""


class Pseudonymiser:
    """Pseudonyms of one erasure: its key lives as long as this object, and is never written anywhere."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key if key is not None else secrets.token_bytes(32)

    def __repr__(self) -> str:  # never show the key
        return "Pseudonymiser(<key hidden>)"

    def pseudonym(self, value: str) -> str:
        digest = hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()
        return PREFIX + digest[:DIGITS]

    def identifier(self, identifier: str) -> str:
        """`partner:<partner_id>:<ref>` keeps its partner id; `card:<token>` becomes `card:erased-...`."""
        kind, _, rest = identifier.partition(":")
        if kind == "partner":
            partner_id, _, ref = rest.partition(":")
            if not partner_id or not ref:
                raise ValueError(f"not a partner identifier: {identifier!r}")
            return f"partner:{partner_id}:{self.pseudonym(identifier)}"
        if kind == "card" and rest:
            return f"card:{self.pseudonym(identifier)}"
        raise ValueError(f"not an identifier: {identifier!r}")


def is_pseudonym(value: str) -> bool:
    return value.startswith(PREFIX) and len(value) == len(PREFIX) + DIGITS


def is_erased_identifier(identifier: str) -> bool:
    """Whether an identifier's value (after its kind and partner) is a pseudonym already."""
    return is_pseudonym(identifier.rsplit(":", 1)[-1])


def partner_of(identifier: str) -> str | None:
    kind, _, rest = identifier.partition(":")
    return rest.partition(":")[0] if kind == "partner" else None


@dataclass(frozen=True)
class Rename:
    original: str
    pseudonym: str


@dataclass(frozen=True)
class ErasurePlan:
    """What one erasure replaces; empty when everything is erased already (a repeated erasure)."""

    display_name: str | None
    """The new display name; None when it is a pseudonym already."""
    identifiers: tuple[Rename, ...] = field(default_factory=tuple)

    @property
    def changes_anything(self) -> bool:
        return self.display_name is not None or bool(self.identifiers)


def plan_erasure(display_name: str, identifiers: list[str], pseudonyms: Pseudonymiser) -> ErasurePlan:
    """The pseudonyms for the member's name and identifiers, skipping what an earlier erasure replaced."""
    name = None if is_pseudonym(display_name) else pseudonyms.pseudonym(f"name\x1f{display_name}")
    renames = tuple(
        Rename(i, pseudonyms.identifier(i)) for i in sorted(set(identifiers)) if not is_erased_identifier(i)
    )
    return ErasurePlan(name, renames)


def chunks(items: list[T], size: int) -> list[list[T]]:
    """`items` in runs of at most `size`; one empty run for no items (an event part still goes out)."""
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


CONFIRMATION = "ERASE"
"""What the caller types to confirm an erasure (API field `confirm`, the wallet's and console's forms)."""


class ErasureNotConfirmedError(Exception):
    def __init__(self) -> None:
        super().__init__(f'an erasure cannot be undone: send "confirm": "{CONFIRMATION}" to go ahead')
