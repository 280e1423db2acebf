"""The dashboard's browser for the tests: Debian's Chromium driven by Playwright (no browser
is downloaded), a page that records every console error or warning, uncaught exception and
failed request, and the login a person does."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

__all__ = ["BROWSER_WAIT_MS", "artifacts_dir", "browser_page", "sign_in"]

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking switches Chromium dials out for updates and field
# trials, which a closed network refuses (and logs as errors).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BROWSER_WAIT_MS = 30_000


def artifacts_dir() -> Path:
    """Where screenshots and the API's log go (kept after the test; git-ignored)."""
    path = Path(os.environ.get("ORCHESTRATOR_TEST_ARTIFACTS", "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _note_console(message: ConsoleMessage, problems: list[str]) -> None:
    if message.type in ("error", "warning"):
        problems.append(f"console {message.type}: {message.text} ({message.location})")


@contextlib.asynccontextmanager
async def browser_page(problems: list[str]) -> AsyncIterator[tuple[Browser, Page]]:
    """A browser and a wide page whose console errors, uncaught exceptions and failed
    requests are appended to `problems`."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: _note_console(m, problems))
            page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            yield browser, page
        finally:
            await browser.close()


async def sign_in(page: Page, base: str, key: str, view: str = "") -> None:
    """Open the page (at `view`, e.g. `#/feedback`) and log in through the form, as a
    person would."""
    await page.goto(f"{base}/ui{view}")
    await page.fill("#key", key)
    await page.click("#login button[type=submit]")
