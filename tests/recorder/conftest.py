"""Fixtures of the recorder tests: one Janus SFU in a network namespace for the package."""

from __future__ import annotations

from typing import Any, Iterator

import pytest


@pytest.fixture(scope="package")
def sfu() -> Iterator[Any]:
    """A Janus VideoRoom SFU in its own network namespace (skips where it cannot run)."""
    pytest.importorskip("aiortc", reason="aiortc is not installed (pip install 'aiortc>=1.16,<1.17')")
    from orange_fast.rtc.janus import JanusServer, janus_available

    reason = janus_available()
    if reason is not None:
        pytest.skip(f"Janus harness unavailable: {reason}")
    server = JanusServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
