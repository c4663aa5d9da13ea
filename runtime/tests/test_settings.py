from __future__ import annotations

import pytest
from pydantic import ValidationError

from loyalty_runtime.settings import ServiceSettings
from partners.settings import Settings as PartnerSettings

REAL = "x" * 40


def test_production_refuses_local_defaults_and_placeholders():
    with pytest.raises(ValidationError, match="DATABASE_URL must be set"):
        ServiceSettings(environment="production", jwt_secret=REAL)
    with pytest.raises(ValidationError, match="JWT_SECRET must be set to a real secret"):
        ServiceSettings(environment="production", database_url="postgresql://db/x")
    with pytest.raises(ValidationError, match="JWT_SECRET must be set to a real secret"):
        ServiceSettings(
            environment="production",
            database_url="postgresql://db/x",
            jwt_secret="replace-me-with-a-long-random-secret",
        )
    with pytest.raises(ValidationError, match="PARTNER_KEY_SECRET must be set to a real secret"):
        PartnerSettings(environment="production", database_url="postgresql://db/x", jwt_secret=REAL)
    assert (
        PartnerSettings(
            environment="production", database_url="postgresql://db/x", jwt_secret=REAL, partner_key_secret=REAL
        ).environment
        == "production"
    )


def test_local_runs_work_with_defaults():
    assert ServiceSettings().dsn("loyalty_points").endswith("/loyalty_points")
