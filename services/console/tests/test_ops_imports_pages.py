"""The batch imports page in the console: the runs the points service recorded, their outcome, and the ops token."""

from __future__ import annotations

import pytest

from loyalty_runtime.auth import Role

from .conftest import POINTS, Browser, FakeServices


def run(**fields: object) -> dict[str, object]:
    return {
        "run_id": "0b4e1f2a-3c5d-4e6f-8a9b-0c1d2e3f4a5b", "file_name": "old/balances.csv", "file_sha256": "a" * 64,
        "kind": "balances", "actor": "root", "rows_total": 1_000_000, "rows_done": 1_000_000,
        "rows_imported": 999_990, "rows_existing": 0, "rows_refused": 10, "refusals": {"unknown_member": 10},
        "points": 123_456_789, "status": "completed", "outcome": "imported with refusals",
        "started_at": "2026-12-01T02:00:00Z", "finished_at": "2026-12-01T02:03:10Z", "resumed": 0, **fields,
    }  # fmt: skip


@pytest.fixture
async def ops(browser: Browser, services: FakeServices) -> Browser:
    await browser.sign_in(Role.OPS, "ops-1", display="Olivia Chen")
    services.calls.clear()
    return browser


async def test_the_page_lists_runs_with_their_outcome(ops: Browser, services: FakeServices) -> None:
    interrupted = run(run_id="1b4e1f2a-3c5d-4e6f-8a9b-0c1d2e3f4a5b", kind="members", rows_done=500, rows_total=2_000,
                      rows_imported=500, rows_refused=0, refusals={}, points=0, status="running",
                      outcome="interrupted", finished_at=None)  # fmt: skip
    services.answer("GET", f"{POINTS}/v1/ops/imports", {"items": [interrupted, run()]})
    page = await ops.client.get("/ops/imports")
    assert page.status_code == 200
    assert "Interrupted: rerun the same file to resume" in page.text
    assert "Imported, some rows refused" in page.text
    assert "123,456,789" in page.text
    assert "unknown_member: 10" in page.text
    assert "old/balances.csv" in page.text
    assert "500 / 2,000" in page.text
    assert 'href="/ops/imports"' in page.text  # in the nav
    assert set(services.bearer_subjects()) == {("ops", "ops-1")}


async def test_no_run_yet_says_how_to_start_one(ops: Browser, services: FakeServices) -> None:
    services.answer("GET", f"{POINTS}/v1/ops/imports", {"items": []})
    page = await ops.client.get("/ops/imports")
    assert "No import run yet" in page.text


async def test_a_member_cannot_see_the_page(browser: Browser, services: FakeServices) -> None:
    await browser.sign_in(Role.MEMBER, "5f1c7d2e-0a3b-4c5d-8e9f-1a2b3c4d5e6f")
    page = await browser.client.get("/ops/imports", follow_redirects=False)
    assert page.status_code in (302, 303, 403)
