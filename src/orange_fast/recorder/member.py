"""The recorder: a member of the call's MLS group that subscribes to every publisher and records.

:class:`Recorder` has two halves that may run in different threads (the Janus harness puts
the SFU in a network namespace that the delivery service is not in):

* the **session** half, on a private event-loop thread: a
  :class:`~orange_fast.session.client.SessionClient` joins the room through the designated
  committer like any participant, keeps the SFrame keys current, and leaves with BYE
  (:meth:`join`, :meth:`leave`; blocking calls);
* the **media** half, :meth:`record`, a coroutine for the caller's loop: it polls the Janus
  VideoRoom for publishers, subscribes to each new feed with its own aiortc peer connection
  protected by the E2EE hooks (keys from the session client), writes what decrypts and
  decodes to one file per feed (:class:`~.writer.RemoteRecording`), and closes the
  subscriptions of feeds that went away.

Files are named from the MLS identity of the sender that the frames' KIDs name
(:mod:`.naming`), never from the SFU's feed ids or display names.  The recorder publishes
nothing; it is listed in the roster, so the safety number it shows is the one everybody in
the call compares.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .naming import safe_stem, sender_leaf, unique_path

__all__ = ["Recorder", "RecordingError", "format_summary", "listed_publishers"]

logger = logging.getLogger(__name__)


class RecordingError(Exception):
    """The recorder could not join the room or reach the SFU (the message says why)."""


def listed_publishers(data: Any) -> set[int]:
    """The feed ids a VideoRoom ``listparticipants`` answer lists as publishing.

    The SFU is not trusted: entries that are not well-formed are skipped.

    Raises:
        TypeError: the answer is not an object with a list of participants.
    """
    participants = data.get("participants", []) if isinstance(data, dict) else None
    if not isinstance(participants, list):
        raise TypeError("malformed participant list")
    return {
        p["id"] for p in participants
        if isinstance(p, dict) and p.get("publisher") is True and type(p.get("id")) is int
    }


def _unavailable() -> tuple[type[BaseException], ...]:
    from ..harness.errors import JanusError

    # what a failed, timed-out or malformed (hostile) exchange with the SFU raises
    return (JanusError, OSError, asyncio.TimeoutError, ValueError, KeyError, TypeError, AttributeError)


@dataclass
class _Feed:
    """One subscribed publisher (``feed`` is the SFU's id: informational only)."""

    feed: int
    pc: Any
    protection: Any
    handle: Any
    recording: Any
    joined_at: float
    left_at: float | None = None
    identity: str | None = None
    senders: set[str] = field(default_factory=set)


class Recorder:
    """A recording member of one room (see the module docstring).

    Args:
        ds_url: the delivery service (``ws://host:port``).
        room: the session room name.
        token: the room token.
        out_dir: where the files go (created if missing).
        identity: this member's MLS identity (default ``recorder-<random>``).
        session_config: a :class:`~orange_fast.session.client.SessionConfig`.
        on_event: called (on the session thread) with every session event.
        netns: run the session half inside this :class:`~orange_fast.harness.netns.Netns`
            (a delivery service that only listens there, e.g. beside browsers in the Janus harness).
    """

    def __init__(
        self,
        ds_url: str,
        room: str,
        token: bytes,
        out_dir: str,
        *,
        identity: str | None = None,
        session_config: Any = None,
        on_event: Callable[[Any], None] | None = None,
        netns: Any = None,
    ) -> None:
        from ..session.keys import KidLayout

        self.ds_url = ds_url
        self.room = room
        self.out_dir = out_dir
        self.identity = identity or f"recorder-{secrets.token_hex(3)}"
        self._token = token
        self._session_config = session_config
        self._on_event = on_event
        self._netns = netns
        self._layout = KidLayout()  # the session layer's KID layout
        self.client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._feeds: list[_Feed] = []
        self._taken: set[str] = set()
        self._leaf_names: dict[int, str] = {}
        self._events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._files_lock = threading.Lock()
        self._left = False
        self._joined = 0.0
        self.safety_number: str | None = None
        self.roster: list[str] = []
        self.epoch: int | None = None
        self.started: float | None = None
        self.elapsed = 0.0

    def __repr__(self) -> str:
        return f"Recorder(identity={self.identity!r}, room={self.room!r}, feeds={len(self._feeds)})"

    # ------------------------------------------------------------------ session half

    def _run(self, coro: Any, timeout: float) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _run_loop(self) -> None:
        assert self._loop is not None
        if self._netns is not None:
            from ..harness.netns import _enter

            _enter(self._netns.name)
        self._loop.run_forever()

    def join(self, timeout: float = 60.0) -> None:
        """Join the room and wait until the committer has added this member (blocking).

        Raises:
            RecordingError: not in the group after ``timeout`` seconds, or the delivery
                service refused the connection.
        """
        if self._thread is not None:
            raise RecordingError("join() was already called")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="recorder-session", daemon=True)
        self._joined = time.monotonic()
        self._thread.start()
        from ..delivery.errors import DeliveryError

        try:
            self._run(asyncio.wait_for(self._join(timeout), timeout), timeout + 5)
        except (DeliveryError, OSError, ValueError, TimeoutError, asyncio.TimeoutError,
                concurrent.futures.TimeoutError) as exc:
            self._left = True
            if self.client is not None:  # hang up: a JOINED the server may have logged gets its LEFT now
                with contextlib.suppress(Exception):
                    self._run(self.client.leave(timeout=2.0), 5)
            self._stop_loop()
            raise RecordingError(f"could not join room {self.room!r}: {type(exc).__name__}: {exc}") from None

    async def _join(self, timeout: float) -> None:
        from ..session.client import SessionClient, SessionConfig

        config = self._session_config or SessionConfig(tick_interval=0.2)
        self.client = SessionClient(self.ds_url, self.room, self._token, self.identity, config=config,
                                    on_event=self._event)
        await self.client.start()
        await self.client.wait_until(lambda: self.client.in_group and self.client.send_kid() is not None, timeout)
        self._snapshot()

    def _event(self, event: Any) -> None:
        # session thread: remember what to report, and the identity of every leaf seen
        if self._left:
            return  # our own hang-up drops the group: nothing to report about the call
        self._snapshot()
        if event.kind in ("joined", "left", "safety", "lost", "failed"):
            entry = {"event": event.kind, "epoch": event.epoch, "at": round(time.monotonic() - self._joined, 3)}
            if event.identity:
                entry["identity"] = event.identity
            if event.kind == "safety":
                entry["safety_number"] = event.detail
            with self._lock:
                if len(self._events) < 1000:
                    self._events.append(entry)
        if self._on_event is not None:
            self._on_event(event)

    def _snapshot(self) -> None:
        client = self.client
        if client is None or not client.in_group:
            return
        roster = client.roster
        with self._lock:
            self.roster = [r.identity for r in roster]
            self.epoch = client.epoch
            self.safety_number = client.safety.text if client.safety else None
            for r in roster:
                self._leaf_names[r.leaf_index] = r.identity

    def wait_until(self, predicate: Callable[[Any], bool], timeout: float) -> None:
        """Wait (blocking) until ``predicate(session_client)`` holds."""
        self._run(self.client.wait_until(lambda: predicate(self.client), timeout), timeout + 5)
        self._snapshot()

    def leave(self, timeout: float = 10.0) -> None:
        """Say BYE (the committer's removal commit then takes this member out) and stop the
        session thread; idempotent, never raises."""
        if self._thread is None or not self._thread.is_alive():
            return
        if self.client is not None and not self._left:
            self._snapshot()
            self._left = True
            try:
                self._run(self.client.leave(timeout=min(timeout, 5.0)), timeout)
            except Exception as exc:  # noqa: BLE001 - best effort: the recording is over anyway
                logger.warning("leaving the room failed: %s", type(exc).__name__)
        self._stop_loop()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)

    # ------------------------------------------------------------------ media half

    async def record(
        self,
        janus_url: str,
        sfu_room: int,
        *,
        duration: float | None = None,
        stop: threading.Event | None = None,
        poll_interval: float = 0.3,
        room_timeout: float = 30.0,
        max_feeds: int = 32,
    ) -> None:
        """Record every publisher of VideoRoom ``sfu_room`` until ``stop`` is set or
        ``duration`` seconds have passed (run it on a loop that can reach Janus).

        At most ``max_feeds`` feeds are recorded at once (the SFU, which is not trusted,
        decides how many publishers it lists); a feed whose subscription fails three times
        is given up.

        Raises:
            RecordingError: :meth:`join` was not called, or the SFU room did not appear
                within ``room_timeout`` seconds.
        """
        from ..harness.janus import JanusClient

        if self.client is None:
            raise RecordingError("join() the room before recording")
        if duration is not None and not duration > 0:
            raise ValueError("duration must be > 0")
        os.makedirs(self.out_dir, exist_ok=True)
        stop = stop or threading.Event()
        unavailable = _unavailable()
        janus = JanusClient(janus_url)
        self.started = start = time.monotonic()
        active: dict[int, _Feed] = {}
        failures: dict[int, int] = {}
        try:
            try:
                await janus.connect()
                lister = await janus.attach()
            except _unavailable() as exc:
                raise RecordingError(f"cannot reach the SFU at {janus_url}: {type(exc).__name__}") from None
            room_seen = False
            errors = 0  # consecutive failed listings: the room is gone, or the SFU unreachable
            while not stop.is_set() and (duration is None or time.monotonic() - start < duration):
                try:
                    published = await self._publishers(lister, sfu_room)
                except unavailable:
                    errors += 1
                    if not room_seen and time.monotonic() - start > room_timeout:
                        raise RecordingError(f"SFU room {sfu_room} did not appear") from None
                    if room_seen and errors >= self.GIVE_UP_AFTER:
                        logger.warning("SFU room %d gone or unreachable: the recording ends", sfu_room)
                        break
                    await asyncio.sleep(poll_interval)
                    continue
                room_seen, errors = True, 0
                for feed in sorted(published - set(active)):
                    if failures.get(feed, 0) < 3 and len(active) < max_feeds:
                        try:
                            active[feed] = await self._subscribe(janus, sfu_room, feed)
                        except unavailable as exc:
                            failures[feed] = failures.get(feed, 0) + 1
                            logger.info("subscribing to a feed failed: %s", type(exc).__name__)
                for feed in sorted(set(active) - published):
                    await self._close_feed(janus, active.pop(feed))
                for f in active.values():
                    self._attribute(f)
                await asyncio.sleep(poll_interval)
        finally:
            for f in list(active.values()):
                await self._close_feed(janus, f)
            await janus.close()
            self.elapsed = round(time.monotonic() - start, 3)
            self._snapshot()

    GIVE_UP_AFTER = 10
    """Consecutive failed listings of a room that existed after which the recording ends."""

    @staticmethod
    async def _publishers(lister: Any, sfu_room: int) -> set[int]:
        data, _ = await lister.message({"request": "listparticipants", "room": sfu_room})
        return listed_publishers(data)

    async def _subscribe(self, janus: Any, sfu_room: int, feed: int) -> _Feed:
        from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection

        from ..rtc.peer import enable_e2ee
        from ..harness.room import subscribe
        from .writer import RemoteRecording

        pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        protection = enable_e2ee(pc, self.client)
        try:
            handle, mids = await subscribe(janus, sfu_room, pc, [feed])
        except BaseException:
            await asyncio.wait({asyncio.ensure_future(pc.close())}, timeout=10)
            raise
        tracks = [t.receiver.track for t in pc.getTransceivers() if t.mid in mids]
        entry = _Feed(feed, pc, protection, handle, None, time.monotonic() - (self.started or 0))
        entry.recording = RemoteRecording(tracks, lambda **kw: self._open_file(entry, **kw))
        self._feeds.append(entry)
        return entry

    def _attribute(self, f: _Feed) -> None:
        """Name the senders of ``f``'s authenticated frames from their KIDs (roster leaves)."""
        self._snapshot()
        with self._lock:
            names = dict(self._leaf_names)
        kids = {int(kid) for stats in f.protection.stats()["recv"] for kid in stats["decrypted_by_kid"]}
        with self._files_lock:  # the event loop and the feed's writer thread both attribute
            for kid in kids:
                leaf = sender_leaf(kid, self._layout.epoch_bits, self._layout.sender_bits)
                f.senders.add(names.get(leaf, f"leaf-{leaf}"))
            if f.identity is None and f.senders:
                f.identity = min(f.senders)

    def _open_file(self, f: _Feed, **kwargs: Any) -> Any:
        """Create ``f``'s file (in its writer thread) once a frame of it decoded, i.e. decrypted:
        the frame's KID names the sender."""
        from .writer import SUFFIX, MediaFile

        self._attribute(f)
        with self._files_lock:
            path = unique_path(self.out_dir, safe_stem(f.identity or "unattributed"), SUFFIX, self._taken)
        return MediaFile(path, **kwargs)

    async def _close_feed(self, janus: Any, f: _Feed) -> None:
        if f.left_at is not None:
            return
        f.left_at = time.monotonic() - (self.started or 0)
        await f.recording.close()
        self._attribute(f)
        await asyncio.wait({asyncio.ensure_future(f.pc.close())}, timeout=10)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(janus.request({"janus": "detach"}, f"/{janus.session_id}/{f.handle.id}"), 5)

    # ------------------------------------------------------------------ report

    def summary(self) -> dict[str, Any]:
        """The recording as a JSON-friendly object: who, where, how much, what was dropped."""
        remotes = []
        for f in self._feeds:
            rec = f.recording
            with self._files_lock:
                senders = sorted(f.senders)
            per_kind: dict[str, Any] = {}
            for stats in f.protection.stats()["recv"]:
                kind = stats["kind"]
                if kind not in ("audio", "video"):
                    continue
                per_kind[kind] = {
                    "codec": stats["codec"],
                    "frames_decrypted": stats["decrypted"],
                    "frames_dropped": stats["dropped"],
                    "frames_decoded": rec.decoded.get(kind, 0),
                    "frames_written": rec.written.get(kind, 0),
                }
            remotes.append(
                {
                    "identity": f.identity,
                    "senders_by_kid": senders,
                    "files": list(rec.paths),
                    "bytes": rec.bytes,
                    "sfu_feed": f.feed,
                    "joined_at": round(f.joined_at, 3),
                    "left_at": None if f.left_at is None else round(f.left_at, 3),
                    "write_errors": rec.errors,
                    **per_kind,
                }
            )
        with self._lock:
            return {
                "identity": self.identity,
                "room": self.room,
                "epoch": self.epoch,
                "safety_number": self.safety_number,
                "roster": list(self.roster),
                "seconds": self.elapsed,
                "out_dir": self.out_dir,
                "remotes": remotes,
                "events": list(self._events),
            }


def format_summary(summary: dict[str, Any]) -> str:
    """A human-readable rendering of :meth:`Recorder.summary`."""
    lines = [
        (f"recorded room {summary['room']} as {summary['identity']} for {summary['seconds']:.1f} s "
         f"(MLS epoch {summary['epoch']})"),
        f"safety number {summary['safety_number']}",
        f"roster: {', '.join(summary['roster'])}",
    ]
    for r in summary["remotes"]:
        parts = []
        for kind in ("video", "audio"):
            k = r.get(kind)
            if k:
                dropped = ", ".join(f"{n} {why}" for why, n in sorted(k["frames_dropped"].items())) or "none"
                parts.append(f"{kind} {k['frames_decrypted']} decrypted / {k['frames_written']} written "
                             f"(dropped: {dropped})")
        lines.append(f"  {r['identity'] or 'nothing decrypted'}: {', '.join(r['files']) or 'no file'} "
                     f"({r['bytes']} bytes); " + "; ".join(parts))
    return "\n".join(lines)
