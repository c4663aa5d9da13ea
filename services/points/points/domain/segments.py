"""Member segments: rules over what the ledger already knows about members' purchases.

A segment is a list of conditions that a member must all meet (`{"all": [...]}`, AND), judged as
of a moment `as_of`:

- a *purchase* is an earning (a partner purchase or a card transaction) that refunds have not
  taken back entirely; its *net spend* is its amount minus what refunds took back (refunds known
  at evaluation time);
- a purchase belongs to the member its identifier is linked to now; purchases of identifiers
  nobody linked belong to nobody;
- a window of N days is the half-open interval (as_of - N days, as_of]: a purchase exactly N days
  before `as_of` is outside, one at `as_of` is inside, one after `as_of` is ignored.

Conditions:

- `spend`: net spend in `currency` within the window is at least `min_minor` (optionally only at
  `partner_id`, in `category`, through `channel` "partner" or "card", or at card merchant category `mcc`);
- `partners_used`: the member bought at `min` or more distinct partners within the window;
- `card_usage`: the member made `min_transactions` or more card purchases within the window;
- `last_activity`: the member bought something within the last `within_days`;
- `inactive`: the member bought nothing within the last `for_days` (members who never bought included);
- `members`: the member is one of `member_ids` (at most 10,000 over the whole segment);
- `tier`: the member's tier as of `as_of` is one of `codes` (points/domain/tiers.py); a member whose tier never
  changed holds the base tier of the tier set in force then.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

from contracts.ids import Category, MerchantCategoryCode, PartnerId, TierCode
from contracts.money import Currency

MAX_WINDOW_DAYS = 730
MAX_CONDITIONS = 20
MAX_MEMBER_IDS = 10_000
MAX_MINOR = 10**15

Days = Annotated[StrictInt, Field(ge=1, le=MAX_WINDOW_DAYS, description=f"Whole days, 1 to {MAX_WINDOW_DAYS}.")]
Channel = Literal["partner", "card"]


class _Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Spend(_Condition):
    """Net spend in one currency within the window is at least `min_minor`."""

    kind: Literal["spend"] = "spend"
    window_days: Days
    min_minor: Annotated[StrictInt, Field(ge=0, le=MAX_MINOR, description="Minor units, e.g. 50000 for 500.00.")]
    currency: Currency
    partner_id: PartnerId | None = Field(default=None, description="Only purchases at this partner.")
    category: Category | None = Field(default=None, description="Only purchases in this partner category.")
    channel: Channel | None = Field(default=None, description="Only partner purchases, or only card transactions.")
    mcc: MerchantCategoryCode | None = Field(default=None, description="Only card spend at this merchant category.")

    @model_validator(mode="after")
    def _consistent(self) -> Spend:
        if self.channel == "card" and (self.partner_id is not None or self.category is not None):
            raise ValueError("card spend has no partner_id or category: drop them, or use channel 'partner'")
        if self.channel == "partner" and self.mcc is not None:
            raise ValueError("partner purchases have no mcc: drop it, or use channel 'card'")
        return self


class PartnersUsed(_Condition):
    """The member bought at `min` or more distinct partners within the window."""

    kind: Literal["partners_used"] = "partners_used"
    window_days: Days
    min: Annotated[StrictInt, Field(ge=1, le=10_000)]


class CardUsage(_Condition):
    """The member made `min_transactions` or more card purchases within the window."""

    kind: Literal["card_usage"] = "card_usage"
    window_days: Days
    min_transactions: Annotated[StrictInt, Field(ge=1, le=1_000_000)]


class LastActivity(_Condition):
    """The member bought something within the last `within_days`."""

    kind: Literal["last_activity"] = "last_activity"
    within_days: Days


class Inactive(_Condition):
    """The member bought nothing within the last `for_days`; members who never bought are inactive."""

    kind: Literal["inactive"] = "inactive"
    for_days: Days


class MemberList(_Condition):
    """The member is one of a list, e.g. a campaign's invitees."""

    kind: Literal["members"] = "members"
    member_ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=MAX_MEMBER_IDS)]


class TierIs(_Condition):
    """The member's tier is one of `codes`, e.g. a segment of the programme's best members."""

    kind: Literal["tier"] = "tier"
    codes: Annotated[list[TierCode], Field(min_length=1, max_length=10, description="Tier codes, e.g. 'gold'.")]


Condition = Annotated[
    Spend | PartnersUsed | CardUsage | LastActivity | Inactive | MemberList | TierIs, Field(discriminator="kind")
]


class SegmentRules(BaseModel):
    """Conditions a member must all meet (AND)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "all": [
                        {"kind": "spend", "window_days": 90, "min_minor": 200000, "currency": "CNY", "mcc": "4511"},
                        {"kind": "last_activity", "within_days": 30},
                    ]
                }
            ]
        },
    )

    all: Annotated[list[Condition], Field(min_length=1, max_length=MAX_CONDITIONS)]

    @model_validator(mode="after")
    def _few_enough_member_ids(self) -> SegmentRules:
        listed = sum(len(c.member_ids) for c in self.all if isinstance(c, MemberList))
        if listed > MAX_MEMBER_IDS:
            raise ValueError(f"the segment lists {listed} member ids; at most {MAX_MEMBER_IDS} in all")
        return self

    @property
    def widest_window_days(self) -> int | None:
        """The longest look-back of any condition; None when no condition reads purchases."""
        days = [d for d in map(window_days, self.all) if d is not None]
        return max(days) if days else None

    def to_json(self) -> dict[str, Any]:
        """The rules as stored and answered: JSON values only, absent options left out."""
        return self.model_dump(mode="json", exclude_none=True)


def window_days(condition: Condition) -> int | None:
    """How many days of purchases a condition looks back over; None when it reads no purchases."""
    if isinstance(condition, Spend | PartnersUsed | CardUsage):
        return condition.window_days
    if isinstance(condition, LastActivity):
        return condition.within_days
    if isinstance(condition, Inactive):
        return condition.for_days
    return None


def window_since(condition: Condition, as_of: datetime) -> datetime | None:
    """Where a condition's window starts (exclusive) for an evaluation at `as_of`."""
    days = window_days(condition)
    return None if days is None else as_of - timedelta(days=days)


class InvalidSegmentRulesError(ValueError):
    """Rules that do not describe a segment; the message names each problem and where it is."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "segment rules are invalid: " + "; ".join(problems) + ". Rules look like "
            '{"all": [{"kind": "spend", "window_days": 90, "min_minor": 50000, "currency": "CNY"}]}; '
            "kinds: spend, partners_used, card_usage, last_activity, inactive, members, tier"
        )
        self.problems = problems


def describe(error: ValidationError) -> list[str]:
    """Each pydantic problem as `where: what`, e.g. `all.0.spend.window_days: ... less than or equal to 730`."""
    return [f"{'.'.join(str(p) for p in e['loc']) or 'rules'}: {e['msg']}" for e in error.errors()]


def segment_rules_from_json(raw: object) -> SegmentRules:
    """Parse rules given by ops or stored in `segments.rules` (decoded, or the JSON text asyncpg
    answers for a jsonb column); raises InvalidSegmentRulesError."""
    try:
        if isinstance(raw, str | bytes | bytearray):
            return SegmentRules.model_validate_json(raw)
        return SegmentRules.model_validate(raw)
    except ValidationError as error:
        raise InvalidSegmentRulesError(describe(error)) from None
