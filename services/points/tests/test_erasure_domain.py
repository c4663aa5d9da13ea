"""The pseudonymiser of erasures (points/domain/erasure.py): irreversible, different per erasure, stable within one."""

import re

import pytest

from points.domain.erasure import (
    CONFIRMATION,
    Pseudonymiser,
    chunks,
    is_erased_identifier,
    is_pseudonym,
    partner_of,
    plan_erasure,
)

PSEUDONYM = re.compile(r"^erased-[0-9a-f]{32}$")


def test_a_pseudonym_keeps_nothing_of_the_original() -> None:
    value = "Wang Xiaoming"
    pseudonym = Pseudonymiser().pseudonym(value)
    assert PSEUDONYM.match(pseudonym)
    assert "Wang" not in pseudonym
    assert "xiaoming" not in pseudonym.lower()


def test_two_erasures_give_different_pseudonyms_to_one_value() -> None:
    assert Pseudonymiser().pseudonym("cust-42") != Pseudonymiser().pseudonym("cust-42")


def test_one_erasure_gives_one_value_one_pseudonym() -> None:
    pseudonyms = Pseudonymiser()
    assert pseudonyms.identifier("partner:skymall:cust-42") == pseudonyms.identifier("partner:skymall:cust-42")
    assert pseudonyms.identifier("partner:skymall:cust-42") != pseudonyms.identifier("partner:skymall:cust-43")


def test_a_pseudonym_is_not_a_plain_hash_that_guessing_reverses() -> None:
    import hashlib

    value = "card:tok_ABCDEFGH1234"
    plain = hashlib.sha256(value.encode()).hexdigest()
    assert Pseudonymiser().identifier(value).rsplit("-", 1)[-1] not in plain


def test_the_key_is_never_shown() -> None:
    key = b"k" * 32
    assert "kkkk" not in repr(Pseudonymiser(key))
    assert "kkkk" not in str(vars(Pseudonymiser(key)).keys())


def test_identifiers_keep_their_kind_and_partner_only() -> None:
    pseudonyms = Pseudonymiser()
    partner = pseudonyms.identifier("partner:skymall:cust-42")
    card = pseudonyms.identifier("card:tok_ABCDEFGH1234")
    assert partner.startswith("partner:skymall:erased-")
    assert "cust-42" not in partner
    assert card.startswith("card:erased-")
    assert "tok_" not in card
    assert partner_of(partner) == "skymall"
    assert partner_of(card) is None
    assert is_erased_identifier(partner)
    assert is_erased_identifier(card)
    assert not is_erased_identifier("partner:skymall:cust-42")


@pytest.mark.parametrize("bad", ["partner:skymall", "partner::x", "card:", "email:someone@example.com"])
def test_what_is_not_an_identifier_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="identifier"):
        Pseudonymiser().identifier(bad)


def test_a_plan_replaces_the_name_and_every_identifier() -> None:
    plan = plan_erasure("Li Lei", ["partner:skymall:cust-42", "card:tok_ABCDEFGH1234"], Pseudonymiser())
    assert plan.changes_anything
    assert plan.display_name is not None
    assert is_pseudonym(plan.display_name)
    assert [r.original for r in plan.identifiers] == ["card:tok_ABCDEFGH1234", "partner:skymall:cust-42"]
    assert all(is_erased_identifier(r.pseudonym) for r in plan.identifiers)


def test_a_second_plan_over_erased_values_changes_nothing() -> None:
    first = plan_erasure("Li Lei", ["partner:skymall:cust-42"], Pseudonymiser())
    assert first.display_name is not None
    again = plan_erasure(first.display_name, [first.identifiers[0].pseudonym], Pseudonymiser())
    assert not again.changes_anything


def test_an_identifier_linked_after_an_erasure_is_erased_by_the_next() -> None:
    first = plan_erasure("Li Lei", [], Pseudonymiser())
    assert first.display_name is not None
    again = plan_erasure(first.display_name, ["card:tok_NEWCARD0001"], Pseudonymiser())
    assert again.display_name is None
    assert [r.original for r in again.identifiers] == ["card:tok_NEWCARD0001"]


def test_parts_of_at_most_the_size_and_one_for_nothing() -> None:
    assert chunks([1, 2, 3], 2) == [[1, 2], [3]]
    assert chunks([], 2) == [[]]


def test_the_confirmation_is_a_word_to_type() -> None:
    assert CONFIRMATION == "ERASE"
