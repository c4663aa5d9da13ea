"""What each member earned on a finished day of the programme, for pushes ("you earned 1,280 points yesterday")."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import Field

from contracts.envelope import Contract, Event


class PointsBySource(Contract):
    """Net points (earned minus taken back) by where they came from; negative when refunds outweighed earnings."""

    partner: int = Field(description="Purchases at alliance partners (and what links brought of them).")
    card: int = Field(description="Purchases with the bank's card.")
    activity: int = Field(description="Reward activities' bonuses and claimed give-aways.")
    gift: int = Field(description="Gifts received from other members.")
    tier: int = Field(description="Tier benefits.")
    other: int = Field(description="Anything else that credited the member (red packets, for instance).")


class DailyEarningsPayload(Contract):
    member_id: uuid.UUID
    date: dt.date = Field(description="The programme's calendar day, in `time_zone`.")
    time_zone: str = Field(min_length=1, max_length=64, description="The IANA zone the programme's days are in.")
    earned: int = Field(ge=0, description="Points credited to the member that day (when they reached it).")
    taken_back: int = Field(ge=0, description="Points that refunds and reversals posted that day took back.")
    net: int = Field(description="earned - taken_back.")
    by_source: PointsBySource
    month_to_date: int = Field(description="Net points of the calendar month up to the end of the day.")
    lifetime: int = Field(description="Net points since the member joined, up to the end of the day.")


class DailyEarningsSummarised(Event):
    """A finished day's earnings of one member; one per member and day with earnings (the event id says which)."""

    type: Literal["DailyEarningsSummarised"] = "DailyEarningsSummarised"
    version: Literal[1] = 1
    payload: DailyEarningsPayload
