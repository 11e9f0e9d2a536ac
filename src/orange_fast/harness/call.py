"""An N-party E2EE call through the Janus VideoRoom, with a keyless and a plain observer.

Used by the Janus tests and the ``orange-fast call`` demo.  Each participant
publishes a numbered video track and a tone (participant ``i`` plays
``440 + 110*i`` Hz) and subscribes to everyone else; the report says, per
participant and remote, how many pictures decoded with the right content and which
tone was heard.  A keyless observer (hooks, no keys) shows that the SFU path alone
decodes nothing; a plain observer (no hooks) records what the SFU forwards, which is
compared with what the senders encrypted (same bytes) and what they encoded (no
plaintext substring).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCRtpSender

from ..rtc import compat
from .churn import ChurnPlan, churn_report, run_churn
from .janus import JanusClient
from ..rtc.keys import FrameKeys, NoFrameKeys, StaticFrameKeys
from .media import FrameSink, NumberedVideoTrack, ToneAudioTrack
from ..rtc.peer import PeerProtection, enable_e2ee
from .room import create_room, publish, subscribe
from ..rtc.transition import TransitionPolicy

__all__ = ["ChurnPlan", "sfu_call", "tone_for"]

logger = logging.getLogger(__name__)

PROBE = 16  # length of the plaintext windows searched for in forwarded payloads


def tone_for(index: int) -> float:
    """The tone participant ``index`` plays."""
    return 440.0 + 110.0 * index


@dataclass
class _Member:
    index: int
    keys: FrameKeys
    client: JanusClient
    publisher: RTCPeerConnection | None = None
    pub_e2ee: PeerProtection | None = None
    subscribers: list[RTCPeerConnection] = field(default_factory=list)
    sub_e2ee: list[PeerProtection] = field(default_factory=list)
    feed: int | None = None
    video: NumberedVideoTrack | None = None
    audio: ToneAudioTrack | None = None
    sinks: list[tuple[int, FrameSink]] = field(default_factory=list)  # (feed, sink)
    hooks: list[tuple[int, Any]] = field(default_factory=list)  # (feed, ReceiverProtection)

    def recv_stats(self) -> list[dict[str, Any]]:
        return [r for e in self.sub_e2ee for r in e.stats()["recv"]]


class _Recorder:
    """Records senders' plaintext probes/ciphertexts and a plain observer's payloads."""

    def __init__(self) -> None:
        self.ciphertexts: set[bytes] = set()
        self.probes: list[bytes] = []
        self.captured: list[tuple[str, bytes]] = []

    def wrap_sender(self, hook: Any) -> None:
        original: Callable[..., Any] = hook.protect
        original_nals: Callable[..., Any] = hook.protect_nals

        def protect(transform: Any, kid: Any, frame: bytes) -> Any:
            out = original(transform, kid, frame)
            if out is not None:
                self.ciphertexts.add(bytes(out))
                if len(frame) >= 2 * PROBE:
                    self.probes.append(bytes(frame[PROBE : 2 * PROBE]))
            return out

        def protect_nals(transform: Any, kid: Any, au: bytes) -> Any:
            out = original_nals(transform, kid, au)
            if out:
                self.ciphertexts.add(b"".join(b"\x00\x00\x00\x01" + n for n in out))
                if len(au) >= 3 * PROBE:
                    self.probes.append(bytes(au[2 * PROBE : 3 * PROBE]))
            return out

        hook.protect = protect
        hook.protect_nals = protect_nals

    def wrap_plain_receiver(self, receiver: Any) -> None:
        queue = getattr(receiver, compat.RECEIVER_QUEUE_SLOT)
        original_put = queue.put

        def put(item: Any, block: bool = True, timeout: float | None = None) -> None:
            if item is not None:
                codec, frame = item
                self.captured.append((codec.mimeType.lower(), bytes(frame.data)))
            original_put(item, block, timeout)

        queue.put = put

    def report(self) -> dict[str, Any]:
        matched = sum(1 for _, payload in self.captured if payload in self.ciphertexts)
        leaks = sum(1 for _, payload in self.captured for probe in self.probes if probe in payload)
        return {
            "captured_payloads": len(self.captured),
            "identical_to_sender_ciphertext": matched,
            "plaintext_windows_checked": len(self.probes),
            "plaintext_windows_found": leaks,
            "sample": self.captured[len(self.captured) // 2][1][:24].hex() if self.captured else "",
        }


def _sender_index(keys: FrameKeys) -> int | None:
    """The KID sender index of a participant's own frames: a static provider's index, or a
    session client's MLS leaf (from its roster); ``None`` if unknown."""
    if isinstance(keys, StaticFrameKeys):
        return keys.index
    client_id = getattr(keys, "client_id", None)
    for entry in getattr(keys, "roster", ()):
        if entry.identity == client_id:
            return int(entry.leaf_index)
    return None


def _prefer(pc: RTCPeerConnection, kind: str, mime: str) -> None:
    for t in pc.getTransceivers():
        if t.kind == kind:
            t.setCodecPreferences(
                [c for c in RTCRtpSender.getCapabilities(kind).codecs if c.mimeType.lower() == mime]
            )


async def sfu_call(
    url: str,
    *,
    n: int = 3,
    seconds: float = 4.0,
    videocodec: str = "vp8",
    keys: list[FrameKeys] | None = None,
    keyless_observer: bool = True,
    plain_observer: bool = True,
    leave_after: float | None = None,
    join_after: float | None = None,
    vp8_clear_header: bool = False,
    room: int | None = None,
    fps: int = 15,
    churn: ChurnPlan | None = None,
    transitions: TransitionPolicy | None = None,
    guests: Any = None,
) -> dict[str, Any]:
    """Run the call (inside the SFU's namespace) and return a JSON-friendly report.

    ``leave_after``: seconds after which the last participant leaves: the others move
    to a new epoch without it and it stops publishing; its subscription stays open to
    show that it cannot decrypt new frames.  ``join_after``: seconds after which a new
    participant (index ``n``) joins: everyone moves to a new epoch that includes it,
    it publishes and subscribes, and the others subscribe to it.  (Both need the
    default static keys.)  ``churn``: joins, leaves and self-updates at the plan's times
    (static keys; the report gets ``churn``: per change and pair of members present on both
    sides, what was sent and decoded around it; see :func:`.churn.churn_report`).
    ``transitions``: the hooks' epoch-change policy (default: hold, keyframes on joins).
    ``guests``: participants that are not aiortc (browsers, :mod:`.browser`): an object with
    ``async start(room, members) -> {feed: index}`` (called once the room exists, with the aiortc
    members' list; they publish and subscribe themselves, the members here subscribe to their
    feeds) and ``async report() -> list`` (the report's ``guests``, read at the end of the media
    phase).
    """
    if n < 1 or n + (getattr(guests, "k", 0) if guests is not None else 0) < 2:
        raise ValueError("a call needs at least 2 participants (one of them aiortc)")
    if (leave_after is not None or join_after is not None or churn is not None) and keys is not None:
        raise ValueError("leave/join scenarios use the built-in static keys")
    room = room if room is not None else 100000 + secrets.randbelow(800000)
    secret = secrets.token_bytes(32)
    group = n + 1 + (sum(1 for _, k in churn.events if k == "join") if churn else 0)
    if keys is None:
        keys = [StaticFrameKeys(i, group, secret, members=set(range(n))) for i in range(n)]
    mime = {"vp8": "video/vp8", "h264": "video/h264"}[videocodec]
    # Janus bundles every stream on one transport; BALANCED would start one per media kind
    config = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    opts: dict[str, Any] = {"vp8_clear_header": vp8_clear_header, "transitions": transitions}
    recorder = _Recorder()
    members = [_Member(i, keys[i], JanusClient(url)) for i in range(n)]
    observers: dict[str, _Member] = {}
    if keyless_observer:
        observers["keyless"] = _Member(-1, NoFrameKeys(), JanusClient(url))
    if plain_observer:
        observers["plain"] = _Member(-2, NoFrameKeys(), JanusClient(url))
    everyone = members + list(observers.values())
    report: dict[str, Any] = {"room": room, "videocodec": videocodec, "participants": []}

    async def start_publishing(m: _Member) -> None:
        m.publisher = RTCPeerConnection(config)
        m.pub_e2ee = enable_e2ee(m.publisher, m.keys, **opts)
        m.video, m.audio = NumberedVideoTrack(fps), ToneAudioTrack(tone_for(m.index))
        m.publisher.addTransceiver(m.video, direction="sendonly")
        m.publisher.addTransceiver(m.audio, direction="sendonly")
        _prefer(m.publisher, "video", mime)
        for hook in m.pub_e2ee.senders:
            recorder.wrap_sender(hook)
        _, m.feed = await publish(m.client, room, m.publisher, f"p{m.index}")

    async def start_subscription(m: _Member, wanted: list[int]) -> None:
        pc = RTCPeerConnection(config)
        m.subscribers.append(pc)
        if m.index != -2:
            m.sub_e2ee.append(enable_e2ee(pc, m.keys, **opts))
        _, mids = await subscribe(m.client, room, pc, wanted)
        for t in pc.getTransceivers():
            if t.mid in mids:
                feed = mids[t.mid]
                m.sinks.append((feed, FrameSink(t.receiver.track)))
                if m.index == -2:
                    recorder.wrap_plain_receiver(t.receiver)
                hook = getattr(t.receiver, "_orange_fast_e2ee", None)
                if hook is not None:
                    m.hooks.append((feed, hook))
                    publisher = next((p for p in members if p.index == feeds.get(feed)), None)
                    sender = _sender_index(publisher.keys) if publisher is not None else None
                    if sender is not None and callable(getattr(m.keys, "sender_of", None)):
                        # bind the track to the member the room says it carries (issue 9, finding 5)
                        hook.bind_sender(sender)

    feeds: dict[int, int] = {}

    async def join(index: int, epoch: int, present: set[int]) -> _Member:
        joiner = _Member(
            index, StaticFrameKeys(index, group, secret, epoch=epoch, members=present | {index}), JanusClient(url)
        )
        members.append(joiner)
        everyone.append(joiner)
        await joiner.client.connect()
        await start_publishing(joiner)
        assert joiner.feed is not None
        feeds[joiner.feed] = index
        await start_subscription(joiner, [f for f, i in feeds.items() if i in present])
        for m in members[:-1]:
            if m.index in present:
                await start_subscription(m, [joiner.feed])
        for o in observers.values():
            await start_subscription(o, [joiner.feed])
        return joiner

    try:
        for m in everyone:
            await m.client.connect()
        await create_room(members[0].client, room, videocodec=videocodec)
        if guests is not None:
            feeds.update(await guests.start(room, members))
        for m in members:
            await start_publishing(m)
        feeds.update({m.feed: m.index for m in members if m.feed is not None})
        for m in everyone:
            await start_subscription(m, [f for f, i in feeds.items() if i != m.index])
        start = time.monotonic()
        logger.debug("call set up: %d participants, room %d", n, room)
        events = sorted(
            [(t, kind) for t, kind in ((leave_after, "leave"), (join_after, "join")) if t is not None]
        )
        for at, kind in events:
            await asyncio.sleep(max(0.0, at - (time.monotonic() - start)))
            present = {m.index for m in members if m.publisher is not None and m.index not in report.get("left", [])}
            if kind == "leave":
                leaver = members[n - 1]
                stay = present - {leaver.index}
                epoch = max(k.epochs[-1] for k in (m.keys for m in members) if isinstance(k, StaticFrameKeys)) + 1
                for m in members:
                    if m.index in stay:
                        m.keys.advance_epoch(epoch, members=stay)  # type: ignore[attr-defined]
                assert leaver.publisher is not None and leaver.video is not None
                report["leave"] = {"index": leaver.index, "epoch": epoch, "video_frames_sent": leaver.video.sent}
                report.setdefault("left", []).append(leaver.index)
                await leaver.publisher.close()
            else:
                joiner_index = n
                everyone_now = present | {joiner_index}
                epoch = max(k.epochs[-1] for k in (m.keys for m in members) if isinstance(k, StaticFrameKeys)) + 1
                for m in members:
                    if m.index in present:
                        m.keys.advance_epoch(epoch, members=everyone_now)  # type: ignore[attr-defined]
                await join(joiner_index, epoch, present)
                report["join"] = {"index": joiner_index, "epoch": epoch, "at": round(time.monotonic() - start, 3)}
        churn_changes = await run_churn(churn, members, feeds, start, join) if churn is not None else None
        await asyncio.sleep(max(0.0, seconds - (time.monotonic() - start)))
        elapsed = time.monotonic() - start
        logger.debug("media phase over after %.2f s", elapsed)
        for m in everyone:
            for _, sink in m.sinks:
                await sink.stop()
        report["elapsed"] = round(elapsed, 3)
        if guests is not None:
            report["guests"] = await guests.report()
            # plaintext windows of the guests' frames, searched for in what the SFU forwards
            recorder.probes.extend(getattr(guests, "plaintext_probes", []))
        if churn is not None and churn_changes is not None:
            report["churn"] = churn_report(churn, churn_changes, members, feeds)
        for m in members:
            entry: dict[str, Any] = {
                "index": m.index,
                "send_kid": m.keys.send_kid(),
                "frames_sent": {"video": m.video.sent if m.video else 0, "audio": m.audio.sent if m.audio else 0},
                "remotes": {},
                "e2ee": {
                    "publisher": m.pub_e2ee.stats() if m.pub_e2ee else {"send": [], "recv": []},
                    "subscriber": {"send": [], "recv": m.recv_stats()},
                },
            }
            for feed, sink in m.sinks:
                slot = entry["remotes"].setdefault(str(feeds.get(feed)), {})
                if sink.kind == "video":
                    slot["video_frames"] = sink.frames
                    slot["video_valid"] = len(sink.valid_indices)
                    slot["video_indices"] = sink.indices
                else:
                    slot["audio_frames"] = sink.frames
                    slot["audio_hz"] = round(sink.frequency(), 1) if sink.frames else 0.0
                    remote = feeds.get(feed)
                    fraction = sink.tone_fraction(tone_for(remote)) if remote is not None else 0.0
                    slot["tone_fraction"] = round(fraction, 3)
            report["participants"].append(entry)
        for name, m in observers.items():
            report[f"{name}_observer"] = {
                "decoded_video_frames": sum(s.frames for _, s in m.sinks if s.kind == "video"),
                "valid_video_frames": sum(len(s.valid_indices) for _, s in m.sinks if s.kind == "video"),
                "decoded_audio_frames": sum(s.frames for _, s in m.sinks if s.kind == "audio"),
                "heard_hz": [round(s.frequency(), 1) for _, s in m.sinks if s.kind == "audio" and s.frames],
                # the largest share of any participant's tone in what it heard (garbage: ~0)
                "max_tone_fraction": max(
                    [s.tone_fraction(tone_for(i)) for _, s in m.sinks if s.kind == "audio" for i in range(n + 1)],
                    default=0.0,
                ),
                "e2ee": {"recv": m.recv_stats()} if m.sub_e2ee else None,
            }
        if plain_observer:
            report["sfu_view"] = recorder.report()
        return report
    finally:
        for m in everyone:
            for _, sink in m.sinks:
                await sink.stop()
            for pc in [m.publisher, *m.subscribers]:
                if pc is not None:
                    # bounded: a peer stuck in shutdown must not hang the whole call
                    await asyncio.wait({asyncio.ensure_future(pc.close())}, timeout=10)
            logger.debug("participant %d: peer connections closed", m.index)
            await m.client.close()
            logger.debug("participant %d: Janus session closed", m.index)
