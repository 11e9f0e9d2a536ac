"""The in-process call benchmark runs on real MLS keys and reports sane, self-consistent figures.

Nothing here asserts a time: only structure, positivity, frame counts against the traffic model, every
frame decrypted, and ratios consistent with the figures they come from.
"""

from __future__ import annotations


import pytest

from orange_fast.benchmark.call import CONTENDERS, CallConfig, _fit_max_n, format_call_table, run_call_bench
from orange_fast.benchmark.mlskeys import build_group, kid_for

N_VALUES = (2, 3, 5)
DURATION = 0.3


@pytest.fixture(scope="module")
def result() -> dict:
    seen: list[tuple[float, str]] = []
    res = run_call_bench(CallConfig(participants=N_VALUES, duration=DURATION, rounds=2),
                         progress=lambda f, text: seen.append((f, text)))
    res["_progress"] = seen
    return res


def test_top_level_keys(result: dict) -> None:
    for key in ("openssl", "openssl_static", "config", "api", "results", "realtime", "targets"):
        assert key in result
    assert [r["participants"] for r in result["results"]] == list(N_VALUES)
    assert set(result["api"]) == set(CONTENDERS)
    fractions = [f for f, _ in result["_progress"]]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_every_frame_decrypted_and_counts_match_the_model(result: dict) -> None:
    for r in result["results"]:
        n = r["participants"]
        # each sender: 30 fps video + 50 fps audio for 0.3 s (first frame at a random phase): 9..10 + 15..16
        assert n * (9 + 15) <= r["frames_sent"] <= n * (10 + 16)
        assert r["traffic"]["frames"] == r["frames_sent"]
        assert r["frames_expected_decrypted"] == r["frames_sent"] * (n - 1)
        for name in CONTENDERS:
            c = r["contenders"][name]
            assert c["frames_decrypted"] == r["frames_expected_decrypted"], name
            assert c["decrypt_failures"] == 0, name


def test_figures_positive_and_consistent(result: dict) -> None:
    for r in result["results"]:
        cpu = {}
        for name in CONTENDERS:
            c = r["contenders"][name]
            u = c["cpu_us_per_media_s"]
            assert u["encrypt"] > 0 and u["decrypt"] > 0
            assert u["total"] == pytest.approx(u["encrypt"] + u["decrypt"])
            assert c["core_share"] == pytest.approx(u["total"] / 1e6)
            assert c["frames_per_core_second"] > 0
            lat = c["latency_us"]
            for part in ("encrypt", "decrypt", "total"):
                assert 0 <= lat[part]["p50"] <= lat[part]["p99"]
            assert lat["total"]["p99"] >= lat["decrypt"]["p50"]
            cpu[name] = u["total"]
        ratios = r["ratios"]
        assert all(v > 0 for v in ratios.values())
        assert ratios["cpu_naive_over_ours"] == pytest.approx(cpu["naive"] / cpu["ours"])
        assert ratios["cpu_ours_over_limit"] == pytest.approx(cpu["ours"] / cpu["limit"])
        join = r["join"]
        assert join["total_ms"] > 0 and join["welcome_bytes"] > 0 and join["commit_bytes"] > 0
        assert r["epoch"] == 1  # one commit added everybody


def test_table_mentions_every_n_and_api(result: dict) -> None:
    table = format_call_table(result)
    for n in N_VALUES:
        assert f"\n| {n} |" in table
    assert "decrypt_batch" in table and "naive/ours" in table


def test_mls_keys_follow_rfc9605_layout() -> None:
    # KID = (context << (S+E)) | (index << E) | (epoch mod 2^E), context 0, E = 8 (the session layer's layout)
    assert kid_for(5, 3) == (3 << 8) | 5
    assert kid_for(257, 1) == (1 << 8) | 1
    assert kid_for(0, 0) == 0
    with pytest.raises(ValueError):
        kid_for(-1, 0)
    call = build_group(4)
    # base_key = MLS-Exporter("SFrame 1.0 Base Key", "", Nk), the same for every member
    exported = {g.export_secret(b"SFrame 1.0 Base Key", b"", 16) for g in call.groups}
    assert exported == {call.base_key}
    assert call.kids == [(g.own_leaf_index << 8) | (call.epoch & 0xFF) for g in call.groups]
    # a participant's Context: its own send key and a receive key per other member; frames cross-decrypt
    ctxs = [call.context(i) for i in range(4)]
    for i, ctx in enumerate(ctxs):
        assert ctx.send_kids() == [call.kids[i]]
        assert sorted(ctx.receive_kids()) == sorted(k for j, k in enumerate(call.kids) if j != i)
    ct = ctxs[1].encrypt(call.kids[1], b"frame")
    assert all(ctxs[j].decrypt(ct) == b"frame" for j in (0, 2, 3))


def test_keys_match_the_session_layer() -> None:
    keys = pytest.importorskip("orange_fast.session.keys")
    call = build_group(3)
    layout = keys.KidLayout()
    for g, kid in zip(call.groups, call.kids):
        assert layout.kid(g.own_leaf_index, call.epoch) == kid


def test_fit_of_the_largest_real_time_call() -> None:
    a, b = 100.0, 1000.0
    pts = [(n, a + b * (n - 1)) for n in (2, 4, 8, 16)]
    fit = _fit_max_n(pts)
    assert fit["a"] == pytest.approx(a) and fit["b"] == pytest.approx(b)
    per = max(n for n in range(1, 5000) if a + b * (n - 1) <= 1e6)
    whole = max(n for n in range(1, 5000) if n * (a + b * (n - 1)) <= 1e6)
    assert fit["max_n_per_participant"] == per
    assert fit["max_n_whole_call"] == whole


def test_bad_config() -> None:
    with pytest.raises(ValueError):
        run_call_bench(CallConfig(participants=(1,)))
    with pytest.raises(ValueError):
        run_call_bench(CallConfig(participants=(2,), rounds=0))
