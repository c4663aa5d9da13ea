"""What the browser journeys do again and again: open a person's phone or desk, sign in, check a page with
axe-core, move by keyboard, keep a screenshot."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, expect

ROOT = Path(__file__).resolve().parents[3]
ARTEFACTS = ROOT / ".local" / "artefacts" / "browser"
AXE = (Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js").read_text(encoding="utf-8")
PHONE = {"width": 390, "height": 844}
DESK = {"width": 1280, "height": 900}
BLOCKING = {"serious", "critical"}


@dataclass
class Person:
    """One person's browser tab, with everything the page said on its console (CSP violations among it)."""

    name: str
    page: Page
    context: BrowserContext
    base: str
    problems: list[str] = field(default_factory=list)
    shots: int = 0

    async def open(self, path: str) -> None:
        await self.page.goto(self.base + path)
        await self.check()

    async def check(self, label: str | None = None) -> None:
        """The page passes axe-core without a serious or critical violation, and keeps a screenshot."""
        await self.page.wait_for_load_state("load")
        violations = await axe_violations(self.page)
        self.shots += 1
        slug = re.sub(r"[^a-z0-9]+", "-", (label or self.page.url.split("://", 1)[-1].split("/", 1)[-1]).lower())
        await self.page.screenshot(path=ARTEFACTS / f"{self.name}-{self.shots:02d}-{slug.strip('-') or 'home'}.png",
                                   full_page=True)  # fmt: skip
        blocking = [v for v in violations if v["impact"] in BLOCKING]
        assert not blocking, f"axe-core on {self.page.url}: {blocking}"
        assert not self.problems, f"the browser reported on {self.page.url}: {self.problems}"

    async def sign_in(self, button: str) -> None:
        """The local sign-in page: the demo identity's button, by its visible name."""
        await self.open("/signin")
        await self.page.get_by_role("button", name=button).first.click()
        await self.page.wait_for_load_state("load")


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations of WCAG 2.1 A and AA; evaluated through the DevTools protocol, so the page's
    Content-Security-Policy stays in force."""
    await page.evaluate(AXE)
    found: list[dict[str, Any]] = await page.evaluate(
        """async () => {
            const result = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a',
                'wcag21aa', 'best-practice']}, resultTypes: ['violations']});
            return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
        }"""
    )
    return found


async def person(
    browser: Browser, name: str, base: str, viewport: dict[str, int] = DESK, locale: str = "en-US"
) -> Person:
    context = await browser.new_context(viewport=viewport, locale=locale)  # type: ignore[arg-type]
    context.set_default_timeout(15_000)
    page = await context.new_page()
    someone = Person(name, page, context, base)

    def listen(message: ConsoleMessage) -> None:
        # A refusal page answers 4xx on purpose, and Chromium logs that as "Failed to load resource";
        # what counts is everything else: a Content-Security-Policy violation, a script error.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            someone.problems.append(message.text)

    page.on("console", listen)
    page.on("pageerror", lambda error: someone.problems.append(str(error)))
    return someone


async def tab_to(page: Page, name: str, *, role: str | None = None, presses: int = 60) -> None:
    """Press Tab until the focused element's accessible name contains `name`; fails if it never gets there."""
    pattern = re.compile(re.escape(name), re.IGNORECASE)
    for _ in range(presses):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(
            """() => { const e = document.activeElement; if (!e) return ['', ''];
               const label = e.labels && e.labels.length ? e.labels[0].innerText : '';
               const name = e.getAttribute('aria-label') || label || e.innerText || e.value || '';
               return [name, e.tagName.toLowerCase()]; }"""
        )
        text, tag = focused
        if pattern.search(text) and (role is None or tag == role):
            return
    raise AssertionError(f"Tab never reached {name!r} on {page.url}")


__all__ = ["ARTEFACTS", "DESK", "PHONE", "Person", "expect", "person", "tab_to"]
