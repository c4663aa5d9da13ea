"""Targeted messages without a database: message ids, the channel chosen, the words, callbacks in any order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from points.domain.messages import (
    Callback,
    CallbackEvent,
    ChannelRecord,
    Reported,
    choose_channel,
    fold_callbacks,
    message_id,
    message_text,
)

ACTIVITY, MEMBER, OTHER = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_an_activity_messages_a_member_under_one_id_forever():
    assert message_id(ACTIVITY, MEMBER) == message_id(ACTIVITY, MEMBER)
    assert len({message_id(ACTIVITY, MEMBER), message_id(ACTIVITY, OTHER), message_id(OTHER, MEMBER)}) == 3


def test_the_members_preference_comes_first():
    history = [ChannelRecord("sms", 10, 10)]
    assert choose_channel("wechat", history, "app").channel == "wechat"
    assert choose_channel("wechat", history, "app").chosen_by == "preference"


def test_else_the_channel_it_answered_best_exactly():
    # 2 of 3 (0.667) beats 3 of 5 (0.6); floats would not be needed to see it, Fractions make it exact
    history = [ChannelRecord("sms", 5, 3), ChannelRecord("wechat", 3, 2), ChannelRecord("app", 4, 0)]
    choice = choose_channel(None, history, "app")
    assert (choice.channel, choice.chosen_by) == ("wechat", "history")


@pytest.mark.parametrize(
    "history",
    [
        [],
        [ChannelRecord("sms", 4, 0), ChannelRecord("wechat", 2, 0)],  # never answered: nothing is best
        [ChannelRecord("sms", 4, 2), ChannelRecord("wechat", 2, 1)],  # a tie at one half
    ],
)
def test_without_one_best_channel_the_programme_default(history):
    choice = choose_channel(None, history, "branch")
    assert (choice.channel, choice.chosen_by) == ("branch", "default")


def test_an_unknown_default_channel_is_a_setup_error():
    with pytest.raises(ValueError, match="the default channel must be one of app, sms, wechat, branch"):
        choose_channel(None, [], "pigeon")


def test_the_words_say_what_the_activity_offers_and_nothing_of_the_member():
    ends = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
    text = message_text("Flyers shop double", "multiplier", {"multiplier": "2", "scope": {"partner_id": "skymall"}},
                        ends)  # fmt: skip
    assert text.template == "activity_multiplier"
    assert text.title == "Flyers shop double"
    assert text.body == "Earn 2x points at skymall until 2026-11-27 00:00 UTC."
    claim = message_text("Give-away", "limited_claim", {"claim_points": 100}, None)
    assert claim.body == "Claim 100 points while they last."


def test_a_click_before_its_delivery_implies_open_and_delivery_and_the_earliest_times_stay():
    folded = fold_callbacks([
        Callback(MEMBER, CallbackEvent.CLICKED, at(10)),
        Callback(MEMBER, CallbackEvent.DELIVERED, at(2)),
        Callback(MEMBER, CallbackEvent.OPENED, at(12)),  # a late copy says later: the earliest open (the click) stays
        Callback(OTHER, CallbackEvent.FAILED, at(1)),
        Callback(OTHER, CallbackEvent.DELIVERED, at(3)),
    ])  # fmt: skip
    assert folded[MEMBER] == Reported(delivered_at=at(2), opened_at=at(10), clicked_at=at(10))
    assert folded[MEMBER].state == "clicked"
    assert folded[OTHER] == Reported(delivered_at=at(3), failed_at=at(1))
    assert folded[OTHER].state == "delivered", "a delivery reported after a failure is the furthest step"


def test_the_order_of_callbacks_never_matters_and_again_changes_nothing():
    events = [
        Callback(MEMBER, CallbackEvent.OPENED, at(5)),
        Callback(MEMBER, CallbackEvent.DELIVERED, at(7)),
        Callback(MEMBER, CallbackEvent.CLICKED, at(9)),
    ]
    forward, backward = fold_callbacks(events), fold_callbacks(reversed(events))
    assert forward == backward == {MEMBER: Reported(delivered_at=at(5), opened_at=at(5), clicked_at=at(9))}
    twice = fold_callbacks([*events, *events])
    assert twice == forward
    r = forward[MEMBER]
    assert r.delivered_at <= r.opened_at <= r.clicked_at
    assert r.merged(r) == r
