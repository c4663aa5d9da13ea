"""A whole platform with its console on free ports, and Debian's Chromium driven by Playwright.

Chromium comes from `apt-get install chromium` (`.ci/run` installs it); a test tool cannot download a
browser here. Without it these tests fail with the command to run: `make test` never skips them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from deploy.local.fleet import Fleet
from tests.e2e.browser.support import ARTEFACTS

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


@pytest.fixture(scope="session")
async def platform() -> AsyncIterator[Fleet]:
    """Kafka, PostgreSQL, the three services and the console, started once for the browser journeys."""
    home = Path(tempfile.mkdtemp(prefix="loyalty-browser-"))
    fleet = Fleet(home, services=("partners", "points", "redemption", "console"), env={"ENVIRONMENT": "test"})
    try:
        await fleet.start()
        yield fleet
    finally:
        await fleet.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Browser]:
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 (once, before any browser starts)
        pytest.fail(f"the browser tests need Debian's Chromium at {CHROMIUM}: run `apt-get install chromium` (as root)")
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        # launch() gives Chromium a fresh, temporary user-data dir of its own and removes it on close.
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()
