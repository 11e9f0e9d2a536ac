"""The session benchmark runs end to end on a small group and reports what the protocol sends."""

from __future__ import annotations

import pytest

from orange_fast.benchmark.session import format_session_table, run_session_bench

pytestmark = [pytest.mark.timeout(60)]


def test_session_bench_small_groups() -> None:
    seen: list[str] = []
    result = run_session_bench([2, 3], seen.append, rounds=1, timeout=30)
    assert seen == ["session: group of 2", "session: group of 3"]
    assert [c["size"] for c in result["cases"]] == [2, 3]
    for case in result["cases"]:
        # a join is JOINED notice + KeyPackage + (Commit with Welcome); a leave is LEFT + Commit
        assert case["join_messages"] == 3
        assert case["leave_messages"] == 2
        assert case["join_log_bytes"] > 0 and case["join_delivered_bytes"] >= case["join_log_bytes"] * case["size"]
        assert case["join_s"] > 0 and case["leave_s"] > 0
    table = format_session_table(result)
    assert table.count("\n| 2 |") == 1 and table.count("\n| 3 |") == 1


@pytest.mark.parametrize("sizes,rounds", [([1], 1), ([2], 0)])
def test_session_bench_rejects_bad_arguments(sizes: list[int], rounds: int) -> None:
    with pytest.raises(ValueError):
        run_session_bench(sizes, rounds=rounds)
