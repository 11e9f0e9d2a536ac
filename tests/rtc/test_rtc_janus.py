"""E2EE calls through a real Janus VideoRoom (an SFU without keys) in a network namespace."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("aiortc", reason="aiortc is not installed (pip install 'aiortc>=1.16,<1.17')")
pytest.importorskip("orange_fast.sframe._core", reason="SFrame core not built")

from orange_fast.harness.aio import run_bounded  # noqa: E402
from orange_fast.harness.call import sfu_call, tone_for  # noqa: E402

pytestmark = [pytest.mark.timeout(240)]


def _run_call(server: Any, **kwargs: Any) -> dict[str, Any]:
    report = _call_once(server, **kwargs)
    if _few_pictures(report):
        # aiortc's jitter buffer stalls video until it has 128 newer packets (4-8 s here)
        # after a packet it never gets back; on this loaded host that happens in ~1 call
        # of 25, with or without E2EE: one more call, and the test's assertions hold for it
        report = _call_once(server, **kwargs)
    return report


def _call_once(server: Any, **kwargs: Any) -> dict[str, Any]:
    return server.netns.run(lambda: run_bounded(sfu_call(server.url, **kwargs), timeout=150), timeout=200)


def _few_pictures(report: dict[str, Any], minimum: int = 8) -> bool:
    return any(len(r.get("video_indices", ())) < minimum for p in report["participants"] for r in p["remotes"].values())


@pytest.fixture(scope="module")
def vp8_call(janus_server: Any) -> dict[str, Any]:
    return _run_call(janus_server, n=3, seconds=5.0)


def _send_stats(participant: dict[str, Any], kind: str) -> dict[str, Any]:
    return [s for s in participant["e2ee"]["publisher"]["send"] if s["kind"] == kind and s["codec"]][0]


def _recv_stats(participant: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in participant["e2ee"]["subscriber"]["recv"] if r["codec"]]


def _assert_decodes_remote(remote: dict[str, Any], tone: float, minimum: int = 8) -> None:
    indices = remote["video_indices"]
    assert len(indices) >= minimum, f"only {len(indices)} pictures decoded"
    # pictures show their number: decrypted and decoded correctly (a picture whose
    # reference frame was lost on the loaded host may decode to concealment garbage)
    valid = [i for i in indices if i is not None]
    assert len(valid) >= 0.9 * len(indices)
    assert valid == sorted(set(valid))
    assert remote["audio_frames"] >= 25
    assert abs(remote["audio_hz"] - tone) < 5
    assert remote["tone_fraction"] > 0.5


def test_three_participants_decode_each_other(vp8_call: dict[str, Any]) -> None:
    participants = vp8_call["participants"]
    assert len(participants) == 3
    for p in participants:
        assert sorted(p["remotes"]) == sorted(str(q["index"]) for q in participants if q is not p)
        for remote_index, remote in p["remotes"].items():
            _assert_decodes_remote(remote, tone_for(int(remote_index)))
        for stats in _recv_stats(p):
            assert stats["decrypted"] > 0
            assert stats["dropped"].get("auth", 0) == 0


def test_keyless_subscriber_decodes_nothing(vp8_call: dict[str, Any]) -> None:
    observer = vp8_call["keyless_observer"]
    assert observer["decoded_video_frames"] == 0
    assert observer["decoded_audio_frames"] == 0
    dropped = sum(r["dropped"].get("unknown_key", 0) for r in observer["e2ee"]["recv"] if r["codec"])
    assert dropped >= 50


def test_plain_subscriber_sees_only_ciphertext(vp8_call: dict[str, Any]) -> None:
    plain = vp8_call["plain_observer"]
    assert plain["valid_video_frames"] == 0
    assert plain["max_tone_fraction"] < 0.2  # no participant's tone in what it decoded
    view = vp8_call["sfu_view"]
    assert view["captured_payloads"] >= 50
    assert view["plaintext_windows_checked"] >= 50
    assert view["plaintext_windows_found"] == 0
    # the SFU forwards the senders' SFrame ciphertext unchanged
    assert view["identical_to_sender_ciphertext"] >= 0.95 * view["captured_payloads"]


def test_keyframe_request_storm_is_bounded(vp8_call: dict[str, Any]) -> None:
    """The plain observer asks for a keyframe on every undecodable frame and Janus relays
    the requests; each sender honours at most about one per second."""
    elapsed = vp8_call["elapsed"]
    received = honoured = 0
    for p in vp8_call["participants"]:
        video = _send_stats(p, "video")
        received += video["keyframe_requests_received"]
        honoured += video["keyframe_requests_honoured"]
        # setup (subscriptions arriving one by one) plus one per second of media
        assert video["keyframe_requests_honoured"] <= elapsed + 5
    assert received > honoured
    keyless = [r for r in vp8_call["keyless_observer"]["e2ee"]["recv"] if r["kind"] == "video" and r["codec"]]
    for r in keyless:
        assert r["keyframe_requests_sent"] <= elapsed + 3
        assert r["keyframe_requests_suppressed"] > r["keyframe_requests_sent"]


def test_h264_through_janus(janus_server: Any) -> None:
    report = _run_call(janus_server, n=2, seconds=4.0, videocodec="h264", keyless_observer=False)
    for p in report["participants"]:
        for remote_index, remote in p["remotes"].items():
            _assert_decodes_remote(remote, tone_for(int(remote_index)))
    view = report["sfu_view"]
    assert report["plain_observer"]["valid_video_frames"] == 0
    assert view["captured_payloads"] >= 30 and view["plaintext_windows_found"] == 0


def test_leave_mid_call(janus_server: Any) -> None:
    report = _run_call(janus_server, n=3, seconds=4.5, leave_after=2.0, keyless_observer=False, plain_observer=False)
    stay, leaver = report["participants"][:2], report["participants"][2]
    for p in stay:
        other = str(1 - p["index"])
        indices = [i for i in p["remotes"][other]["video_indices"] if i is not None]
        assert len(indices) >= 15
        assert max(b - a for a, b in zip(indices, indices[1:])) <= 5  # no gap across the epoch change
        # nobody lost a frame at the leave: no keyframe forced, no frame dropped by a stayer
        assert _send_stats(p, "video")["keyframes_forced_by_key_change"] == 0
    for p in stay:  # (the leaver stops publishing: a stayer's tracks drop nothing at all)
        for stats in _recv_stats(p):
            assert stats["dropped"] == {}, stats
    # the removed participant decodes nothing sent under the new epoch
    for p in stay:
        video = _send_stats(p, "video")
        old_kid = min(video["encrypted_by_kid"], key=int)
        sent_old = video["encrypted_by_kid"][old_kid]
        assert len(video["encrypted_by_kid"]) == 2
        seen = [i for i in leaver["remotes"][str(p["index"])]["video_indices"] if i is not None]
        assert seen and max(seen) < sent_old
    dropped = sum(r["dropped"].get("unknown_key", 0) for r in _recv_stats(leaver))
    assert dropped > 0


def test_join_mid_call(janus_server: Any) -> None:
    report = _run_call(janus_server, n=2, seconds=5.0, join_after=1.5, keyless_observer=False, plain_observer=False)
    assert report["join"]["index"] == 2
    participants = {p["index"]: p for p in report["participants"]}
    assert sorted(participants) == [0, 1, 2]
    # the newcomer decodes everyone, and everyone decodes the newcomer
    for index, p in participants.items():
        assert sorted(p["remotes"]) == sorted(str(i) for i in participants if i != index)
        for remote_index, remote in p["remotes"].items():
            _assert_decodes_remote(remote, tone_for(int(remote_index)), minimum=8)
    # media between the first two continues across the epoch change without a gap
    for index in (0, 1):
        indices = [i for i in participants[index]["remotes"][str(1 - index)]["video_indices"] if i is not None]
        assert len(indices) >= 20
        assert max(b - a for a, b in zip(indices, indices[1:])) <= 5
        video = _send_stats(participants[index], "video")
        assert video["keyframes_forced_by_key_change"] == 1 and len(video["encrypted_by_kid"]) == 2
    # the newcomer only ever held the new epoch's keys
    new_kids = {str(participants[i]["send_kid"]) for i in (0, 1)}
    for stats in _recv_stats(participants[2]):
        assert set(stats["decrypted_by_kid"]) <= new_kids
