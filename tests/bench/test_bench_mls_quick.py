"""The quick MLS benchmark (sizes 2 and 8) runs and produces a sane result and table.

No wall-clock figure is asserted: only structure, positivity, consistency of the ratios with the
figures they come from, and the hash-count profile (a count of operations, not a time).
"""

from __future__ import annotations

import gc
import math

import pytest

from orange_fast import mls
from orange_fast.benchmark.mls import (
    OPS,
    QUICK_SIZES,
    OursBench,
    format_mls_table,
    mls_rs_available,
    run_mls_bench,
)


@pytest.fixture(scope="module")
def quick_result() -> dict:
    seen: list[str] = []
    result = run_mls_bench(QUICK_SIZES, quick=True, progress=seen.append)
    result["_progress"] = seen
    yield result
    gc.collect()


def test_quick_result_structure(quick_result: dict) -> None:
    r = quick_result
    assert r["sizes"] == [2, 8]
    assert r["ops"] == list(OPS)
    assert r["rounds"] == 2
    assert r["handshake"] in ("private", "public")
    by = {(c["size"], c["op"]): c for c in r["cases"]}
    assert set(by) == {(n, op) for n in (2, 8) for op in OPS}
    for c in r["cases"]:
        assert 0 < c["ours_s"] <= c["ours_median_s"]
        assert math.isfinite(c["ours_median_s"])
        if r["mls_rs"]:
            assert 0 < c["mls_rs_s"] <= c["mls_rs_median_s"]
            assert c["ratio"] == pytest.approx(c["ours_s"] / c["mls_rs_s"])
        else:
            assert "ratio" not in c
    assert any("building groups of 8" in line for line in r["_progress"])
    for n in (2, 8):
        for op in ("commit_add", "commit_remove", "commit_update"):
            assert by[(n, op)]["ours_commit_bytes"] > 0
        assert "ours_commit_bytes" not in by[(n, "process_add")]
    # an update commit carries one more path node per level: bigger at 8 than at 2
    assert by[(8, "commit_update")]["ours_commit_bytes"] > by[(2, "commit_update")]["ours_commit_bytes"]


def test_quick_result_compares_with_mls_rs(quick_result: dict) -> None:
    if not mls_rs_available():
        pytest.skip("agentvault-mls-rs-uniffi is not installed")
    assert quick_result["mls_rs"] is True
    assert quick_result["build_s"][8]["mls_rs"] > 0
    by = {(c["size"], c["op"]): c for c in quick_result["cases"]}
    for n in (2, 8):
        for op in ("commit_add", "commit_remove", "commit_update"):
            ours, theirs = by[(n, op)]["ours_commit_bytes"], by[(n, op)]["mls_rs_commit_bytes"]
            # same operation on the same tree: the messages differ only by credential/capability details
            assert abs(ours - theirs) < 0.2 * theirs


def test_quick_table(quick_result: dict) -> None:
    table = format_mls_table(quick_result)
    lines = table.splitlines()
    assert "| operation | n=2 | n=8 |" in lines
    for op in OPS:
        assert any(line.startswith(f"| {op} orange_fast |") for line in lines)
        if quick_result["mls_rs"]:
            assert any(line.startswith(f"| {op} **ratio** |") for line in lines)
    assert "| commit_update |" in table  # the hash-count profile
    assert "Commit message size in bytes" in table


def test_table_formatting_from_known_figures() -> None:
    result = {
        "sizes": [2, 1024],
        "ops": ["commit_update"],
        "rounds": 3,
        "handshake": "public",
        "mls_rs": True,
        "cases": [
            {"size": 2, "op": "commit_update", "ours_s": 0.0015, "mls_rs_s": 0.001, "ratio": 1.5},
            {"size": 1024, "op": "commit_update", "ours_s": 0.25, "mls_rs_s": 0.0125, "ratio": 20.0},
        ],
        "hash_calls": {2: {"commit_update": 5, "process_update": 6}},
    }
    table = format_mls_table(result)
    assert "| commit_update orange_fast | 1.50 | 250 |" in table
    assert "| commit_update mls-rs | 1.00 | 12.5 |" in table
    assert "| commit_update **ratio** | 1.50× | 20.00× |" in table
    assert "| commit_update | 5 | – |" in table
    assert "best of 3 rounds" in table


@pytest.mark.parametrize("bad", [[], [0], [-3]])
def test_bad_sizes_rejected(bad: list) -> None:
    with pytest.raises(ValueError):
        run_mls_bench(bad, quick=True)


def test_bad_rounds_rejected() -> None:
    with pytest.raises(ValueError):
        run_mls_bench([2], rounds=0)


def test_bench_operations_do_what_they_say() -> None:
    """The timed calls really add, remove and update (checked on their results, outside any timing)."""
    b = OursBench(8, private_handshake=True)
    n_before = len(b.committer.members)
    res = b.prepare("process_add")()
    assert [m.identity for m in res.added] == [b"newcomer"]
    joined = b.prepare("join_welcome")()
    assert isinstance(joined, mls.Group)
    assert joined.epoch == b.committer.epoch + 1
    assert len(joined.members) == n_before + 1
    res = b.prepare("process_remove")()
    assert [m.leaf_index for m in res.removed] == [1]
    res = b.prepare("process_update")()
    assert res.sender == 0 and not res.added and not res.removed
    out = b.prepare("commit_update")()
    assert out.welcome is None and b.committer.has_pending_commit


def test_tree_hashes_cached_in_commit_path() -> None:
    """An update commit and its processing hash O(log n) nodes, not the whole tree (63 nodes at 32)."""
    from orange_fast.benchmark.mls import _count_hashes

    b = OursBench(32, private_handshake=False)
    counts = _count_hashes(b)
    depth = 5
    assert counts["commit_update"] <= 3 * depth + 5
    assert counts["process_update"] <= 3 * depth + 5


def test_without_mls_rs_reports_ours_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import orange_fast.benchmark.mls as bench_mls

    monkeypatch.setattr(bench_mls, "mls_rs_available", lambda: False)
    r = bench_mls.run_mls_bench([2], quick=True, rounds=1)
    assert r["mls_rs"] is False
    assert r["handshake"] == "public"
    assert all("mls_rs_s" not in c and "ratio" not in c for c in r["cases"])
    table = bench_mls.format_mls_table(r)
    assert "mls-rs |" not in table and "**ratio**" not in table
    assert "| commit_update orange_fast |" in table
