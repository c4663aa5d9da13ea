"""What an ops search text means: a member id, an identifier, a card token or part of a name."""

import uuid

from points.handlers.queries import MemberSearch, search_terms


def test_a_member_id_finds_only_that_member():
    member = uuid.uuid4()
    assert search_terms(str(member)) == MemberSearch(member_id=member)


def test_a_full_identifier_is_matched_exactly_and_not_as_a_name():
    assert search_terms("card:tok_abc12345") == MemberSearch(identifiers=("card:tok_abc12345",))
    assert search_terms("partner:skymall:c-1") == MemberSearch(identifiers=("partner:skymall:c-1",))


def test_other_text_is_a_card_token_or_part_of_a_name_with_wildcards_taken_literally():
    assert search_terms("tok_abc12345") == MemberSearch(
        identifiers=("card:tok_abc12345",), name_pattern="%tok\\_abc12345%"
    )
    assert search_terms("50%\\off").name_pattern == "%50\\%\\\\off%"
