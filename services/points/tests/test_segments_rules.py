"""Segment rules without a database: what is accepted, what is refused and why, and the SQL they compile to."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from points.adapters.segments import compile_members
from points.domain.segments import (
    MAX_MEMBER_IDS,
    CardUsage,
    Inactive,
    InvalidSegmentRulesError,
    LastActivity,
    MemberList,
    PartnersUsed,
    SegmentRules,
    Spend,
    segment_rules_from_json,
    window_since,
)

AS_OF = datetime(2026, 6, 1, 12, tzinfo=UTC)
EVERY_KIND = {
    "all": [
        {
            "kind": "spend",
            "window_days": 90,
            "min_minor": 50_000,
            "currency": "CNY",
            "partner_id": "skymall",
            "category": "electronics",
            "channel": "partner",
        },
        {"kind": "spend", "window_days": 30, "min_minor": 0, "currency": "USD", "channel": "card", "mcc": "4511"},
        {"kind": "partners_used", "window_days": 180, "min": 2},
        {"kind": "card_usage", "window_days": 30, "min_transactions": 5},
        {"kind": "last_activity", "within_days": 14},
        {"kind": "inactive", "for_days": 730},
        {"kind": "members", "member_ids": [str(uuid.UUID(int=1)), str(uuid.UUID(int=2))]},
    ]
}


def refusal(raw: object) -> InvalidSegmentRulesError:
    with pytest.raises(InvalidSegmentRulesError) as refused:
        segment_rules_from_json(raw)
    return refused.value


def spend(**overrides: object) -> dict[str, object]:
    return {"kind": "spend", "window_days": 30, "min_minor": 100, "currency": "CNY", **overrides}


def test_every_kind_of_condition_is_parsed_into_its_type():
    rules = segment_rules_from_json(EVERY_KIND)

    assert [type(c) for c in rules.all] == [Spend, Spend, PartnersUsed, CardUsage, LastActivity, Inactive, MemberList]
    first = rules.all[0]
    assert isinstance(first, Spend)
    assert (first.partner_id, first.category, first.channel, first.min_minor) == (
        "skymall",
        "electronics",
        "partner",
        50_000,
    )
    assert rules.all[6] == MemberList(member_ids=[uuid.UUID(int=1), uuid.UUID(int=2)])
    assert rules.widest_window_days == 730


def test_rules_survive_storage_as_json_and_as_the_text_a_jsonb_column_answers():
    rules = segment_rules_from_json(EVERY_KIND)

    stored = rules.to_json()

    assert stored == EVERY_KIND
    assert segment_rules_from_json(stored) == rules
    assert segment_rules_from_json(json.dumps(stored)) == rules


def test_absent_options_are_left_out_of_the_stored_rules():
    assert segment_rules_from_json({"all": [spend()]}).to_json() == {"all": [spend()]}


def test_a_window_ends_at_as_of_and_starts_its_length_before():
    assert window_since(LastActivity(within_days=7), AS_OF) == AS_OF - timedelta(days=7)
    assert window_since(MemberList(member_ids=[uuid.UUID(int=1)]), AS_OF) is None
    assert SegmentRules(all=[MemberList(member_ids=[uuid.UUID(int=1)])]).widest_window_days is None


@pytest.mark.parametrize(
    ("raw", "where", "why"),
    [
        ({"all": []}, "all", "at least 1 item"),
        ({"any": [spend()]}, "any", "Extra inputs are not permitted"),
        ([spend()], "rules", "valid dictionary"),
        ("{not json", "rules", "Invalid JSON"),
        ({"all": [{"kind": "vip"}]}, "all.0", "'vip' found using 'kind' does not match"),
        ({"all": [{"window_days": 3}]}, "all.0", "discriminator 'kind'"),
        ({"all": [spend(window_days=0)]}, "all.0.spend.window_days", "greater than or equal to 1"),
        ({"all": [spend(window_days=731)]}, "all.0.spend.window_days", "less than or equal to 730"),
        ({"all": [spend(window_days=True)]}, "all.0.spend.window_days", "valid integer"),
        ({"all": [spend(window_days="30")]}, "all.0.spend.window_days", "valid integer"),
        ({"all": [spend(window_days=30.5)]}, "all.0.spend.window_days", "valid integer"),
        ({"all": [spend(min_minor=-1)]}, "all.0.spend.min_minor", "greater than or equal to 0"),
        ({"all": [spend(currency="XXX")]}, "all.0.spend.currency", "unknown currency 'XXX'; use one of"),
        ({"all": [spend(currency="cny")]}, "all.0.spend.currency", "pattern"),
        ({"all": [spend(channel="atm")]}, "all.0.spend.channel", "'partner' or 'card'"),
        ({"all": [spend(partner_id="Sky Mall")]}, "all.0.spend.partner_id", "pattern"),
        ({"all": [spend(mcc="45")]}, "all.0.spend.mcc", "pattern"),
        ({"all": [spend(colour="red")]}, "all.0.spend.colour", "Extra inputs are not permitted"),
        ({"all": [spend(channel="card", partner_id="skymall")]}, "all.0.spend", "card spend has no partner_id"),
        ({"all": [spend(channel="partner", mcc="4511")]}, "all.0.spend", "partner purchases have no mcc"),
        ({"all": [{"kind": "partners_used", "window_days": 30, "min": 0}]}, "all.0.partners_used.min", "greater than"),
        ({"all": [{"kind": "card_usage", "window_days": 30}]}, "all.0.card_usage.min_transactions", "required"),
        ({"all": [{"kind": "inactive", "for_days": 1000}]}, "all.0.inactive.for_days", "less than or equal"),
        ({"all": [{"kind": "last_activity", "within_days": -1}]}, "all.0.last_activity.within_days", "greater"),
        ({"all": [{"kind": "members", "member_ids": []}]}, "all.0.members.member_ids", "at least 1 item"),
        ({"all": [{"kind": "members", "member_ids": ["ada"]}]}, "all.0.members.member_ids.0", "valid UUID"),
        ({"all": [spend()] * 21}, "all", "at most 20 items"),
    ],
)
def test_bad_rules_are_refused_with_where_and_why(raw, where, why):
    refused = refusal(raw)

    [problem] = [p for p in refused.problems if p.startswith(f"{where}: ")]
    assert why in problem
    message = str(refused)
    assert message.startswith("segment rules are invalid: ")
    assert f"{problem}. Rules look like " in message or f"{problem}; " in message
    assert "kinds: spend, partners_used, card_usage, last_activity, inactive, members" in message


def test_every_bad_condition_is_reported_and_nothing_else():
    refused = refusal({"all": [spend(), spend(window_days=0), spend(min_minor=-5)]})

    assert [p.split(": ")[0] for p in refused.problems] == ["all.1.spend.window_days", "all.2.spend.min_minor"]


def test_at_most_ten_thousand_member_ids_in_the_whole_segment():
    ids = [str(uuid.UUID(int=n)) for n in range(1, MAX_MEMBER_IDS + 1)]
    assert len(segment_rules_from_json({"all": [{"kind": "members", "member_ids": ids}]}).all) == 1

    too_many_in_one = refusal({"all": [{"kind": "members", "member_ids": [*ids, str(uuid.UUID(int=0))]}]})
    split_over_two = refusal(
        {"all": [{"kind": "members", "member_ids": ids[:6000]}, {"kind": "members", "member_ids": ids[4000:]}]}
    )

    assert too_many_in_one.problems == [
        "all.0.members.member_ids: List should have at most 10000 items after validation, not 10001"
    ]
    assert split_over_two.problems == ["rules: Value error, the segment lists 12000 member ids; at most 10000 in all"]


def test_compiled_sql_holds_no_value_of_the_rules_only_numbered_parameters():
    rules = segment_rules_from_json(EVERY_KIND)
    params: list[object] = ["outer"]

    sql = compile_members(rules, AS_OF, params)

    assert params[0] == "outer"
    for value in ("skymall", "electronics", "4511", "CNY", "USD", "50000", "00000000-0000-0000-0000-000000000001"):
        assert value not in sql
    numbers = {int(n) for n in re.findall(r"\$(\d+)", sql)}
    assert numbers == set(range(2, len(params) + 1))
    assert "skymall" in params
    assert AS_OF in params
    assert AS_OF - timedelta(days=730) in params


def test_no_rules_compile_to_every_member():
    params: list[object] = []

    assert compile_members(None, AS_OF, params) == "SELECT m.member_id FROM members m"
    assert params == []
