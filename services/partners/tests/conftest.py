"""A partners service on the real database and broker, an ops token for it, and a registered partner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from loyalty_runtime.service import ServiceShell
from tests.support.partner_client import PartnerCredentials, SignedPartnerClient, ops_token, register_partner
from tests.support.services import http, partners_service, running


@dataclass(frozen=True)
class PartnersApi:
    shell: ServiceShell
    client: httpx.AsyncClient
    ops_token: str
    dsn: str


@pytest.fixture
async def partners_api(infra, topic_prefix, database) -> AsyncIterator[PartnersApi]:
    dsn = await database("partners")
    async with running(partners_service(infra.kafka, dsn, topic_prefix)) as shell, http(shell) as client:
        yield PartnersApi(shell, client, ops_token(shell.settings.jwt_secret), dsn)


@pytest.fixture
async def skymall(partners_api: PartnersApi) -> PartnerCredentials:
    return await register_partner(
        partners_api.client,
        partners_api.ops_token,
        "skymall",
        points_per_unit="1.5",
        category_rates={"electronics": "2", "gift-cards": "0"},
    )


@pytest.fixture
def partner(partners_api: PartnersApi, skymall: PartnerCredentials) -> SignedPartnerClient:
    return SignedPartnerClient(partners_api.client, skymall)
