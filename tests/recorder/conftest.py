"""Fixtures of the recorder tests: one Janus SFU in a network namespace for the package."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="package")
def sfu() -> Iterator[Any]:
    """A Janus VideoRoom SFU in its own network namespace (skips where it cannot run)."""
    pytest.importorskip("aiortc", reason="aiortc is not installed (pip install 'aiortc>=1.16,<1.17')")
    from orange_fast.harness.janus import JanusServer, janus_available

    if (reason := janus_available()) is not None:
        pytest.skip(f"Janus harness unavailable: {reason}")
    with JanusServer() as server:
        yield server
