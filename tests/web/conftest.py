"""Fixtures of the web tests: one Node oracle process (web/test/tools/oracle.ts) for the whole run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from web_support import Oracle


@pytest.fixture(scope="session")
def oracle() -> Iterator[Oracle]:
    """The TypeScript side of the differential tests (skips when node/npm or the build are absent)."""
    o = Oracle()
    yield o
    o.close()
