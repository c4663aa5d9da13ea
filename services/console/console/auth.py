"""Sign-in and sign-out. Locally a page lists the demo identities; in production, OpenID Connect.

Locally (ENVIRONMENT=local or test) the console mints the person's token from JWT_SECRET, as
`make token` does. In production it never mints anything: the bank's identity provider signs the
person in (Authlib's OpenID Connect client) and the token it gives is the one the APIs receive.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from console.clients.base import ApiError
from console.clients.services import PartnersApi, PointsApi
from console.rendering import gettext
from console.sessions import Identity
from console.web import HOME, SESSION_COOKIE, AnySession, Console, console_of, redirect, set_presession
from loyalty_runtime.auth import Role, TokenAuthority

log = logging.getLogger(__name__)
DEMO_OPS = (("ops-1", "Olivia Chen"), ("ops-2", "Wei Zhang"))


def safe_next(target: str | None, role: Role) -> str:
    """Only a path of this site (no scheme, no '//host'), else the person's home."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return HOME[role]


def router(oauth_client: Any | None) -> APIRouter:
    api = APIRouter(tags=["sign-in"])

    @api.get("/", response_model=None)
    async def home(request: Request) -> Response:
        session = request.state.session
        return RedirectResponse(HOME[session.identity.role] if session else "/signin", status_code=303)

    @api.get("/signin", response_class=HTMLResponse, response_model=None)
    async def sign_in_page(
        request: Request,
        next_url: Annotated[str | None, Query(alias="next", max_length=500)] = None,
        find: Annotated[str, Query(max_length=200)] = "",
    ) -> Response:
        console = console_of(request)
        if not console.settings.local_sign_in:
            return RedirectResponse(f"/signin/oidc?next={quote(next_url or '', safe='')}", status_code=303)
        identities = await demo_identities(console, find.strip())
        page = console.pages.render(request, "signin.html", identities=identities, next_url=next_url or "", find=find,
                                    expired=request.query_params.get("expired") == "1")  # fmt: skip
        return set_presession(request, page)

    @api.post("/signin/local", response_model=None)
    async def sign_in_locally(
        request: Request,
        role: Annotated[Role, Form()],
        subject: Annotated[str, Form(min_length=1, max_length=200)],
        partner_id: Annotated[str, Form(max_length=64)] = "",
        display: Annotated[str, Form(max_length=200)] = "",
        next_url: Annotated[str, Form(alias="next", max_length=500)] = "",
    ) -> Response:
        console = console_of(request)
        if not console.settings.local_sign_in:
            return console.pages.render(request, "error.html", 404, title=gettext("Not here"), home="/signin",
                                        message=gettext("Sign in with the bank's identity provider."))  # fmt: skip
        if role is Role.PARTNER and not partner_id:
            return redirect(request, "/signin", gettext("Partner staff sign in for a partner: choose one."))
        identity = Identity(subject.strip(), role, partner_id.strip() or None if role is Role.PARTNER else None,
                            display.strip())  # fmt: skip
        ttl = timedelta(hours=console.settings.session_hours)
        token = TokenAuthority(console.settings.jwt_secret).issue(
            identity.subject, role, ttl, partner_id=identity.partner_id
        )
        return await open_session(request, identity, token, ttl, next_url)

    @api.get("/signin/oidc", response_model=None)
    async def sign_in_with_provider(request: Request, next_url: Annotated[str, Query(alias="next")] = "") -> Response:
        if oauth_client is None:
            return redirect(request, "/signin", gettext("No identity provider is configured."))
        request.session["next"] = next_url
        answer: Response = await oauth_client.authorize_redirect(
            request, f"{console_of(request).settings.public_url}/signin/callback"
        )
        return answer

    @api.get("/signin/callback", response_model=None)
    async def provider_callback(request: Request) -> Response:
        if oauth_client is None:
            return redirect(request, "/signin")
        console = console_of(request)
        answer = await oauth_client.authorize_access_token(request)
        identity = identity_from_claims(console, dict(answer.get("userinfo") or {}))
        expires = int(answer.get("expires_in") or console.settings.session_hours * 3600)
        ttl = min(timedelta(seconds=expires), timedelta(hours=console.settings.session_hours))
        return await open_session(request, identity, str(answer[console.settings.oidc_bearer]), ttl,
                                  str(request.session.pop("next", "")))  # fmt: skip

    @api.post("/signout", response_model=None)
    async def sign_out(request: Request, _session: AnySession) -> Response:
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            await console_of(request).store().close(token)
        answer = redirect(request, "/signin", gettext("You are signed out."))
        answer.delete_cookie(SESSION_COOKIE, path="/")
        return answer

    @api.post("/locale", response_model=None)
    async def choose_locale(
        request: Request,
        locale: Annotated[str, Form(pattern="^(en|zh_CN)$")],
        back: Annotated[str, Form(max_length=500)] = "/",
    ) -> Response:
        session = request.state.session
        answer = redirect(request, safe_next(back, session.identity.role if session else Role.MEMBER))
        answer.set_cookie("console_locale", locale, max_age=365 * 86400, samesite="lax", httponly=True, path="/")
        return answer

    return api


async def open_session(request: Request, identity: Identity, bearer: str, ttl: timedelta, next_url: str) -> Response:
    console = console_of(request)
    cookie, _session = await console.store().open(identity, bearer, console.clock(), ttl)
    log.info("signed in", extra={"subject": identity.subject, "role": identity.role.value})
    answer = redirect(request, safe_next(next_url, identity.role))
    answer.set_cookie(
        SESSION_COOKIE, cookie, max_age=int(ttl.total_seconds()), httponly=True, samesite="lax",
        secure=console.settings.secure_cookies, path="/",
    )  # fmt: skip
    return answer


def identity_from_claims(console: Console, claims: dict[str, Any]) -> Identity:
    """The provider's claims as an identity; a person without a known role signs in as a member."""
    settings = console.settings
    try:
        role = Role(str(claims.get(settings.oidc_role_claim, Role.MEMBER.value)))
    except ValueError:
        role = Role.MEMBER
    partner = claims.get(settings.oidc_partner_claim) if role is Role.PARTNER else None
    if role is Role.PARTNER and not partner:
        raise ApiError("identity provider", 403, f"partner staff need the '{settings.oidc_partner_claim}' claim")
    display = str(claims.get("name") or claims.get("preferred_username") or "")
    return Identity(str(claims["sub"]), role, str(partner) if partner else None, display[:200])


async def demo_identities(console: Console, find: str = "") -> dict[str, list[dict[str, str]]]:
    """Local only: the ops staff, each partner's staff and the newest members (or those `find` names),
    read with a local ops token."""
    token = TokenAuthority(console.settings.jwt_secret).issue("console-sign-in", Role.OPS, timedelta(minutes=1))
    identities: dict[str, list[dict[str, str]]] = {
        "ops": [{"subject": s, "display": d} for s, d in DEMO_OPS],
        "partner": [],
        "member": [],
    }
    try:
        for partner in await PartnersApi(console.partners, token).partners():
            partner_id = partner["partner_id"]
            staff = {"subject": f"staff-{partner_id}", "partner_id": partner_id, "display": partner["name"]}
            identities["partner"].append(staff)
    except ApiError as error:
        log.warning("demo partners unavailable", extra={"error": str(error)})
    try:
        found = await PointsApi(console.points, token).search_members(q=find, limit=12)
        for member in found["items"]:
            identities["member"].append({"subject": member["member_id"], "display": member["display_name"]})
    except ApiError as error:
        log.warning("demo members unavailable", extra={"error": str(error)})
    return identities
