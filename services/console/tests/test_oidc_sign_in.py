"""In production people sign in with the bank's identity provider (OpenID Connect, code flow with PKCE);
the console keeps the provider's token server-side and sends that token, and only that, to the services."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import RSAKey

from console.app import build
from console.settings import Settings
from console.web import SESSION_COOKIE

from .conftest import PARTNERS, POINTS, REDEMPTION, SECRET, FakeServices

IDP = "https://idp.bank.test"
CONSOLE = "https://console.bank.test"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})
ACCESS_TOKEN = "access-token-from-the-bank"


def identity_provider(services: FakeServices, claims: dict[str, object]) -> list[dict[str, list[str]]]:
    """A fake provider on the same transport: discovery, keys, and a token endpoint that checks PKCE was used."""
    token_requests: list[dict[str, list[str]]] = []
    nonce: dict[str, str] = {}
    discovery = {
        "issuer": IDP,
        "authorization_endpoint": f"{IDP}/authorize",
        "token_endpoint": f"{IDP}/token",
        "jwks_uri": f"{IDP}/jwks",
        "response_types_supported": ["code"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }
    services.answer("GET", f"{IDP}/.well-known/openid-configuration", discovery)
    services.answer("GET", f"{IDP}/jwks", {"keys": [KEY.as_dict(private=False)]})

    def token(request: httpx.Request) -> httpx.Response:
        form = parse_qs(request.content.decode())
        token_requests.append(form)
        now = int(time.time())
        id_claims = {"iss": IDP, "aud": "console", "iat": now, "exp": now + 600, "nonce": nonce["value"], **claims}
        id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, id_claims, KEY)
        body = {"access_token": ACCESS_TOKEN, "id_token": id_token, "token_type": "Bearer", "expires_in": 3600}
        return httpx.Response(200, json=body)

    services.on("POST", f"{IDP}/token", token)
    services.nonce = nonce  # type: ignore[attr-defined]
    return token_requests


@pytest.fixture
async def production_console(database, services: FakeServices) -> AsyncIterator[FastAPI]:
    settings = Settings(
        environment="production", database_url=await database("console"), jwt_secret=SECRET,
        session_secret="s" * 40, public_url=CONSOLE, oidc_issuer=IDP, oidc_client_id="console",
        oidc_client_secret="client-secret", points_url=POINTS, partners_url=PARTNERS, redemption_url=REDEMPTION,
    )  # fmt: skip
    app = build(settings, transport=httpx.MockTransport(services.handle))
    async with app.router.lifespan_context(app):
        yield app


async def test_partner_staff_sign_in_with_the_bank_and_the_services_get_the_banks_token(
    production_console: FastAPI, services: FakeServices
) -> None:
    claims = {"sub": "staff-7", "name": "Li Na", "loyalty_role": "partner", "loyalty_partner": "skymall"}
    token_requests = identity_provider(services, claims)
    transport = httpx.ASGITransport(app=production_console)
    async with httpx.AsyncClient(transport=transport, base_url=CONSOLE) as client:
        assert (await client.get("/signin")).headers["location"].startswith("/signin/oidc")
        kept = await client.get("/signin", params={"next": "/portal/orders?state=all&cursor=x"})
        assert kept.headers["location"] == "/signin/oidc?next=%2Fportal%2Forders%3Fstate%3Dall%26cursor%3Dx"
        to_provider = await client.get("/signin/oidc", params={"next": "/portal/offers"})
        assert to_provider.status_code == 302
        authorize = urlsplit(to_provider.headers["location"])
        asked = parse_qs(authorize.query)
        assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == f"{IDP}/authorize"
        assert asked["redirect_uri"] == [f"{CONSOLE}/signin/callback"]
        assert asked["code_challenge_method"] == ["S256"]
        services.nonce["value"] = asked["nonce"][0]  # type: ignore[attr-defined]

        back = await client.get("/signin/callback", params={"code": "code-1", "state": asked["state"][0]})
        assert back.status_code == 303, back.text
        assert back.headers["location"] == "/portal/offers"
        cookie = next(h for h in back.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
        assert "Secure" in cookie
        assert "HttpOnly" in cookie
        assert token_requests[0]["code_verifier"]  # PKCE

        await client.get("/portal")
        sent = [c for c in services.calls if c.url.host == "partners.test"]
        assert sent
        assert {c.headers["authorization"] for c in sent} == {f"Bearer {ACCESS_TOKEN}"}
        assert all("/skymall" in c.url.path for c in sent if "/v1/partners/" in c.url.path)


async def test_a_forged_state_is_refused(production_console: FastAPI, services: FakeServices) -> None:
    identity_provider(services, {"sub": "m-1"})
    transport = httpx.ASGITransport(app=production_console)
    async with httpx.AsyncClient(transport=transport, base_url=CONSOLE) as client:
        await client.get("/signin/oidc")
        with pytest.raises(Exception, match="state"):
            await client.get("/signin/callback", params={"code": "code-1", "state": "forged"})
        assert SESSION_COOKIE not in client.cookies


async def test_the_local_sign_in_does_not_exist_in_production(
    production_console: FastAPI, services: FakeServices
) -> None:
    identity_provider(services, {"sub": "m-1"})
    transport = httpx.ASGITransport(app=production_console)
    async with httpx.AsyncClient(transport=transport, base_url=CONSOLE) as client:
        page = await client.get("/signin/oidc")  # the pre-session cookie for the form is not needed here
        answer = await client.post("/signin/local", data={"role": "ops", "subject": "ops-1"})
        assert answer.status_code in (403, 404)
        assert SESSION_COOKIE not in answer.cookies
        assert page.status_code == 302


def test_production_refuses_to_start_without_the_identity_provider() -> None:
    secrets = {"database_url": "postgresql://x/y", "jwt_secret": "j" * 40, "session_secret": "s" * 40}
    with pytest.raises(ValueError, match="OIDC_ISSUER"):
        Settings(environment="production", public_url=CONSOLE, **secrets)
    provider = {"oidc_issuer": IDP, "oidc_client_id": "c", "oidc_client_secret": "s"}
    with pytest.raises(ValueError, match="https"):
        Settings(environment="production", public_url="http://console", **secrets, **provider)
