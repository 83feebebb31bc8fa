"""The page tests' browser: Debian's chromium driven by Playwright, and pages that record
every request and console error (imported by tests/service/test_*page.py).

    apt-get install -y chromium      # never a browser Playwright downloads
    pytest tests/service/test_page.py tests/service/test_monitoring_page.py
"""

from __future__ import annotations

import shutil
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# What a browser test module sets as its `pytestmark`.
NEEDS_CHROMIUM = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed "
                       "(apt-get install -y chromium chromium-driver)"),
]
DESKTOP = {"width": 1100, "height": 800}
PHONE = {"width": 375, "height": 740}


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def recorded_page(browser: Any, url: str, origin: str,
                  viewport: dict[str, int] = DESKTOP) -> Iterator[Any]:
    """A page opened at `url` that records, in `.requests` and `.errors`, every request
    and every console error (a CSP violation is one); on leaving, it must have logged no
    error (a test clears those it expects) and made no request outside `origin`."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.requests, page.errors = [], []
    page.on("request", lambda r: page.requests.append(r.url))
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(url)
    try:
        yield page
        assert page.errors == []
        outside = [u for u in page.requests if not u.startswith(origin + "/")]
        assert outside == []
    finally:
        context.close()


def assert_only_own_script(page: Any, url: str, script: str) -> None:
    """`url` answers with a CSP that lets scripts and connections reach its own site
    only, and `page` (opened there) runs one script, `script`: no inline one, no CDN."""
    with urllib.request.urlopen(url) as response:
        csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert page.locator("script").evaluate_all("s => s.map(e => e.src)") == [script]


def assert_fits_a_phone(page: Any) -> None:
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
