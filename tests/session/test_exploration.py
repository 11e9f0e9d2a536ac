"""Exhaustive exploration of the real committer state machine (formal/explore.py).

Each configuration explores every interleaving of its events and faults (per faulty
client; a persistent-set reduction keeps every terminal state, which is checked here
against the unreduced graph) and must finish without violation.  The default run takes
about 4 minutes on 2 cores.  The larger runs are marked ``slow`` AND only run with
``ORANGE_FAST_SLOW=1`` (minutes each; a plain ``pytest tests`` skips them).
"""

from __future__ import annotations

import os

import pytest

from explore import Budget, Result, explore, explore_many, random_walks  # noqa: E402

from orange_fast.session.committer import Committer, RequestAppend  # noqa: E402

Z = dict(crashes=0, restarts=0, disconnects=0, duplicates=0, false_evictions=0, leaves=0, visitors=0, ticks=0)


def budget(**kw: int) -> Budget:
    return Budget(**{**Z, **kw})


# Budgets are per faulty client (``faulty``: which ones; None = every client).
# State counts as measured with the persistent-set reduction (seconds on the shared,
# loaded 2-core build machine):
FAST = [
    pytest.param(3, budget(), None, id="3users-joins"),  # 816 states
    pytest.param(4, budget(), None, id="4users-joins"),  # 8,793
    pytest.param(5, budget(), None, id="5users-joins"),  # 107,254, ~6 s
    pytest.param(2, budget(leaves=1, visitors=1), None, id="2users-leave-lobby"),  # 55,611
    pytest.param(2, budget(crashes=1, restarts=1), None, id="2users-crash-restart"),  # 96,244
    pytest.param(2, budget(disconnects=1, duplicates=1), [1], id="2users-disconnect-duplicate"),  # 4,243
    pytest.param(2, budget(false_evictions=1), None, id="2users-false-eviction"),  # 61,166
    pytest.param(2, budget(ticks=1), None, id="2users-update"),  # 1,255
    pytest.param(3, budget(leaves=1), [2], id="3users-leave"),  # 13,779
    pytest.param(3, budget(crashes=1, restarts=1), [0], id="3users-committer-crash-restart"),  # 46,014
    pytest.param(3, budget(disconnects=1), [0], id="3users-committer-disconnect"),  # 37,972
    pytest.param(4, budget(ticks=1), [0], id="4users-update"),  # 49,620
    pytest.param(3, budget(leaves=1, visitors=1), [2], id="3users-leave-lobby"),  # 153,663, ~7 s
    pytest.param(4, budget(leaves=1), [3], id="4users-leave"),  # 242,956, ~14 s
]

# 4 users, one faulty client, run in parallel over the cores (~2.5 min on 2 cores);
# the longest first.
FOUR_USERS_WITH_FAULTS = [
    (4, budget(disconnects=1, duplicates=1), [1]),  # 1,319,924 states, ~130 s alone
    (4, budget(crashes=1, restarts=1), [0]),  # 795,984, the committer, ~70 s
    (4, budget(false_evictions=1), [1]),  # 609,213, ~45 s
]

SLOW = [
    pytest.param(4, budget(leaves=1, visitors=1), [3], id="4users-leave-lobby"),  # 3,147,120, ~6 min
    pytest.param(4, budget(crashes=1, restarts=1), [3], id="4users-joiner-crash-restart"),  # 796,644
    pytest.param(5, budget(ticks=1), [0], id="5users-update"),  # 697,950
    # faults combined: the committer crashes, restarts, loses its connection, sees a duplicate
    pytest.param(
        3, budget(crashes=1, restarts=1, disconnects=1, duplicates=1), [0], id="3users-committer-faults"
    ),  # 2,754,509
]


def _run(users: int, b: Budget, faulty: list[int] | None, report: list[str]) -> None:
    _check(users, b, faulty, explore(users, b, faulty=faulty, max_states=8_000_000), report)


def _faults(b: Budget) -> str:
    return ", ".join(f"{k}={v}" for k, v in vars(b).items() if v) or "joins only"


def _check(users: int, b: Budget, faulty: list[int] | None, r: Result, report: list[str]) -> None:
    line = (f"{users} users, {_faults(b)}, faulty={faulty or 'all'}: {r.states:,} states, {r.terminal:,} terminal, "
            f"longest log {r.max_log}, {r.seconds:.1f}s, {len(r.violations)} violations")
    print("\n[explore]", line)
    report.append(line)
    assert r.violations == []
    assert r.complete
    assert r.states > 100 and r.terminal > 0  # the world really moved, and came to rest


@pytest.mark.parametrize("users, b, faulty", FAST)
def test_exploration(users: int, b: Budget, faulty: list[int] | None, exploration_report: list[str]) -> None:
    _run(users, b, faulty, exploration_report)


def test_exploration_four_users_with_faults(exploration_report: list[str]) -> None:
    configs = [dict(users=u, budget=b, faulty=f, max_states=8_000_000) for u, b, f in FOUR_USERS_WITH_FAULTS]
    for (users, b, faulty), r in zip(FOUR_USERS_WITH_FAULTS, explore_many(configs, workers=2)):
        _check(users, b, faulty, r, exploration_report)


SLOW_ENABLED = os.environ.get("ORANGE_FAST_SLOW") == "1"


@pytest.mark.slow
@pytest.mark.skipif(not SLOW_ENABLED, reason="long exploration: set ORANGE_FAST_SLOW=1")
@pytest.mark.parametrize("users, b, faulty", SLOW)
def test_exploration_slow(users: int, b: Budget, faulty: list[int] | None, exploration_report: list[str]) -> None:
    _run(users, b, faulty, exploration_report)


# --------------------------------------------------------------------------- the reduction is sound


@pytest.mark.parametrize(
    "users, b, faulty",
    [
        pytest.param(3, budget(), None, id="3users-joins"),  # 21,603 states unreduced, 816 reduced
        pytest.param(2, budget(leaves=1, visitors=1), None, id="2users-leave-lobby"),  # 78,657 / 55,611
        pytest.param(2, budget(crashes=1, restarts=1), [0], id="2users-crash-restart"),  # 8,468 / 2,577
        pytest.param(2, budget(disconnects=1, duplicates=1), [1], id="2users-disconnect-duplicate"),  # 15,434 / 4,243
        pytest.param(2, budget(false_evictions=1), [0], id="2users-false-eviction"),  # 6,481 / 1,860
        pytest.param(2, budget(ticks=1), None, id="2users-update"),  # 4,492 / 1,255
        pytest.param(3, budget(leaves=1), [1], id="3users-leave"),  # 153,575 / 13,923
    ],
)
def test_reduction_keeps_every_terminal_state(
    users: int, b: Budget, faulty: list[int] | None, exploration_report: list[str]
) -> None:
    """The persistent-set reduction must reach exactly the terminal states of the full graph,
    which must be acyclic (what the reduction's soundness, and liveness on terminal states, rest on)."""
    both = dict(faulty=faulty, keep_terminals=True, check_acyclic=True, max_states=3_000_000)
    full = explore(users, b, reduce=False, **both)
    reduced = explore(users, b, reduce=True, **both)
    line = (f"reduction check, {users} users, {_faults(b)}, faulty={faulty or 'all'}: {full.states:,} states "
            f"unreduced, {reduced.states:,} reduced, terminal states {full.terminal:,} / {reduced.terminal:,}, "
            f"same set: {reduced.terminal_keys == full.terminal_keys}")
    print("\n[reduction]", line)
    exploration_report.append(line)
    assert full.violations == [] and reduced.violations == []
    assert full.complete and reduced.complete
    assert full.terminal_keys and reduced.terminal_keys == full.terminal_keys
    assert reduced.states < full.states


def test_cycle_detection() -> None:
    from explore import _states_on_cycles

    assert _states_on_cycles({1: [2, 3], 2: [3], 3: []}) == []
    # 2 -> 3 -> 2 is a cycle; 4 is only reachable through it
    assert sorted(_states_on_cycles({1: [2], 2: [3], 3: [2, 4], 4: []})) == [2, 3, 4]
    assert _states_on_cycles({1: [1]}) == [1]


# --------------------------------------------------------------------------- random walks, larger worlds

ALL_FAULTS = Budget(
    crashes=2, restarts=2, disconnects=2, duplicates=2, false_evictions=2, leaves=2, visitors=2, ticks=3
)


@pytest.mark.parametrize("users", [4, 5])
def test_random_walks_with_every_fault(users: int) -> None:
    """Not exhaustive: random schedules for sizes the enumeration cannot reach."""
    r = random_walks(users, ALL_FAULTS, walks=250, depth=150, seed=users)
    print(f"\n[random walks] users={users}: {r.states} steps, longest log {r.max_log}, {r.seconds:.1f}s")
    assert r.violations == []
    assert r.max_log >= 10


# --------------------------------------------------------------------------- the checker has teeth


class NoCompareAndAppend(Committer):
    """Broken: commits are appended unconditionally (a stale committer can fork)."""

    def _append(self, kind, body, expected, out, kp_id=None):  # type: ignore[no-untyped-def]
        super()._append(kind, body, expected, out, kp_id)
        a = out[-1]
        out[-1] = RequestAppend(a.request_id, a.body, None)  # the DS is not asked to compare


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
@pytest.mark.parametrize("reduce", [True, False], ids=["reduced", "full"])
def test_exploration_finds_planted_bugs(cls: type, users: int, b: Budget, expect: str, reduce: bool) -> None:
    r = explore(users, b, machine_cls=cls, reduce=reduce, max_states=500_000)
    assert r.violations, f"{cls.__name__}: no violation found"
    assert r.violations[0].startswith(expect), r.violations[0]
    assert "trace:" in r.violations[0]


@pytest.mark.parametrize(
    "cls, expect",
    [(NoCompareAndAppend, "safety"), (NeverRejoins, "liveness"), (RemovesBeforeAdds, "safety")],
)
def test_random_walks_find_planted_bugs(cls: type, expect: str) -> None:
    r = random_walks(4, ALL_FAULTS, walks=300, depth=150, seed=1, machine_cls=cls)
    assert r.violations and r.violations[0].startswith(expect), r.violations[:1]
