"""Who may link an identifier to a member, and on what proof (DESIGN.md, Security).

- An identifier (a partner customer reference, a card token) belongs to whoever its owner says:
  the owner issues a one-time link code (contracts.link_codes) to its customer, who links with it.
  Ops may link and unlink without a code; nobody else may.
- A code links one identifier, once, before it expires. Only its hash is known here.
- A wrong code tried for an identifier (unknown, or issued for another one) counts against every
  open code of that identifier; after `max_attempts` of them those codes are dead, and the owner
  must issue a new one. Guessing a 50-bit code in a handful of tries is hopeless.
- A code whose issue has not reached this service yet looks unknown: the refusal says so, and
  that trying again in a moment may work.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Via(StrEnum):
    """The authority a link or unlink rests on."""

    LINK_CODE = "link_code"
    OPS = "ops"


@dataclass(frozen=True)
class LinkCode:
    """An issued code, as stored: its hash, the identifier it is for, and what became of it."""

    code_hash: str
    identifier: str
    issued_by: str
    issued_at: datetime
    expires_at: datetime
    wrong_attempts: int = 0
    used_at: datetime | None = None
    used_by: uuid.UUID | None = None


@dataclass(frozen=True)
class IdentifierEvent:
    """A link or unlink, for the member's history: who did it, when, and on what authority."""

    member_id: uuid.UUID
    identifier: str
    action: str
    """'linked' or 'unlinked'."""
    actor: str
    """The member's id, or the ops user's subject."""
    actor_role: str
    """'member' or 'ops'."""
    via: Via
    code_issued_by: str | None
    occurred_at: datetime


class LinkRefusedError(Exception):
    """A link the caller may not make; `reason` names why for programs, the message says what to do."""

    reason = "link_refused"
    wrong_guess = False
    """A wrong code tried for the identifier: it counts against the identifier's open codes."""


def owner_of(identifier: str) -> str:
    """Who issues link codes for an identifier, in words for the member."""
    if identifier.startswith("card:"):
        return "the bank's card app"
    partner = identifier.split(":")[1] if identifier.startswith("partner:") else "its owner"
    return f"the {partner} app (or its customer service)"


class LinkCodeRequiredError(LinkRefusedError):
    reason = "link_code_required"

    def __init__(self, identifier: str) -> None:
        super().__init__(
            f"linking {identifier} needs a link code: ask {owner_of(identifier)} for a link code, "
            "then send it as `link_code`"
        )


class MalformedCodeError(LinkRefusedError):
    reason = "link_code_malformed"


class LinkCodeNotKnownError(LinkRefusedError):
    reason = "link_code_not_known_yet"
    wrong_guess = True

    def __init__(self, identifier: str) -> None:
        super().__init__(
            "this link code is not known (yet): if it was issued a moment ago, try again in a few seconds; "
            f"otherwise check what you typed, or ask {owner_of(identifier)} for a new link code"
        )


class LinkCodeMismatchError(LinkRefusedError):
    reason = "link_code_for_another_identifier"
    wrong_guess = True

    def __init__(self, identifier: str) -> None:
        super().__init__(
            f"this link code was issued for another identifier, not {identifier}: "
            f"ask {owner_of(identifier)} for a link code for this one"
        )


class LinkCodeUsedError(LinkRefusedError):
    reason = "link_code_used"

    def __init__(self, identifier: str) -> None:
        super().__init__(f"this link code was used already; ask {owner_of(identifier)} for a new link code")


class LinkCodeExhaustedError(LinkRefusedError):
    reason = "link_code_too_many_wrong_attempts"

    def __init__(self, identifier: str, max_attempts: int) -> None:
        super().__init__(
            f"{max_attempts} wrong link codes were tried for {identifier}, so its open codes no longer work; "
            f"ask {owner_of(identifier)} for a new link code"
        )


class LinkCodeExpiredError(LinkRefusedError):
    reason = "link_code_expired"

    def __init__(self, identifier: str, expired_at: datetime) -> None:
        super().__init__(
            f"this link code expired at {expired_at.isoformat()}; ask {owner_of(identifier)} for a new link code"
        )


def check_code(code: LinkCode | None, identifier: str, now: datetime, max_attempts: int) -> LinkCode:
    """The code, if it may link `identifier` now; otherwise the refusal, the most useful reason first."""
    if code is None:
        raise LinkCodeNotKnownError(identifier)
    if code.identifier != identifier:
        raise LinkCodeMismatchError(identifier)
    if code.used_at is not None:
        raise LinkCodeUsedError(identifier)
    if code.wrong_attempts >= max_attempts:
        raise LinkCodeExhaustedError(identifier, max_attempts)
    if code.expires_at <= now:
        raise LinkCodeExpiredError(identifier, code.expires_at)
    return code
