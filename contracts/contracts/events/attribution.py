"""Where a purchase or a claim came from: the channel, branch, staff member, campaign and share link behind it.

Every field is optional: a partner, the card system or the member's app sends what it knows. The points
service keeps it with the purchase's (or claim's) ledger transfer and counts it in the attribution report
(services/points/points/domain/attribution.py).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from contracts.envelope import Contract

Channel = Literal["app", "sms", "wechat", "branch", "web", "partner"]
"""How the member was reached or where it acted: the bank's app, SMS, WeChat, a branch, the web, a partner."""

MessageChannel = Literal["app", "sms", "wechat", "branch"]
"""The channels the bank's messaging systems deliver a message on (loyalty.member-messages.v1)."""

AttributionId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][\x21-\x7e]*$",
        description="Printable ASCII without spaces, starting with a letter or digit (so no spreadsheet formula).",
    ),
]
"""A branch, staff member or campaign as the bank's systems name it, e.g. 'sh-pudong', 'ops-2', 'spring-26'."""

ShareCode = Annotated[
    str,
    Field(
        min_length=16,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The code of a share link (POST /v1/share-links on the points service), URL-safe.",
    ),
]


class Attribution(Contract):
    channel: Channel | None = None
    branch_id: AttributionId | None = Field(default=None, description="The bank branch behind it.")
    staff_id: AttributionId | None = Field(default=None, description="The staff member behind it.")
    campaign_ref: AttributionId | None = Field(default=None, description="The campaign it answers.")
    share_code: ShareCode | None = Field(default=None, description="The share link the member came by.")
