"""The hooks with the session layer's key provider (orange_fast.session.SessionFrameKeys)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac

import pytest

pytest.importorskip("aiortc", reason="aiortc is not installed (pip install 'aiortc>=1.16,<1.17')")
pytest.importorskip("orange_fast.sframe._core", reason="SFrame core not built")
framekeys = pytest.importorskip("orange_fast.session.framekeys", reason="session layer not available")

from rtc_call_helpers import CallResult, loopback_call, run  # noqa: E402

from orange_fast.rtc import FrameKeys  # noqa: E402

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("loopback_ice")]


def exporter(epoch: int):  # the group's MLS exporter stand-in: same secret for every member
    def export_secret(label: bytes, context: bytes, length: int) -> bytes:
        return hmac.new(b"group-secret-%d" % epoch, label + b"|" + context, hashlib.sha256).digest()[:length]

    return export_secret


def test_session_frame_keys_drive_the_hooks() -> None:
    a, b = framekeys.SessionFrameKeys(), framekeys.SessionFrameKeys()
    assert isinstance(a, FrameKeys)
    a.install(exporter(0), 0, 0, [0, 1], now=0.0)
    b.install(exporter(0), 0, 1, [0, 1], now=0.0)
    kid0 = a.send_kid()

    async def new_epoch(result: CallResult) -> None:
        await asyncio.sleep(1.2)
        b.install(exporter(1), 1, 1, [0, 1], now=1.0)  # receivers first
        a.install(exporter(1), 1, 0, [0, 1], now=1.0)

    result = run(loopback_call("video/VP8", a, b, seconds=3.0, during=new_epoch))
    kid1 = a.send_kid()
    assert kid1 != kid0
    recv = result.recv_stats()
    assert recv["dropped"] == {}
    assert recv["decrypted_by_kid"].get(str(kid0), 0) > 0 and recv["decrypted_by_kid"].get(str(kid1), 0) > 0
    assert result.send_stats()["keyframes_forced_by_key_change"] == 0  # same members: no keyframe needed
    valid = result.sink.valid_indices
    assert len(valid) >= 15 and valid == sorted(set(valid))


def test_session_frame_keys_keyframes_only_for_joins_and_kid_queries() -> None:
    keys = framekeys.SessionFrameKeys()
    assert keys.epochs_ahead(0) is None  # no epoch yet: a frame may be of the first one
    keys.install(exporter(0), 0, 0, [0, 1], now=0.0)
    first = keys.keyframe_generation()
    keys.install(exporter(1), 1, 0, [0, 1], now=1.0)  # self-update
    keys.install(exporter(2), 2, 0, [0], now=2.0)  # leave
    assert keys.keyframe_generation() == first
    keys.install(exporter(3), 3, 0, [0, 2], now=3.0)  # join (leaf 2)
    assert keys.keyframe_generation() == first + 1
    kid = keys.send_kid()
    assert kid is not None and keys.sender_of(kid) == 0
    layout = framekeys.KidLayout()
    assert keys.sender_of(layout.kid(2, 3)) == 2
    assert keys.epochs_ahead(layout.kid(2, 4)) == 1 and keys.epochs_ahead(layout.kid(2, 2)) == 255
    keys.clear()
    keys.install(exporter(9), 9, 0, [0, 2], now=9.0)  # a rejoin after the group was lost
    assert keys.keyframe_generation() == first + 2
