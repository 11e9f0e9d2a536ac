"""Exhaustive exploration of the real committer state machine (formal/explore.py).

Each configuration explores every interleaving of its events and faults and must finish
without violation.  The default run stays well under a minute on one core.  The larger
runs are marked ``slow`` AND only run with ``ORANGE_FAST_SLOW=1`` (minutes each; a plain
``pytest tests`` skips them); 5 users run only with ``ORANGE_FAST_EXPLORE_USERS=5``.
"""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "formal"))

from explore import Budget, explore, random_walks  # noqa: E402

from orange_fast.session.committer import Append, Committer  # noqa: E402

Z = dict(crashes=0, restarts=0, disconnects=0, duplicates=0, false_evictions=0, leaves=0, visitors=0, ticks=0)


def budget(**kw: int) -> Budget:
    return Budget(**{**Z, **kw})


# State counts as measured (time on the shared, loaded 2-core build machine; ~2-4x less idle):
FAST = [
    pytest.param(3, budget(), id="3users-joins"),  # 10,725 states
    pytest.param(2, budget(leaves=1, visitors=1), id="2users-leave-lobby"),  # 10,203
    pytest.param(2, budget(crashes=1, restarts=1), id="2users-crash-restart"),  # 6,403
    pytest.param(2, budget(disconnects=1, duplicates=1), id="2users-disconnect-duplicate"),  # 7,157
    pytest.param(2, budget(false_evictions=1), id="2users-false-eviction"),  # 5,778
    pytest.param(2, budget(ticks=1), id="2users-update"),  # 812
]

SLOW = [
    pytest.param(3, budget(leaves=1), id="3users-leave"),  # 135,667 states
    pytest.param(2, budget(duplicates=1, false_evictions=1, ticks=1), id="2users-evict-duplicate-update"),  # 37,288
    pytest.param(3, budget(ticks=1), id="3users-update"),  # 94,588
    pytest.param(4, budget(), id="4users-joins"),  # 1,237,509 states, ~14 min
]


def _run(users: int, b: Budget) -> None:
    r = explore(users, b, max_states=5_000_000)
    print(f"\n[explore] users={users} {b}: {r.states} states, {r.transitions} transitions, "
          f"longest log {r.max_log}, {r.seconds:.1f}s")
    assert r.violations == []
    assert r.complete
    assert r.states > 100  # the world really moved


@pytest.mark.parametrize("users, b", FAST)
def test_exploration(users: int, b: Budget) -> None:
    _run(users, b)


SLOW_ENABLED = os.environ.get("ORANGE_FAST_SLOW") == "1"


@pytest.mark.slow
@pytest.mark.skipif(not SLOW_ENABLED, reason="long exploration: set ORANGE_FAST_SLOW=1")
@pytest.mark.parametrize("users, b", SLOW)
def test_exploration_slow(users: int, b: Budget) -> None:
    _run(users, b)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("ORANGE_FAST_EXPLORE_USERS") != "5", reason="set ORANGE_FAST_EXPLORE_USERS=5")
def test_exploration_five_users() -> None:
    _run(5, budget())  # joins only: the enumeration grows ~10x per user


# --------------------------------------------------------------------------- random walks, larger worlds

ALL_FAULTS = Budget(crashes=2, restarts=2, disconnects=2, duplicates=2, false_evictions=2, leaves=2, visitors=2, ticks=3)


@pytest.mark.parametrize("users", [4, 5])
def test_random_walks_with_every_fault(users: int) -> None:
    """Not exhaustive: random schedules for sizes the enumeration cannot reach."""
    r = random_walks(users, ALL_FAULTS, walks=250, depth=80, seed=users)
    print(f"\n[random walks] users={users}: {r.states} steps, longest log {r.max_log}, {r.seconds:.1f}s")
    assert r.violations == []
    assert r.max_log >= 10


# --------------------------------------------------------------------------- the checker has teeth


class NoCompareAndAppend(Committer):
    """Broken: commits are appended unconditionally (a stale committer can fork)."""

    def _append(self, kind, body, expected, out, kp_id=None):  # type: ignore[no-untyped-def]
        super()._append(kind, body, expected, out, kp_id)
        a = out[-1]
        out[-1] = Append(a.request_id, a.body, None)  # the DS is not asked to compare


class NeverRejoins(Committer):
    """Broken: a member that loses its standing just stops (gap 2 of the reference)."""

    def _decide(self, out):  # type: ignore[no-untyped-def]
        if self._l.current_kp is not None and not self._l.in_group and self._l.current_kp not in self._l.my_kps:
            return
        super()._decide(out)


class RemovesBeforeAdds(Committer):
    """Broken: commits removals of non-stale members (removes a live member)."""

    def _commit(self, adds, removes, nxt, out):  # type: ignore[no-untyped-def]
        live = tuple(m for m in self.view.live_members() if m != self._l.my_ref)
        return super()._commit(adds, removes or live[:1], nxt, out)


@pytest.mark.parametrize(
    "cls, users, b, expect",
    [
        (NoCompareAndAppend, 3, budget(leaves=1, visitors=1), "safety"),
        (NeverRejoins, 2, budget(false_evictions=1), "liveness"),
        (RemovesBeforeAdds, 3, budget(), "safety"),
    ],
)
def test_exploration_finds_planted_bugs(cls: type, users: int, b: Budget, expect: str) -> None:
    r = explore(users, b, machine_cls=cls, max_states=500_000)
    assert r.violations, f"{cls.__name__}: no violation found"
    assert r.violations[0].startswith(expect), r.violations[0]
    assert "trace:" in r.violations[0]


@pytest.mark.parametrize(
    "cls, expect",
    [(NoCompareAndAppend, "safety"), (NeverRejoins, "liveness"), (RemovesBeforeAdds, "safety")],
)
def test_random_walks_find_planted_bugs(cls: type, expect: str) -> None:
    r = random_walks(4, ALL_FAULTS, walks=300, depth=80, seed=1, machine_cls=cls)
    assert r.violations and r.violations[0].startswith(expect), r.violations[:1]
