"""Fixtures of the browser tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def browser_call_host() -> None:
    """Skip (with the reason) where a browser call cannot run: no SFrame core, root/Janus,
    Chromium, Playwright or built page.  Use with ``pytestmark = pytest.mark.usefixtures(...)``."""
    pytest.importorskip("orange_fast.sframe._core", reason="SFrame core not built")
    from orange_fast.harness.browser import browser_available
    from orange_fast.harness.janus import janus_available

    reason = janus_available() or browser_available()
    if reason is not None:
        pytest.skip(reason)
