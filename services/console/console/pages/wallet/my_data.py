"""The member's data rights: download all its data as JSON, or erase its personal data (with a typed word).

The erasure asks the points service, which tells the others through MemberErased; the console then ends every
session of the member (all it keeps of anyone), so it is signed out everywhere.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse

from console import data_export
from console.clients.base import ApiError
from console.rendering import gettext
from console.web import SESSION_COOKIE, MemberSession, Partners, Points, Redemption, console_of, redirect
from loyalty_runtime.auth import Role

CONFIRMATION = "ERASE"


def router() -> APIRouter:
    api = APIRouter(prefix="/wallet", tags=["wallet"])

    @api.get("/my-data", response_class=HTMLResponse)
    async def my_data(request: Request, session: MemberSession) -> HTMLResponse:
        return _page(request)

    @api.get("/my-data/export.json", response_model=None)
    async def download(
        request: Request, session: MemberSession, points: Points, partners: Partners, redemption: Redemption
    ) -> Response:
        console = console_of(request)
        now = console.clock()
        data = await data_export.assemble("me", points, partners, redemption, console.store(), now)
        name = data_export.filename(data["manifest"]["member_id"], now)
        return Response(data_export.as_download(data), media_type="application/json",
                        headers={"Content-Disposition": f'attachment; filename="{name}"',
                                 "Cache-Control": "no-store"})  # fmt: skip

    @api.post("/my-data/erase", response_model=None)
    async def erase(
        request: Request, session: MemberSession, points: Points, confirm: Annotated[str, Form(max_length=20)] = ""
    ) -> Response:
        if confirm.strip() != CONFIRMATION:
            return _page(request, gettext("Type ERASE in capitals to confirm; nothing was erased."), 422)
        try:
            await points.erase("me")
        except ApiError as error:
            if not error.refused:
                raise
            return _page(request, error.detail, error.status)
        await console_of(request).store().close_all_of(session.identity.subject, Role.MEMBER)
        answer = redirect(request, "/signin", gettext("Your personal data is erased and you are signed out."))
        answer.delete_cookie(SESSION_COOKIE, path="/")
        return answer

    return api


def _page(request: Request, problem: str = "", status_code: int = 200) -> HTMLResponse:
    return console_of(request).pages.render(request, "wallet/my_data.html", status_code, problem=problem)
