"""Browser participants for the call harness: Debian's Chromium driven by Playwright (PyPI).

:class:`BrowserDriver` launches one headless Chromium (``executable_path``, never a downloaded
build) with fake camera/microphone and opens call pages (``orange_fast/web/call.html``), one
browser context per participant.  It must run on an asyncio loop inside the Janus network
namespace (``Netns.run``): Playwright's driver and Chromium inherit the namespace, where the page
reaches Janus on 127.0.0.2 and the delivery service and page server on 127.0.0.1.

:class:`BrowserGuests` plugs K such participants into :func:`.call.sfu_call` (``guests=``);
:func:`run_browser_call` is ``orange-fast call --browsers K``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from typing import Any

from .errors import JanusError

__all__ = ["CHROMIUM_FLAGS", "BrowserDriver", "BrowserGuests", "browser_available", "chromium_path",
           "run_browser_call"]

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


def chromium_path() -> str | None:
    """Debian's Chromium (``$ORANGE_FAST_CHROMIUM`` overrides), or ``None``."""
    return os.environ.get("ORANGE_FAST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def browser_available() -> str | None:
    """``None`` if browser participants can run here, else the reason (for skips and the CLI)."""
    if chromium_path() is None:
        return "chromium is not installed (apt-get install chromium)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; no browser download is needed)"
    from ..web.serve import page_available

    return page_available()


class BrowserDriver:
    """One Chromium and its pages (call participants).  Use on one asyncio loop."""

    def __init__(self, *, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.pages: list[Any] = []
        self._pw: Any = None
        self._browser: Any = None

    async def start(self) -> None:
        from playwright.async_api import async_playwright

        reason = browser_available()
        if reason is not None:
            raise JanusError(f"cannot run a browser participant: {reason}")
        self._pw = await async_playwright().start()
        self._browser = await self._pw.chromium.launch(executable_path=chromium_path(), headless=True,
                                                       args=CHROMIUM_FLAGS)

    async def open(self, url: str) -> Any:
        """Open a call page in a fresh context; wait until it is ready (or raise its error)."""
        context = await self._browser.new_context(permissions=["camera", "microphone"])
        page = await context.new_page()
        self.pages.append(page)
        await page.goto(url)
        await page.wait_for_function("window.ofReady === true || window.ofError !== undefined",
                                     timeout=self.timeout * 1000)
        error = await page.evaluate("window.ofError")
        if error:
            raise JanusError(f"the call page failed: {error}")
        return page

    @staticmethod
    async def stats(page: Any) -> dict[str, Any]:
        """``window.ofStats()`` of a page (counts, safety number, roster; no secrets)."""
        result: dict[str, Any] = await page.evaluate("window.ofStats()")
        return result

    async def stop(self) -> None:
        browser, self._browser = self._browser, None
        if browser is not None:
            try:
                await asyncio.wait_for(browser.close(), 15)
            except Exception:  # noqa: BLE001 - best effort: Chromium is going away anyway
                pass
        pw, self._pw = self._pw, None
        if pw is not None:
            try:
                await asyncio.wait_for(pw.stop(), 15)
            except Exception:  # noqa: BLE001
                pass


def page_query(**params: Any) -> str:
    """The query string of a call page URL (values that are ``None`` are left out)."""
    from urllib.parse import urlencode

    return "?" + urlencode({k: v for k, v in params.items() if v is not None})


class BrowserGuests:
    """K browser participants of an :func:`.call.sfu_call` call (its ``guests``).

    Indices ``first_index ..``; each page joins the MLS room (``room``'s delivery service and
    token) as ``browser-<index>``, publishes to the Janus room and subscribes to everyone.
    """

    def __init__(self, k: int, *, janus_url: str, session_room: Any, first_index: int,
                 transform: str | None = None, timeout: float = 60.0, e2ee: bool = True,
                 keyless_browser: bool = False, browsers_first: bool = False, leaves: bool = False,
                 late_browser: bool = False) -> None:
        self.k = k
        self.janus_url = janus_url
        self.session_room = session_room
        self.first_index = first_index
        self.transform = transform
        self.timeout = timeout
        self.e2ee = e2ee
        self.keyless_browser = keyless_browser
        self.browsers_first = browsers_first
        self.keyless_page: Any = None
        self.leaves = leaves
        self.late_browser = late_browser
        self.late_page: Any = None
        self.plaintext_probes: list[bytes] = []
        self._room_id = 0
        self.leave_report: dict[str, Any] = {}
        self._timeline: asyncio.Future[None] | None = None
        self._members: list[Any] = []
        self.driver = BrowserDriver(timeout=timeout)
        self.web: Any = None
        self.pages: list[Any] = []
        self.feeds: dict[int, int] = {}

    def identity(self, i: int) -> str:
        return f"browser-{self.first_index + i}"

    async def start(self, room: int, members: list[Any] | None = None) -> dict[int, int]:
        from ..web.serve import WebServer

        self._members = list(members or [])
        self._room_id = room
        self.web = WebServer("127.0.0.1", 0, config={"janus": self.janus_url, "ws": self.session_room.url})
        await self.web.start()
        await self.driver.start()
        for i in range(self.k):
            page = await self.driver.open(self._url(self.first_index + i))
            self.pages.append(page)
            await page.wait_for_function("window.ofFeed !== undefined", timeout=self.timeout * 1000)
            self.feeds[int(await page.evaluate("window.ofFeed"))] = self.first_index + i
            if self.browsers_first and i == 0:
                # the first browser creates the MLS group: it is the designated committer
                await page.wait_for_function("window.ofSession && window.ofSession.epoch !== null",
                                             timeout=self.timeout * 1000)
                await asyncio.to_thread(self.session_room.start_clients)
        if self.keyless_browser:
            # subscribes to everyone, holds no key: must decode nothing
            url = self.web.url + page_query(id="keyless-browser", keyless=1, publish=0, janusroom=room,
                                            transform=self.transform)
            self.keyless_page = await self.driver.open(url)
        # everyone (Python members and browsers) in one MLS group before the media phase is timed
        await asyncio.to_thread(self.session_room.wait_converged, self.timeout)
        if self.leaves:
            self._timeline = asyncio.ensure_future(self._leave_timeline())
        elif self.late_browser:
            self._timeline = asyncio.ensure_future(self._late_join())
        return dict(self.feeds)

    def _url(self, index: int) -> str:
        return self.web.url + page_query(room=self.session_room.room, id=f"browser-{index}",
                                         tokenhex=self.session_room.token.hex(), janusroom=self._room_id,
                                         transform=self.transform, e2ee=None if self.e2ee else 0, probes=1)

    async def _late_join(self) -> None:
        """One more browser joins mid-call: the designated committer (a Python member) adds it."""
        await asyncio.sleep(2.0)
        room = self.session_room
        self.late_page = await self.driver.open(self._url(self.first_index + self.k))
        room.expect_members(room.n + self.k + 1)
        await asyncio.to_thread(room.wait_converged, self.timeout)
        self.leave_report["late_joined_epoch"] = room.clients[0].epoch

    async def _snapshot(self) -> dict[str, Any]:
        """Video frames decoded so far, per receiver and remote index (aiortc sinks, page counters)."""
        feeds = dict(self.feeds)
        feeds.update({m.feed: m.index for m in self._members if m.feed is not None})
        out: dict[str, Any] = {}
        for m in self._members:
            out[str(m.index)] = {str(feeds.get(f)): s.frames for f, s in m.sinks if s.kind == "video"}
        names = {c.client_id: i for i, c in enumerate(self.session_room.clients)}
        names.update({self.identity(i): self.first_index + i for i in range(self.k)})
        for i, page in enumerate(self.pages):
            stats = await self.driver.stats(page)
            out[str(self.first_index + i)] = {str(names.get(who, who)): c.get("video", 0)
                                              for who, c in stats.get("frames_decrypted_per_remote", {}).items()}
        return out

    async def _leave_timeline(self) -> None:
        """A browser leaves mid-call, then an aiortc member; snapshots after both."""
        room = self.session_room
        await asyncio.sleep(3.0)
        leaver = self.k - 1
        await self.pages[leaver].evaluate("window.ofLeave()")
        room.expect_members(room.n + self.k - 1)
        await asyncio.to_thread(room.wait_converged, self.timeout)
        self.leave_report["browser_left"] = self.first_index + leaver
        await asyncio.sleep(2.0)
        py = room.n - 1
        await asyncio.to_thread(room.leave_client, py, self.timeout)
        self.leave_report["aiortc_left"] = py
        self.leave_report["epoch_after"] = room.clients[0].epoch
        await asyncio.sleep(1.0)  # frames of the old epoch still in flight or held
        self.leave_report["after_leaves"] = await self._snapshot()

    async def report(self) -> list[dict[str, Any]]:
        if self._timeline is not None:
            await asyncio.wait_for(self._timeline, self.timeout)
            self.leave_report["end"] = await self._snapshot()
        out = []
        extra = [p for p in (self.keyless_page, self.late_page) if p is not None]
        for page in [*self.pages, *extra]:
            stats = await self.driver.stats(page)
            stats["dom_safety"] = await page.inner_text("#safety")
            stats["dom_tiles"] = await page.eval_on_selector_all(".tile .name", "els => els.map(e => e.textContent)")
            out.append(stats)
        self.plaintext_probes = [bytes.fromhex(h) for st in out for s in st.get("streams", [])
                                 for h in s.get("probes", [])]
        for st in out:  # plaintext windows stay out of the summary
            for s in st.get("streams", []):
                s.pop("probes", None)
        return out

    async def stop(self) -> None:
        for page in self.pages:
            try:
                await asyncio.wait_for(page.evaluate("window.ofLeave && window.ofLeave()"), 10)
            except Exception:  # noqa: BLE001 - best effort at the end of the call
                pass
        await self.driver.stop()
        if self.web is not None:
            await self.web.stop()


def browser_participant(index: int, stats: dict[str, Any], roster_index: dict[str, int]) -> dict[str, Any]:
    """A browser's entry of the demo's ``participants`` (same fields as an aiortc member's)."""
    remotes: dict[str, Any] = {}
    for who, counts in stats.get("frames_decrypted_per_remote", {}).items():
        key = str(roster_index.get(who, who))
        remotes[key] = {"video_frames_decoded": counts.get("video", 0), "audio_frames_decoded": counts.get("audio", 0)}
    return {
        "index": index,
        "kind": "browser",
        "identity": stats.get("id"),
        "transform": stats.get("mode"),
        "frames_sent": stats.get("frames_sent", {}),
        "frames_encrypted": sum(stats.get("frames_encrypted", {}).values()),
        "frames_decrypted": sum(c.get("video", 0) + c.get("audio", 0)
                                for c in stats.get("frames_decrypted_per_remote", {}).values()),
        "frames_decrypted_per_remote": remotes,
        "frames_dropped": stats.get("frames_dropped", {}),
        "safety_number": stats.get("safety"),
    }


def run_browser_call(n: int, k: int, seconds: float, *, videocodec: str = "vp8", transform: str | None = None,
                     timeout: float = 90.0, e2ee: bool = True, keyless_browser: bool = False,
                     browsers_first: bool = False, leaves: bool = False,
                     late_browser: bool = False, record_dir: str | None = None) -> dict[str, Any]:
    """``n`` aiortc and ``k`` Chromium participants in one MLS group and one Janus room.

    ``transform``: the pages' encoded-frame API (``script``/``streams``; default: the page picks);
    ``e2ee=False``: the browsers send plaintext (negative tests); ``keyless_browser``: one more page
    that subscribes without any key (its stats are the summary's ``keyless_browser``);
    ``browsers_first``: the first browser creates the MLS group (designated committer) and adds
    the Python members.  ``leaves``: the last browser leaves ~3 s into the call, then the last
    aiortc member; the summary's ``leaves`` has per receiver and remote the video frames decoded
    after both leaves (``after_leaves``) and at the end (``end``).  ``late_browser``: one more
    browser joins ~2 s into the call (the summary's ``late_browser``; the aiortc members do not
    subscribe to it, the other browsers do).  ``record_dir``: a recorder (:mod:`orange_fast.recorder`)
    joins the MLS group first and records every publisher to that directory; the summary's
    ``recorder`` is its :meth:`~orange_fast.recorder.member.Recorder.summary` plus ``in_call``
    (the safety number and roster it showed while the browsers were in the call).

    Raises:
        JanusError: Janus, namespaces, Chromium, Playwright or the built page are missing (the message says why).
        RecordingError: the recorder could not join or record.
    """
    from .aio import run_bounded
    from .call import sfu_call
    from .demo import summarize
    from .janus import JanusServer, janus_available
    from ..recorder.demo import recording
    from .session_room import SessionRoom

    if videocodec != "vp8":
        raise ValueError("browser participants use VP8")
    if record_dir is not None and (browsers_first or leaves or late_browser):
        raise ValueError("a recorded browser call has a Python committer and no leaves or late joins")
    for reason in (janus_available(), browser_available()):
        if reason is not None:
            raise JanusError(f"cannot run the call: {reason}")
    recorded = record_dir is not None
    with JanusServer() as server, SessionRoom(n, netns=server.netns, members=n + k + recorded, timeout=timeout,
                                             defer_clients=browsers_first) as room, \
            _recorder(server, room, record_dir, timeout) as recorder:
        sfu_room = 100000 + secrets.randbelow(800000)
        guests = BrowserGuests(k, janus_url=server.url, session_room=room, first_index=n, transform=transform,
                               timeout=timeout, e2ee=e2ee, keyless_browser=keyless_browser,
                               browsers_first=browsers_first, leaves=leaves, late_browser=late_browser)

        async def call() -> dict[str, Any]:
            try:
                report = await sfu_call(server.url, n=n, seconds=seconds, videocodec=videocodec,
                                        keys=list(room.clients), guests=guests, room=sfu_room)
                # read before the browsers leave (their removal is a new epoch)
                report["safety_numbers"] = room.safety_numbers()
                if recorder is not None:
                    report["recorder_in_call"] = {"safety_number": recorder.safety_number,
                                                  "roster": list(recorder.roster)}
                report["epoch"] = room.clients[0].epoch
                return report
            finally:
                await guests.stop()

        with recording(server, recorder, sfu_room) if recorder is not None else contextlib.nullcontext():
            report = server.netns.run(lambda: run_bounded(call(), timeout=seconds + 3 * timeout),
                                      timeout=seconds + 3 * timeout + 30)
        summary = summarize(report, report["safety_numbers"])
        roster = {c.client_id: i for i, c in enumerate(room.clients)}
        roster.update({guests.identity(i): n + i for i in range(k + 1)})
        for p in summary["participants"]:
            p["kind"] = "aiortc"
            p["identity"] = room.clients[p["index"]].client_id
            for i in range(k):  # a browser's fake camera/microphone: no numbered pictures, no expected tone
                remote = p["frames_decrypted_per_remote"].get(str(n + i), {})
                remote["audio_hz_expected"] = None
                remote.pop("video_frames_verified", None)
        browsers = report.get("guests", [])
        for i, stats in enumerate(browsers[:k]):
            entry = browser_participant(n + i, stats, roster)
            entry["dom_safety_number"] = stats.get("dom_safety")
            entry["tiles"] = stats.get("dom_tiles")
            entry["committer"] = (stats.get("sessionStatus") or {}).get("committer")
            entry["video_frames_rendered_per_feed"] = {name: f.get("framesDecoded", 0)
                                                       for name, f in stats.get("feeds", {}).items()}
            entry["worker_crypto_ms"] = {"send": round(stats.get("send_crypto_ms", 0.0), 1),
                                         "per_feed": {name: round(f.get("cryptoMs", 0.0), 1)
                                                      for name, f in stats.get("feeds", {}).items()}}
            summary["participants"].append(entry)
        if keyless_browser and len(browsers) > k:
            kb = browsers[k]
            summary["keyless_browser"] = {"frames_received": sum(f["frames"]["video"] + f["frames"]["audio"]
                                                                 for f in kb.get("feeds", {}).values()),
                                          "frames_decrypted": sum(f["decrypted"]["video"] + f["decrypted"]["audio"]
                                                                  for f in kb.get("feeds", {}).values()),
                                          "frames_dropped": kb.get("frames_dropped", {})}
        if late_browser and len(browsers) > k:
            late = browsers[-1]
            summary["late_browser"] = browser_participant(n + k, late, roster)
            summary["late_browser"]["joined_epoch"] = guests.leave_report.get("late_joined_epoch")
            summary["late_browser"]["dom_safety_number"] = late.get("dom_safety")
        if leaves:
            summary["leaves"] = guests.leave_report
        summary["delivery_service"] = room.url
        summary["epoch"] = report["epoch"]
        if recorder is not None:
            recorder.leave()
            summary["recorder"] = recorder.summary()
            summary["recorder"]["in_call"] = report.get("recorder_in_call")
        return summary


@contextlib.contextmanager
def _recorder(server: Any, room: Any, out_dir: str | None, timeout: float) -> Iterator[Any]:
    """A recorder joined to ``room`` (its session half in the Janus namespace, where the delivery
    service listens) for the block, or ``None`` without ``out_dir``; it leaves at the end."""
    if out_dir is None:
        yield None
        return
    from ..recorder.member import Recorder

    recorder = Recorder(room.url, room.room, room.token, out_dir, netns=server.netns)
    try:
        recorder.join(timeout)
        yield recorder
    finally:
        recorder.leave()
