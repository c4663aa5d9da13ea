"""Facts that the bank's card system streams: card purchases and their reversals."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from contracts.envelope import Contract, Event
from contracts.events.attribution import Attribution
from contracts.ids import CardToken, ExternalRef, MerchantCategoryCode
from contracts.money import Money


class CardPurchasePayload(Contract):
    card_token: CardToken
    transaction_id: ExternalRef = Field(description="The card system's id for this transaction.")
    amount: Money
    merchant_category_code: MerchantCategoryCode
    merchant_name: str = Field(min_length=1, max_length=128)
    attribution: Attribution | None = Field(
        default=None, description="Channel, branch, staff member, campaign or share link the card system knows of."
    )


class CardReversalPayload(Contract):
    card_token: CardToken
    transaction_id: ExternalRef = Field(description="The card system's id for the reversal itself.")
    original_transaction_id: ExternalRef = Field(description="The purchase being reversed.")
    amount: Money


class CardPurchasePosted(Event):
    """The card system posted a purchase made with the bank's card."""

    type: Literal["CardPurchasePosted"] = "CardPurchasePosted"
    version: Literal[1] = 1
    payload: CardPurchasePayload


class CardReversalPosted(Event):
    """The card system reversed an earlier purchase, in part or in full."""

    type: Literal["CardReversalPosted"] = "CardReversalPosted"
    version: Literal[1] = 1
    payload: CardReversalPayload
