"""Identifier formats shared by every contract."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

PartnerId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", description="Partner slug, e.g. 'skyair'.")]
ExternalRef = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
"""A reference chosen outside the programme (order id, customer number): printable ASCII, no spaces."""
CardToken = Annotated[str, Field(pattern=r"^tok_[A-Za-z0-9]{8,64}$", description="Tokenised card number.")]
MerchantCategoryCode = Annotated[str, Field(pattern=r"^[0-9]{4}$", description="ISO 18245 merchant category code.")]
Category = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$", description="Partner's product category.")]
TierCode = Annotated[
    str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$", description="A tier of the programme's tier set, e.g. 'gold'.")
]
