"""The session benchmark's epoch-transition part (issue 13 item 4): real delivery service and
session clients on loopback, real rtc hooks with decoder threads, random key delays per receiver."""

from __future__ import annotations

import pytest

pytest.importorskip("orange_fast.sframe._core", reason="SFrame core not built")
pytest.importorskip("aiortc", reason="aiortc is not installed (pip install 'aiortc>=1.16,<1.17')")

from orange_fast.benchmark.session import format_transition_table, run_transition_bench  # noqa: E402

pytestmark = [pytest.mark.timeout(180)]


def test_transition_bench_loses_nothing_and_forces_keyframes_only_for_joins() -> None:
    members, changes = 3, 4  # join, leave, join, leave
    result = run_transition_bench(members=members, changes=changes, max_delay=0.3, timeout=60)
    after, before = result["after"], result["before"]
    for r in (before, after):
        assert r["epoch_changes"] == changes
        assert r["frames_sent"] > 0
    assert after["frames_lost"] == 0 and after["dropped"] == {}
    assert after["frames_decrypted"] == after["frames_sent"] * (members - 1)
    assert after["keyframes_forced"] == members * (changes // 2)  # each member once per join
    assert before["keyframes_forced"] == members * changes  # the old rule: every key change
    assert set(before["dropped"]) <= {"unknown_key"}
    table = format_transition_table(result)
    assert table.count("\n| before:") == 1 and table.count("\n| after:") == 1


def test_transition_bench_rejects_bad_arguments() -> None:
    for kwargs in ({"members": 1}, {"changes": 0}, {"max_delay": 2.0}):
        with pytest.raises(ValueError):
            run_transition_bench(**kwargs)
