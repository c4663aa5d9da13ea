"""`make screenshots`: the README's pictures of the wallet, the portal and the ops console, from the demo.

Runs after `make demo` against the console on 127.0.0.1:8104, in Debian's Chromium (apt-get install
chromium), and writes docs/screenshots/{wallet,portal,ops}.png.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
CONSOLE = os.environ.get("CONSOLE_URL", "http://127.0.0.1:8104")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
SHOTS = (
    # (file, who signs in (button text), page, viewport)
    ("wallet", "Sign in as Ada", "/wallet", {"width": 390, "height": 844}),  # the newest Ada of the demo
    ("portal", "Sign in as SkyCafe", "/portal", {"width": 1280, "height": 860}),
    ("ops", "Sign in as Olivia Chen", "/ops", {"width": 1280, "height": 860}),
)


def shoot(browser: Browser, name: str, button: str, path: str, viewport: dict[str, int]) -> Path:
    context = browser.new_context(viewport=viewport, locale="en-US")  # type: ignore[arg-type]
    page = context.new_page()
    page.goto(f"{CONSOLE}/signin?find={button.removeprefix('Sign in as ')}")
    page.get_by_role("button", name=button).first.click()
    page.wait_for_load_state("load")
    page.goto(CONSOLE + path)
    target = OUT / f"{name}.png"
    page.screenshot(path=target, full_page=False)
    context.close()
    return target


def main() -> int:
    if not os.path.exists(CHROMIUM):
        print(f"[screenshots] needs Debian's Chromium at {CHROMIUM}: apt-get install chromium", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for name, button, path, viewport in SHOTS:
                print(f"[screenshots] {name}: {os.path.relpath(shoot(browser, name, button, path, viewport), ROOT)}")
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
