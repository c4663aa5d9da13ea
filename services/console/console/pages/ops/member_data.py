"""Ops act on a member's data rights: download all its data, or erase its personal data (typed confirmation).

Both are audited by the services (the member id, never the values). The erasure also ends the member's console
sessions.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse

from console import data_export
from console.clients.base import ApiError
from console.clients.services import PointsApi
from console.pages.ops.members import member_uuid
from console.rendering import gettext
from console.web import OpsSession, Partners, Points, Redemption, console_of, redirect
from loyalty_runtime.auth import Role

CONFIRMATION = "ERASE"


def router() -> APIRouter:
    api = APIRouter(tags=["ops"])

    @api.get("/members/{member_id}/data-export.json", response_model=None)
    async def download(
        request: Request, member_id: str, session: OpsSession, points: Points, partners: Partners,
        redemption: Redemption,
    ) -> Response:  # fmt: skip
        console = console_of(request)
        now = console.clock()
        data = await data_export.assemble(member_uuid(member_id), points, partners, redemption, console.store(), now)
        name = data_export.filename(data["manifest"]["member_id"], now)
        return Response(data_export.as_download(data), media_type="application/json",
                        headers={"Content-Disposition": f'attachment; filename="{name}"',
                                 "Cache-Control": "no-store"})  # fmt: skip

    @api.get("/members/{member_id}/erasure", response_class=HTMLResponse)
    async def confirm(request: Request, member_id: str, session: OpsSession, points: Points) -> HTMLResponse:
        return await _page(request, points, member_uuid(member_id))

    @api.post("/members/{member_id}/erasure", response_model=None)
    async def erase(
        request: Request, member_id: str, session: OpsSession, points: Points,
        confirm: Annotated[str, Form(max_length=20)] = "",
    ) -> Response:  # fmt: skip
        member = member_uuid(member_id)
        if confirm.strip() != CONFIRMATION:
            refused = gettext("Type ERASE in capitals to confirm; nothing was erased.")
            return await _page(request, points, member, refused, 422)
        try:
            done = await points.erase(member)
        except ApiError as error:
            if not error.refused:
                raise
            return await _page(request, points, member, error.detail, error.status)
        await console_of(request).store().close_all_of(member, Role.MEMBER)
        note = (gettext("This member's personal data was erased already; nothing changed.") if done["repeated"]
                else gettext("The member's personal data is erased; its points stay."))  # fmt: skip
        return redirect(request, f"/ops/members/{member}", note)

    return api


async def _page(request: Request, points: PointsApi, member_id: str, problem: str = "",
                status_code: int = 200) -> HTMLResponse:  # fmt: skip
    member = await points.member(member_id)
    return console_of(request).pages.render(request, "ops/members_erasure.html", status_code, member=member,
                                            problem=problem)  # fmt: skip
