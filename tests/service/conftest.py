"""Fixtures of the service's browser tests (tests/service/browser.py holds their helpers)."""

from __future__ import annotations

import pytest

from tests.service.browser import chromium


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium, one per test module."""
    with chromium() as b:
        yield b
