"""Offer revisions and their events, without a database."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest

from contracts.events.offers import OfferPublished, OfferWithdrawn
from contracts.topics import OFFERS
from partners.domain.offers import (
    InvalidOfferError,
    OfferEndedError,
    OfferNotFoundError,
    OfferTerms,
    event_id_for,
    publish,
    withdraw,
)

T0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
TERMS = OfferTerms(
    kind="voucher",
    title="100 CNY voucher",
    description="",
    category="vouchers",
    price_points=10_000,
    stock=50,
    valid_from=T0 - timedelta(days=1),
    valid_until=T0 + timedelta(days=30),
)


def test_a_new_offer_is_revision_1_and_is_published_with_a_derived_event_id():
    change = publish(None, "skymall", "v-100", TERMS, T0)
    assert change.created
    assert change.offer.revision == 1
    assert isinstance(change.event, OfferPublished)
    assert change.event.event_id == event_id_for("skymall", "v-100", 1)
    assert change.event.payload.price_points == 10_000
    assert change.event.occurred_at == T0
    assert OFFERS.decode(change.event.model_dump_json()) == change.event


def test_event_ids_differ_by_partner_offer_and_revision_and_never_change():
    ids = {event_id_for(p, o, r) for p in ("a1", "b2") for o in ("x", "y") for r in (1, 2)}
    assert len(ids) == 8
    # Pinned: a changed namespace would give events already published new ids, and consumers would apply them twice.
    assert str(event_id_for("skymall", "v-100", 1)) == "db921bfd-414b-504a-8e22-3722ac12ae9d"


def test_changing_an_offer_bumps_its_revision_and_the_same_terms_change_nothing():
    first = publish(None, "skymall", "v-100", TERMS, T0).offer
    cheaper = publish(first, "skymall", "v-100", dataclasses.replace(TERMS, price_points=8_000), T0)
    assert not cheaper.created
    assert cheaper.offer.revision == 2
    assert isinstance(cheaper.event, OfferPublished)
    assert cheaper.event.payload.revision == 2
    assert cheaper.event.event_id == event_id_for("skymall", "v-100", 2)

    again = publish(cheaper.offer, "skymall", "v-100", dataclasses.replace(TERMS, price_points=8_000), T0)
    assert again.event is None
    assert again.offer == cheaper.offer


def test_the_same_instant_in_another_time_zone_is_the_same_terms():
    first = publish(None, "skymall", "v-100", TERMS, T0).offer
    beijing = timezone(timedelta(hours=8))
    same = dataclasses.replace(
        TERMS, valid_from=TERMS.valid_from.astimezone(beijing), valid_until=TERMS.valid_until.astimezone(beijing)
    )
    assert publish(first, "skymall", "v-100", same, T0).event is None


def test_withdrawal_is_a_new_revision_and_withdrawing_again_changes_nothing():
    first = publish(None, "skymall", "v-100", TERMS, T0).offer
    gone = withdraw(first, "skymall", "v-100", T0 + timedelta(hours=1))
    assert gone.offer.revision == 2
    assert gone.offer.withdrawn_at == T0 + timedelta(hours=1)
    assert isinstance(gone.event, OfferWithdrawn)
    assert gone.event.payload.revision == 2
    assert gone.event.event_id == event_id_for("skymall", "v-100", 2)
    assert withdraw(gone.offer, "skymall", "v-100", T0).event is None


def test_publishing_a_withdrawn_offer_again_puts_it_back_on_sale():
    gone = withdraw(publish(None, "skymall", "v-100", TERMS, T0).offer, "skymall", "v-100", T0).offer
    back = publish(gone, "skymall", "v-100", TERMS, T0)
    assert back.offer.revision == 3
    assert back.offer.withdrawn_at is None
    assert isinstance(back.event, OfferPublished)
    assert not back.created


def test_withdrawing_an_unknown_offer_is_refused():
    with pytest.raises(OfferNotFoundError, match="has no offer 'v-9'"):
        withdraw(None, "skymall", "v-9", T0)


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"valid_until": T0 - timedelta(days=1)}, "body", "valid_until must be after valid_from"),
        ({"kind": "product"}, "body", "a product offer needs a fulfilment_url"),
        ({"kind": "discount"}, "body", "a discount offer needs a fulfilment_url"),
        ({"price_points": 0}, "price_points", "greater than 0"),
        ({"stock": -1}, "stock", "greater than or equal to 0"),
        ({"kind": "cash"}, "kind", "'product', 'voucher' or 'discount'"),
        ({"fulfilment_url": "ftp://skymall.example/fulfil"}, "fulfilment_url", "URL scheme should be 'http'"),
        ({"fulfilment_url": "https://skymall.example/" + "x" * 2048}, "fulfilment_url", "at most 2048"),
    ],
)
def test_an_offer_that_breaks_the_contract_is_refused_with_the_reason(changes, field, reason):
    with pytest.raises(InvalidOfferError, match=reason) as refused:
        publish(None, "skymall", "v-100", dataclasses.replace(TERMS, **changes), T0)
    assert refused.value.field == field


def test_a_product_with_a_fulfilment_url_is_accepted_and_the_url_normalised():
    terms = dataclasses.replace(TERMS, kind="product", fulfilment_url="https://SkyMall.example")
    change = publish(None, "skymall", "p-1", terms, T0)
    assert change.offer.terms.fulfilment_url == "https://skymall.example/"


def test_an_offer_that_already_ended_is_refused():
    late = dataclasses.replace(TERMS, valid_until=T0)
    with pytest.raises(OfferEndedError, match="to take an offer off sale, DELETE it") as refused:
        publish(None, "skymall", "v-100", late, T0)
    assert refused.value.field == "valid_until"
