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
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCRtpSender

from . import compat
from .janus import JanusClient
from .keys import FrameKeys, NoFrameKeys, StaticFrameKeys
from .media import FrameSink, NumberedVideoTrack, ToneAudioTrack
from .peer import PeerProtection, enable_e2ee
from .room import create_room, publish, subscribe
from .stats import percentile
from .transition import TransitionPolicy

__all__ = ["ChurnPlan", "sfu_call", "tone_for"]

logger = logging.getLogger(__name__)

PROBE = 16  # length of the plaintext windows searched for in forwarded payloads


def tone_for(index: int) -> float:
    """The tone participant ``index`` plays."""
    return 440.0 + 110.0 * index


@dataclass(frozen=True)
class ChurnPlan:
    """Epoch changes during a call (``--churn``): joins, leaves and self-updates at given times.

    Each member processes each commit ``U(0, jitter)`` seconds after it is issued, and member
    ``slow`` another ``delay`` seconds later (a slow handshake path): senders switch keys as
    soon as they have processed it, so receivers see frames of an epoch they have not
    reached.  ``window`` seconds after each change the counters are sampled again.
    """

    events: tuple[tuple[float, str], ...]
    delay: float = 0.0
    slow: int = 1
    jitter: float = 0.03
    window: float = 1.2
    seed: int = 13

    @classmethod
    def default(cls, seconds: float, *, delay: float = 0.0) -> ChurnPlan:
        """Seven changes (join, update, leave, update, join, leave, update) spread over ``seconds``."""
        if seconds < 8:
            raise ValueError("a churn call needs at least 8 seconds")
        if not 0 <= delay <= 1.0:
            raise ValueError("the injected delay must be within 0..1 s")
        kinds = ("join", "update", "leave", "update", "join", "leave", "update")
        step = (seconds - 1.5 - 1.4) / len(kinds)
        return cls(tuple((round(1.5 + i * step, 3), k) for i, k in enumerate(kinds)), delay=delay)


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
) -> dict[str, Any]:
    """Run the call (inside the SFU's namespace) and return a JSON-friendly report.

    ``leave_after``: seconds after which the last participant leaves: the others move
    to a new epoch without it and it stops publishing; its subscription stays open to
    show that it cannot decrypt new frames.  ``join_after``: seconds after which a new
    participant (index ``n``) joins: everyone moves to a new epoch that includes it,
    it publishes and subscribes, and the others subscribe to it.  (Both need the
    default static keys.)  ``churn``: joins, leaves and self-updates at the plan's times
    (static keys; the report gets ``churn``: per change and pair of members present on both
    sides, what was sent and decoded around it; see :func:`_churn_report`).
    ``transitions``: the hooks' epoch-change policy (default: hold, keyframes on joins).
    """
    if n < 2:
        raise ValueError("a call needs at least 2 participants")
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
        churn_changes = await _run_churn(churn, members, feeds, start, join) if churn is not None else None
        await asyncio.sleep(max(0.0, seconds - (time.monotonic() - start)))
        elapsed = time.monotonic() - start
        logger.debug("media phase over after %.2f s", elapsed)
        for m in everyone:
            for _, sink in m.sinks:
                await sink.stop()
        report["elapsed"] = round(elapsed, 3)
        if churn is not None and churn_changes is not None:
            report["churn"] = _churn_report(churn, churn_changes, members, feeds)
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


# --------------------------------------------------------------------------- churn (--churn)


def _sample(members: list[_Member], feeds: dict[int, int]) -> dict[str, Any]:
    """The counters now: frames each member sent; per (receiver, sender, kind) frames decoded,
    the receive hook's drops by reason and held frames; each sender's forced keyframes."""
    sent = {m.index: (m.video.sent if m.video else 0, m.audio.sent if m.audio else 0) for m in members}
    recv: dict[tuple[int, int, str], dict[str, Any]] = {}
    for m in members:
        for feed, sink in m.sinks:
            if feed in feeds:
                recv.setdefault((m.index, feeds[feed], sink.kind), {})["frames"] = sink.frames
        for feed, hook in m.hooks:
            if feed in feeds:
                snap = hook.stats.snapshot()
                slot = recv.setdefault((m.index, feeds[feed], snap["kind"]), {})
                slot["dropped"] = dict(snap["dropped"])
    keyframes = {
        m.index: sum(s["keyframes_forced_by_key_change"] for s in (m.pub_e2ee.stats()["send"] if m.pub_e2ee else []))
        for m in members
    }
    return {"sent": sent, "recv": recv, "keyframes": keyframes}


def _sample_after(change: dict[str, Any], members: list[_Member], feeds: dict[int, int]) -> None:
    change["after"] = _sample(members, feeds)


def _advance(keys: FrameKeys, epoch: int, present: frozenset[int]) -> None:
    try:
        keys.advance_epoch(epoch, members=set(present))  # type: ignore[attr-defined]
    except ValueError:  # pragma: no cover - a member that is already past this epoch
        logger.warning("member could not advance to epoch %d", epoch)


def _expire(keys: FrameKeys, epoch: int) -> None:
    try:
        keys.expire_epoch(epoch)  # type: ignore[attr-defined]
    except ValueError:  # already gone (same low bits) or still current
        pass


async def _run_churn(
    plan: ChurnPlan,
    members: list[_Member],
    feeds: dict[int, int],
    start: float,
    join: Callable[[int, int, set[int]], Any],
    grace: float = 2.0,
) -> list[dict[str, Any]]:
    """Apply ``plan``'s changes: every present member processes each commit after its own delay."""
    loop = asyncio.get_running_loop()
    rng = random.Random(plan.seed)
    present = {m.index for m in members}
    next_index = max(present) + 1
    epoch = max(k.epochs[-1] for k in (m.keys for m in members) if isinstance(k, StaticFrameKeys))
    changes: list[dict[str, Any]] = []
    for at, kind in plan.events:
        await asyncio.sleep(max(0.0, at - (time.monotonic() - start)))
        change: dict[str, Any] = {"kind": kind, "at": round(time.monotonic() - start, 3)}
        change["before"] = _sample(members, feeds)
        epoch += 1
        after = set(present)
        if kind == "join":
            actor = next_index
            next_index += 1
            after.add(actor)
        elif kind == "leave":
            actor = max(present - {0, plan.slow})
            after.discard(actor)
        else:
            actor = sorted(present)[len(changes) % len(present)]
        change.update({"epoch": epoch, "member": actor, "present_before": sorted(present), "present_after": sorted(after)})
        for m in members:
            if m.index in after and m.index in present:
                delay = rng.uniform(0.0, plan.jitter) + (plan.delay if m.index == plan.slow else 0.0)
                loop.call_later(delay, _advance, m.keys, epoch, frozenset(after))
                loop.call_later(delay + grace, _expire, m.keys, epoch - 1)
        loop.call_later(plan.window, _sample_after, change, members, feeds)
        changes.append(change)
        if kind == "leave":
            leaver = next(m for m in members if m.index == actor)
            if leaver.publisher is not None:
                await asyncio.wait({asyncio.ensure_future(leaver.publisher.close())}, timeout=5)
        elif kind == "join":
            await join(actor, epoch, present)
        present = after
    await asyncio.sleep(max(0.0, plan.window + 0.2 - (time.monotonic() - start - changes[-1]["at"])))
    return changes


def _churn_report(
    plan: ChurnPlan, changes: list[dict[str, Any]], members: list[_Member], feeds: dict[int, int]
) -> dict[str, Any]:
    """Per change and per ordered pair of members present on both sides of it: the frames the
    sender sent in the window (change time to ``window`` s later), the frames the receiver
    decoded of them, and the frames the receive hook dropped; and the totals (``transitions``).

    Video "decoded" counts the pictures whose drawn index lies in the sender's window;
    audio "decoded" the frames the receiver's track delivered during the window.
    """
    by_index = {m.index: m for m in members}
    lost = {"video": 0, "audio": 0}
    missing_pictures = 0
    dropped: dict[str, int] = {}
    keyframes = 0
    rows = []
    for change in changes:
        before, after = change["before"], change.get("after") or change["before"]
        stayers = sorted(set(change["present_before"]) & set(change["present_after"]))
        pairs = []
        for s in stayers:
            for r in stayers:
                if r == s:
                    continue
                entry: dict[str, Any] = {"sender": s, "receiver": r}
                for k, kind in enumerate(("video", "audio")):
                    b, a = before["recv"].get((r, s, kind), {}), after["recv"].get((r, s, kind), {})
                    s0, s1 = before["sent"].get(s, (0, 0))[k], after["sent"].get(s, (0, 0))[k]
                    drops = {
                        reason: n - b.get("dropped", {}).get(reason, 0)
                        for reason, n in a.get("dropped", {}).items()
                        if n - b.get("dropped", {}).get(reason, 0) > 0
                    }
                    if kind == "video":
                        sink = next((sk for f, sk in by_index[r].sinks if feeds.get(f) == s and sk.kind == "video"), None)
                        seen = set(sink.valid_indices) if sink is not None else set()
                        missing = [i for i in range(s0, s1) if i not in seen]
                        decoded = (s1 - s0) - len(missing)
                        missing_pictures += len(missing)
                    else:
                        missing = []
                        decoded = a.get("frames", 0) - b.get("frames", 0)
                    entry[kind] = {"sent": s1 - s0, "decoded": decoded, "dropped": sum(drops.values())}
                    if missing:
                        entry[kind]["missing"] = missing[:32]
                    lost[kind] += sum(drops.values())
                    for reason, n in drops.items():
                        dropped[reason] = dropped.get(reason, 0) + n
                pairs.append(entry)
        forced = sum(after["keyframes"].get(i, 0) - before["keyframes"].get(i, 0) for i in after["keyframes"])
        keyframes += forced
        rows.append(
            {key: change[key] for key in ("kind", "at", "epoch", "member", "present_before", "present_after")}
            | {"keyframes_forced": forced, "pairs": pairs}
        )
    holds = [v for m in members for _, h in m.hooks for v in h.stats.snapshot()["hold_ms"]]
    removed = _decoded_after_removal(changes, by_index)
    return {
        "plan": {"events": [list(e) for e in plan.events], "delay_ms": round(plan.delay * 1000), "slow": plan.slow,
                 "jitter_ms": round(plan.jitter * 1000), "window_s": plan.window},
        "changes": rows,
        "transitions": {
            "epoch_changes": len(changes),
            "frames_lost": lost,
            "keyframes_forced": keyframes,
            "dropped": dropped,
            "pictures_missing": missing_pictures,
            "held_frames": len(holds),
            "hold_ms_p50": round(percentile(holds, 0.5), 1),
            "hold_ms_p99": round(percentile(holds, 0.99), 1),
            "removed_decoded_after_removal": removed,
        },
    }


def _decoded_after_removal(changes: list[dict[str, Any]], by_index: dict[int, _Member]) -> int:
    """Frames a removed member decrypted under the KID of its removal epoch or any later one."""
    total = 0
    for change in changes:
        if change["kind"] != "leave":
            continue
        leaver = by_index[change["member"]]
        layout = leaver.keys.layout  # type: ignore[attr-defined]
        later = {layout.low_bits(c["epoch"]) for c in changes if c["epoch"] >= change["epoch"]}
        for _, hook in leaver.hooks:
            for kid, n in hook.stats.snapshot()["decrypted_by_kid"].items():
                if layout.epoch_bits_of(int(kid)) in later:
                    total += n
    return total
