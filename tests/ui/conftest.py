"""Browser fixtures for the page's tests: Debian's chromium driven by Playwright.

One browser per test session (starting one costs about a second). Without Playwright or
``/usr/bin/chromium`` the browser tests are skipped, unless ``TRACKLITE_REQUIRE_BROWSER=1``
(CI), where a missing browser is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _missing(reason: str) -> None:
    if os.environ.get("TRACKLITE_REQUIRE_BROWSER", "") not in ("", "0"):
        pytest.fail(f"TRACKLITE_REQUIRE_BROWSER is set but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed")
    if not os.path.exists(CHROMIUM):
        _missing(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield launched
        launched.close()


class Guarded:
    """A page whose requests are all recorded; those not allowed are aborted."""

    def __init__(self, browser: Any, allowed: tuple[str, ...]) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        self.context.set_default_timeout(60_000)  # not Playwright's 30 s: CI machines are loaded
        self.requests: list[str] = []
        self.refused: list[str] = []
        self.errors: list[str] = []
        self.allowed = allowed
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _route(self, route: Any) -> None:
        url = route.request.url
        self.requests.append(url)
        if url.startswith(self.allowed):
            route.continue_()
        else:
            self.refused.append(url)
            route.abort()

    def open(self, url: str) -> Any:
        self.page.goto(url)
        self.page.wait_for_selector("body[data-ready='1']")
        return self.page


@pytest.fixture
def guarded(browser: Any) -> Iterator[Any]:
    """``guarded(allowed_prefixes)`` opens a recorded context; closed after the test."""
    made: list[Guarded] = []

    def make(*allowed: str) -> Guarded:
        made.append(Guarded(browser, allowed))
        return made[-1]

    yield make
    for g in made:
        g.context.close()
