"""Member prices: each member its own price, tier-only offers, and an order charged the price it was shown."""

from __future__ import annotations

import uuid

import pytest

from redemption.domain.prices import EVERYTHING, PriceChangedError, Reader, charge, open_to, unit_price

PRICES = {"gold": 3_000, "platinum": 2_500}


@pytest.mark.parametrize(("tier", "expected"), [("gold", 3_000), ("platinum", 2_500), ("silver", 4_000), (None, 4_000)])
def test_a_member_pays_its_tiers_price_and_any_other_member_the_price_for_everyone(tier, expected):
    assert unit_price(4_000, PRICES, tier) == expected


def test_a_tier_only_offer_is_open_to_its_tiers_and_to_ops_alone():
    assert open_to(("gold", "platinum"), Reader("gold"))
    assert not open_to(("gold", "platinum"), Reader("silver"))
    assert not open_to(("gold",), Reader(None))
    assert open_to(("gold",), EVERYTHING)
    assert open_to((), Reader(None))


def test_a_member_pays_the_lowest_price_that_applies_to_it_its_tiers_or_its_segments():
    flyers, students = uuid.uuid4(), uuid.uuid4()
    by_segment = {str(flyers): 3_500, str(students): 2_000}
    assert unit_price(4_000, PRICES, "gold", by_segment, [flyers]) == 3_000, "gold beats flyers"
    assert unit_price(4_000, PRICES, "gold", by_segment, [flyers, students]) == 2_000
    assert unit_price(4_000, PRICES, None, by_segment, [flyers]) == 3_500
    assert unit_price(4_000, PRICES, "silver", by_segment, [uuid.uuid4()]) == 4_000, "no price applies"


def test_an_order_is_charged_the_price_shown_or_refused_when_it_moved():
    assert charge(4_000, PRICES, Reader("gold"), expected=3_000) == 3_000
    assert charge(4_000, PRICES, Reader("gold"), expected=None) == 3_000
    with pytest.raises(PriceChangedError, match="3000 points now, not 4000") as refused:
        charge(4_000, PRICES, Reader("gold"), expected=4_000)
    assert refused.value.now == 3_000
