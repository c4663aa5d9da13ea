"""What every page shares: the console's parts, the session of the request, CSRF, security headers, errors."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from itsdangerous import BadSignature, URLSafeSerializer

from console import i18n
from console.clients.base import ApiError, ServiceClient
from console.clients.services import PartnersApi, PointsApi, RedemptionApi
from console.rendering import Pages, gettext
from console.sessions import Session, SessionStore
from console.settings import Settings
from loyalty_runtime.auth import Role
from loyalty_runtime.failures import is_transient

SESSION_COOKIE = "console_session"
PRESESSION_COOKIE = "console_presession"
FLASH_COOKIE = "console_flash"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
HOME = {Role.MEMBER: "/wallet", Role.PARTNER: "/portal", Role.OPS: "/ops"}


def content_security_policy(form_targets: str = "") -> str:
    """Scripts, styles and images from the console itself only; no inline code, no frames."""
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
        f"connect-src 'self'; form-action 'self'{form_targets}; frame-ancestors 'none'; base-uri 'none'"
    )


@dataclass
class Console:
    settings: Settings
    pages: Pages
    sessions: SessionStore | None
    partners: ServiceClient
    points: ServiceClient
    redemption: ServiceClient
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    @property
    def flash_signer(self) -> URLSafeSerializer:
        return URLSafeSerializer(self.settings.session_secret, salt="flash")

    def store(self) -> SessionStore:
        if self.sessions is None:
            raise ApiError("console", 503, "the console's database is not connected yet", "2")
        return self.sessions


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


class SignInRequiredError(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class WrongAreaError(Exception):
    def __init__(self, needed: Role, session: Session) -> None:
        self.needed = needed
        self.session = session


class CsrfError(Exception):
    pass


# --- per request: locale, session, flash, headers ------------------------------------------------------------


async def prepare_request(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Middleware: the locale, the session (if any) and the flash message, then the security headers."""
    console = console_of(request)
    request.state.locale = i18n.negotiate(request.cookies.get(i18n.COOKIE), request.headers.get("accept-language"))
    console.pages.use_locale(request.state.locale)
    request.state.session = None
    request.state.csrf = ""
    try:
        if not request.url.path.startswith("/static/"):
            await _load_session(console, request)
            request.state.flash = _read_flash(console, request)
        answer = await call_next(request)
    except Exception as error:
        if not is_transient(error):
            raise
        answer = _database_unavailable(request)
    if getattr(request.state, "flash", None) and FLASH_COOKIE in request.cookies:
        answer.delete_cookie(FLASH_COOKIE, path="/")
    answer.headers.setdefault("Content-Security-Policy", content_security_policy())
    answer.headers.setdefault("X-Content-Type-Options", "nosniff")
    answer.headers.setdefault("Referrer-Policy", "same-origin")
    answer.headers.setdefault("X-Frame-Options", "DENY")
    answer.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if not request.url.path.startswith("/static/"):
        answer.headers.setdefault("Cache-Control", "no-store")
    return answer


async def _load_session(console: Console, request: Request) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    session = await console.store().find(token, console.clock()) if token and console.sessions else None
    request.state.session = session
    if session is not None:
        request.state.csrf = session.csrf
    else:
        request.state.csrf = request.cookies.get(PRESESSION_COOKIE) or secrets.token_urlsafe(32)


def _database_unavailable(request: Request) -> Response:
    """The console's own database (its sessions) is away: a page that says so, and when to try again."""
    answer = console_of(request).pages.render(
        request, "error.html", 503, title=gettext("A service is unavailable"), home=request.url.path,
        message=gettext("The console cannot reach its database just now. Try again in a few seconds."),
    )  # fmt: skip
    answer.headers["Retry-After"] = "5"
    return answer


def _read_flash(console: Console, request: Request) -> str | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        return str(console.flash_signer.loads(raw))
    except BadSignature:
        return None


def set_presession(request: Request, answer: Response) -> Response:
    """Before sign-in, the sign-in form's CSRF token lives in a cookie of its own (double submit)."""
    if request.state.session is None and PRESESSION_COOKIE not in request.cookies:
        answer.set_cookie(
            PRESESSION_COOKIE, request.state.csrf, httponly=True, samesite="strict",
            secure=console_of(request).settings.secure_cookies, path="/",
        )  # fmt: skip
    return answer


def redirect(request: Request, url: str, flash: str | None = None) -> Response:
    """After a form: 303 to the page to show (htmx follows HX-Redirect), with an optional message on it."""
    answer: Response
    if request.headers.get("hx-request"):
        answer = Response(status_code=204, headers={"HX-Redirect": url})
    else:
        answer = RedirectResponse(url, status_code=303)
    if flash:
        answer.set_cookie(
            FLASH_COOKIE, console_of(request).flash_signer.dumps(flash), httponly=True, samesite="lax",
            secure=console_of(request).settings.secure_cookies, path="/", max_age=60,
        )  # fmt: skip
    return answer


# --- CSRF ------------------------------------------------------------------------------------------------


async def verify_csrf(request: Request) -> None:
    """Every unsafe request carries the session's CSRF token, in the form or in the X-CSRF-Token header."""
    if request.method not in UNSAFE:
        return
    expected = request.state.csrf if request.state.session else request.cookies.get(PRESESSION_COOKIE)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and "form" in request.headers.get("content-type", ""):
        sent = str((await request.form()).get(CSRF_FIELD) or "")
    if not expected or not sent or not secrets.compare_digest(expected, sent):
        raise CsrfError()


# --- who may see a page ----------------------------------------------------------------------------------


def current_session(request: Request) -> Session:
    session: Session | None = request.state.session
    if session is None:
        raise SignInRequiredError(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return session


def session_of(role: Role) -> Callable[[Request], Session]:
    def area(request: Request) -> Session:
        session = current_session(request)
        if session.identity.role is not role:
            raise WrongAreaError(role, session)
        return session

    return area


AnySession = Annotated[Session, Depends(current_session)]
MemberSession = Annotated[Session, Depends(session_of(Role.MEMBER))]
PartnerSession = Annotated[Session, Depends(session_of(Role.PARTNER))]
OpsSession = Annotated[Session, Depends(session_of(Role.OPS))]


def points_api(request: Request, session: AnySession) -> PointsApi:
    return PointsApi(console_of(request).points, session.bearer)


def partners_api(request: Request, session: AnySession) -> PartnersApi:
    return PartnersApi(console_of(request).partners, session.bearer)


def redemption_api(request: Request, session: AnySession) -> RedemptionApi:
    return RedemptionApi(console_of(request).redemption, session.bearer)


Points = Annotated[PointsApi, Depends(points_api)]
Partners = Annotated[PartnersApi, Depends(partners_api)]
Redemption = Annotated[RedemptionApi, Depends(redemption_api)]


# --- errors as pages -------------------------------------------------------------------------------------


def install_error_pages(app: object) -> None:
    from fastapi import FastAPI

    assert isinstance(app, FastAPI)

    @app.exception_handler(RequestValidationError)
    async def unreadable(request: Request, error: RequestValidationError) -> HTMLResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in error.errors()[:5])
        return console_of(request).pages.render(
            request, "error.html", 422, title=gettext("That did not work"), message=problems,
            home=request.headers.get("referer", "/"),
        )  # fmt: skip

    @app.exception_handler(SignInRequiredError)
    async def sign_in(request: Request, error: SignInRequiredError) -> Response:
        target = f"/signin?next={quote(error.next_url, safe='')}"
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(WrongAreaError)
    async def wrong_area(request: Request, error: WrongAreaError) -> HTMLResponse:
        pages = console_of(request).pages
        home = HOME[error.session.identity.role]
        return pages.render(request, "error.html", 403, title=gettext("Not your area"), home=home,
                            message=gettext("This page is for another kind of user. Your pages are here."))  # fmt: skip

    @app.exception_handler(CsrfError)
    async def csrf(request: Request, _error: CsrfError) -> HTMLResponse:
        return console_of(request).pages.render(
            request, "error.html", 403, title=gettext("The form has expired"), home=request.headers.get("referer", "/"),
            message=gettext("Reload the page and send the form again."),
        )  # fmt: skip

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> Response:
        if error.status == 401:
            target = f"/signin?next={quote(request.url.path, safe='')}&expired=1"
            answer: Response
            if request.headers.get("hx-request"):  # a fragment must not become the sign-in page
                answer = Response(status_code=204, headers={"HX-Redirect": target})
            else:
                answer = RedirectResponse(target, status_code=303)
            answer.delete_cookie(SESSION_COOKIE, path="/")
            return answer
        pages = console_of(request).pages
        headers = {"Retry-After": error.retry_after or "5"} if error.status == 503 else {}
        title = gettext("A service is unavailable") if error.status >= 500 else gettext("That did not work")
        answer = pages.render(request, "error.html", error.status if error.status >= 400 else 502,  # type: ignore[assignment]
                              title=title, message=error.detail, service=error.service, home="/")  # fmt: skip
        answer.headers.update(headers)
        return answer
