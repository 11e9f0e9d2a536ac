"""Shared helpers of the rtc tests: a two-peer loopback call with optional E2EE."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender

from orange_fast.rtc import enable_e2ee
from orange_fast.harness.aio import run_bounded
from orange_fast.harness.media import FrameSink, NumberedVideoTrack, ToneAudioTrack

TONE_HZ = 660.0


@dataclass
class CallResult:
    sink: FrameSink
    sender: Any  # PeerProtection
    receiver: Any  # PeerProtection | None
    track: Any
    elapsed: float
    marks: dict[str, Any] = field(default_factory=dict)

    def send_stats(self) -> dict[str, Any]:
        return [s for s in self.sender.stats()["send"] if s["codec"]][0]

    def recv_stats(self) -> dict[str, Any]:
        assert self.receiver is not None
        return [r for r in self.receiver.stats()["recv"] if r["codec"]][0]


async def loopback_call(
    mime: str,
    sender_keys: Any,
    receiver_keys: Any | None,
    *,
    seconds: float = 2.5,
    sender_opts: dict[str, Any] | None = None,
    receiver_opts: dict[str, Any] | None = None,
    during: Callable[[CallResult], Awaitable[None]] | None = None,
) -> CallResult:
    """Call over 127.0.0.1: pc1 sends one track of ``mime``, pc2 receives it.

    ``receiver_keys=None`` leaves pc2 without any hook (it decodes what the wire carries).
    """
    config = RTCConfiguration(iceServers=[])
    pc1, pc2 = RTCPeerConnection(config), RTCPeerConnection(config)
    try:
        e1 = enable_e2ee(pc1, sender_keys, **(sender_opts or {}))
        e2 = enable_e2ee(pc2, receiver_keys, **(receiver_opts or {})) if receiver_keys is not None else None
        kind = mime.split("/")[0]
        track = NumberedVideoTrack() if kind == "video" else ToneAudioTrack(TONE_HZ)
        transceiver = pc1.addTransceiver(track, direction="sendonly")
        transceiver.setCodecPreferences(
            [c for c in RTCRtpSender.getCapabilities(kind).codecs if c.mimeType.lower() == mime.lower()]
        )
        sinks: list[FrameSink] = []
        pc2.on("track", lambda t: sinks.append(FrameSink(t)))
        await pc1.setLocalDescription(await pc1.createOffer())
        await pc2.setRemoteDescription(pc1.localDescription)
        await pc2.setLocalDescription(await pc2.createAnswer())
        await pc1.setRemoteDescription(pc2.localDescription)
        start = time.monotonic()
        for _ in range(100):
            if sinks:
                break
            await asyncio.sleep(0.05)
        assert sinks, "no remote track"
        result = CallResult(sinks[0], e1, e2, track, 0.0)
        if during is not None:
            await during(result)
        remaining = seconds - (time.monotonic() - start)
        if remaining > 0:
            await asyncio.sleep(remaining)
        result.elapsed = time.monotonic() - start
        await sinks[0].stop()
        return result
    finally:
        for pc in (pc1, pc2):
            await asyncio.wait({asyncio.ensure_future(pc.close())}, timeout=10)


def run(coro: Any, timeout: float = 90) -> Any:
    """Run a call with a hard time limit (pytest-timeout's alarm can be swallowed inside asyncio callbacks)."""
    return run_bounded(coro, timeout)
