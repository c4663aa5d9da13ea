"""Partners' fulfilment keys: one secret per partner and version, derived, never stored; rotations with a grace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from redemption.domain.fulfilment_keys import (
    BadGraceError,
    FulfilmentKey,
    current_key,
    derive_secret,
    first_key,
    next_key,
)

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
MASTER = "a-master-secret-of-thirty-two-characters-or-more"
DAY = timedelta(days=1)


def test_each_partner_and_version_has_its_own_secret_derived_from_the_master():
    v1 = first_key("skyair", NOW)
    v2 = FulfilmentKey("skyair", 2, issued=True, created_at=NOW, active_from=NOW)
    other = first_key("skymall", NOW)
    secrets = {derive_secret(MASTER, k) for k in (v1, v2, other)}
    assert len(secrets) == 3
    assert derive_secret(MASTER, v1) == derive_secret(MASTER, first_key("skyair", NOW + DAY)), "any replica, any time"
    assert derive_secret("another-master-secret-of-thirty-two-chars", v1) != derive_secret(MASTER, v1)
    assert (v1.key_id, v2.key_id, other.key_id) == ("fk_skyair_v1", "fk_skyair_v2", "fk_skymall_v1")


def test_a_rotation_keeps_the_issued_key_signing_for_the_grace_then_the_new_one_signs():
    issued = next_key([], "skyair", NOW, DAY)
    assert (issued.version, issued.active_from) == (1, NOW), "a first key has nothing to wait for"
    rotated = next_key([issued], "skyair", NOW + timedelta(hours=1), DAY)
    assert (rotated.version, rotated.active_from) == (2, NOW + timedelta(hours=25))
    keys = [issued, rotated]
    assert current_key(keys, NOW + timedelta(hours=24)) == issued
    assert current_key(keys, NOW + timedelta(hours=25)) == rotated


def test_a_rotation_without_grace_signs_at_once():
    issued = next_key([], "skyair", NOW, DAY)
    rotated = next_key([issued], "skyair", NOW, timedelta(0))
    assert current_key([issued, rotated], NOW) == rotated


def test_a_key_made_on_first_use_was_shown_to_nobody_so_its_rotation_signs_at_once():
    made = first_key("skyair", NOW)
    assert not made.issued
    issued = next_key([made], "skyair", NOW + timedelta(minutes=5), DAY)
    assert (issued.version, issued.issued, issued.active_from) == (2, True, NOW + timedelta(minutes=5))


def test_no_key_means_no_current_key():
    assert current_key([], NOW) is None


@pytest.mark.parametrize("grace", [timedelta(seconds=-1), timedelta(days=31)])
def test_a_grace_out_of_range_is_refused(grace: timedelta):
    with pytest.raises(BadGraceError, match="between 0 and 2592000"):
        next_key([], "skyair", NOW, grace)
