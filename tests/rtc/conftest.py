"""Fixtures of the aiortc/Janus E2EE tests (orange_fast.rtc)."""

from __future__ import annotations

import pytest


@pytest.fixture
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make aiortc's ICE gather host candidates on 127.0.0.1 only (aioice skips it by default)."""
    import aioice.ice

    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


@pytest.fixture(scope="session")
def janus_server():
    """One Janus VideoRoom SFU in its own network namespace for the whole session."""
    from orange_fast.harness.janus import JanusServer, janus_available

    reason = janus_available()
    if reason is not None:
        pytest.skip(f"Janus harness unavailable: {reason}")
    server = JanusServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
