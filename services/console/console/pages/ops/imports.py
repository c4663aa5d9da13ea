"""Ops console: the batch import runs (`make import`), newest first. The import itself stays an operator's CLI job;
this page only reads the runs the points service recorded (GET /v1/ops/imports)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from console.rendering import gettext
from console.web import OpsSession, Points, console_of


def outcome_words() -> dict[str, str]:
    return {
        "running": gettext("Running"),
        "interrupted": gettext("Interrupted: rerun the same file to resume"),
        "imported": gettext("Imported"),
        "imported with refusals": gettext("Imported, some rows refused"),
    }


def kind_words() -> dict[str, str]:
    return {"members": gettext("Members"), "balances": gettext("Balances"), "purchases": gettext("Purchases")}


def router() -> APIRouter:
    api = APIRouter()

    @api.get("/imports", response_class=HTMLResponse)
    async def imports(request: Request, session: OpsSession, points: Points) -> HTMLResponse:
        runs = (await points.import_runs(limit=100))["items"]
        return console_of(request).pages.render(
            request, "ops/imports.html", runs=runs, outcomes=outcome_words(), kinds=kind_words()
        )

    return api
