"""Session tests: the exhaustive exploration's state counts go into the terminal summary."""

from __future__ import annotations

import pytest

_EXPLORED = pytest.StashKey[list]()


@pytest.fixture
def exploration_report(request: pytest.FixtureRequest) -> list[str]:
    """Lines for the "exhaustive exploration" section printed at the end of the run."""
    return request.config.stash.setdefault(_EXPLORED, [])


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001
    lines = config.stash.get(_EXPLORED, [])
    if lines:
        terminalreporter.section("exhaustive exploration (formal/explore.py): states explored")
        for line in lines:
            terminalreporter.write_line(line)
