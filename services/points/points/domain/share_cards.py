"""Share cards: a member shows a day's points to anyone holding a link, and nothing else.

The rules, in plain words:

- **What a card shows** is chosen by the member and frozen when the card is made: the day's net points, the
  sources that brought them (if the member chose to show them), and a display name (if it gave one). Never its
  balance, its member id or any identifier. A later refund does not change a card already shared.
- **Which day.** One of the last `WINDOW_DAYS` programme days, today included; never a day to come. A day whose
  net is not above 0 has nothing to share.
- **The link** is an unguessable token (`secrets.token_urlsafe(24)`, 192 bits), shown once, to the member, when the
  card is made; only its SHA-256 is kept, so a copy of the database opens no card. A member who lost the link makes
  another card.
- **Revoking** a card makes its link answer as if it never existed (the same answer for both). Revoking twice is
  revoking once. At most `MAX_LIVE_CARDS` cards of a member are live at a time.
- **A display name** is 1 to `MAX_NAME` characters once trimmed, without control characters, line breaks or
  direction overrides (which could make a card read as something else).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import date, timedelta

from points.domain.daily_earnings import WINDOW_DAYS

MAX_LIVE_CARDS = 20
MAX_NAME = 40
TOKEN_BYTES = 24
TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{32}$")
"""secrets.token_urlsafe(24): 24 bytes in unpadded URL-safe base64."""
_DIRECTION_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class ShareCardRefusedError(Exception):
    """A card the rules do not allow; `reason` names the rule for programs, the message says what to do."""

    reason = "refused"


class DayNotShareableError(ShareCardRefusedError):
    reason = "day_out_of_range"

    def __init__(self, day: date, today: date) -> None:
        first = today - timedelta(days=WINDOW_DAYS - 1)
        super().__init__(
            f"{day.isoformat()} cannot be shared: choose a day from {first.isoformat()} to today ({today.isoformat()})"
        )


class NothingToShareError(ShareCardRefusedError):
    reason = "nothing_to_share"

    def __init__(self, day: date, net: int) -> None:
        super().__init__(f"{day.isoformat()} has {net} points net: a card shows a day that earned points")


class BadDisplayNameError(ShareCardRefusedError):
    reason = "bad_display_name"


class TooManyCardsError(ShareCardRefusedError):
    reason = "too_many_cards"

    def __init__(self) -> None:
        super().__init__(f"you have {MAX_LIVE_CARDS} live share cards: revoke one before making another")


class CardIdReusedError(ShareCardRefusedError):
    reason = "card_id_reused"

    def __init__(self) -> None:
        super().__init__("card_id names another card: choose a new card_id for a new card")


def check_day(day: date, today: date) -> None:
    if not today - timedelta(days=WINDOW_DAYS - 1) <= day <= today:
        raise DayNotShareableError(day, today)


def display_name(raw: str | None) -> str | None:
    """The name to show (trimmed), None to show none; raises BadDisplayNameError for a name that cannot be shown."""
    if raw is None:
        return None
    name = unicodedata.normalize("NFC", raw.strip())
    if not 1 <= len(name) <= MAX_NAME:
        raise BadDisplayNameError(f"a display name has 1 to {MAX_NAME} characters (leave it out to show none)")
    for char in name:
        if unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in _DIRECTION_CONTROLS:
            raise BadDisplayNameError(
                f"a display name cannot hold control characters, line breaks or direction marks (U+{ord(char):04X})"
            )
    return name


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_token(text: str) -> bool:
    """Whether a link's token could be one this module makes (anything else is not looked up)."""
    return TOKEN_SHAPE.match(text) is not None
