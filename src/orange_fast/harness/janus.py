"""A Janus VideoRoom SFU harness for tests and the demo.

:class:`JanusServer` starts Debian's ``janus`` (``apt-get install janus``) with the
minimal configuration shipped in ``orange_fast/harness/janus_conf`` inside a network
namespace it creates (:class:`~orange_fast.harness.netns.Netns`), and always cleans up
(context manager, finalizer, ``atexit``).  :class:`JanusClient` speaks the plain-HTTP
Janus API with long polling; :class:`VideoRoomPeer` publishes or subscribes an aiortc
peer connection.  Clients and peers must run inside the namespace (``Netns.run``).

The SFU holds no keys: it forwards SFrame ciphertext unchanged.
"""

from __future__ import annotations

import asyncio
import atexit
import glob
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import weakref
from importlib import resources
from typing import Any

from .aio import run_bounded
from .errors import JanusError
from .netns import Netns, netns_available

__all__ = ["JanusServer", "JanusClient", "JanusHandle", "janus_available", "find_janus_folders"]

_live: "weakref.WeakSet[JanusServer]" = weakref.WeakSet()


def find_janus_folders() -> dict[str, str] | None:
    """The plugin/transport/event/logger folders of the installed Janus, or ``None``."""
    candidates = sorted(glob.glob("/usr/lib/*/janus"))
    candidates += ["/usr/lib/janus", "/usr/local/lib/janus", "/opt/janus/lib/janus"]
    for base in candidates:
        plugins = os.path.join(base, "plugins")
        if os.path.exists(os.path.join(plugins, "libjanus_videoroom.so")) and os.path.exists(
            os.path.join(base, "transports", "libjanus_http.so")
        ):
            return {
                "PLUGINS": plugins,
                "TRANSPORTS": os.path.join(base, "transports"),
                "EVENTS": os.path.join(base, "events"),
                "LOGGERS": os.path.join(base, "loggers"),
            }
    return None


def janus_available() -> str | None:
    """``None`` if the harness can run here, else a clear reason (for test skips)."""
    if shutil.which("janus") is None:
        return "janus is not installed (apt-get install janus)"
    if find_janus_folders() is None:
        return "janus is installed but its VideoRoom plugin or HTTP transport was not found"
    return netns_available()


class JanusServer:
    """A Janus process in its own network namespace.

    Use as a context manager; :attr:`url` is the HTTP API base reachable from inside
    :attr:`netns`.
    """

    def __init__(
        self,
        *,
        http_port: int = 8088,
        rtp_ports: tuple[int, int] = (20000, 20999),
        debug_level: int = 3,
        address: str = "127.0.0.2",
        start_timeout: float = 20.0,
    ) -> None:
        self.http_port = http_port
        self.rtp_ports = rtp_ports
        self.debug_level = debug_level
        self.netns = Netns(address=address, prefix="ofjanus")
        self.start_timeout = start_timeout
        self.url = f"http://{address}:{http_port}/janus"
        self._proc: subprocess.Popen | None = None
        self._dir: str | None = None
        self.log_path: str | None = None

    def __repr__(self) -> str:
        return f"JanusServer(url={self.url!r}, running={self.running})"

    def __enter__(self) -> "JanusServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _write_config(self) -> str:
        folders = find_janus_folders()
        if folders is None or shutil.which("janus") is None:
            raise JanusError("janus is not installed (apt-get install janus)")
        self._dir = tempfile.mkdtemp(prefix="orange-fast-janus-")
        values = dict(folders)
        values.update(
            CONFIGS=self._dir,
            DEBUG_LEVEL=str(self.debug_level),
            RTP_PORTS=f"{self.rtp_ports[0]}-{self.rtp_ports[1]}",
            ICE_IFACE=self.netns.interface,
            HTTP_PORT=str(self.http_port),
            ADDRESS=self.netns.address,
        )
        conf = resources.files("orange_fast.harness").joinpath("janus_conf")
        for entry in conf.iterdir():
            if not entry.name.endswith(".jcfg"):
                continue
            text = entry.read_text()
            for key, value in values.items():
                text = text.replace(f"@{key}@", value)
            with open(os.path.join(self._dir, entry.name), "w") as fh:
                fh.write(text)
        return os.path.join(self._dir, "janus.jcfg")

    def start(self) -> None:
        """Create the namespace, start Janus and wait until its API answers.

        Raises:
            JanusError: Janus missing, exited early, or not answering in time.
            NetnsError: the namespace could not be created.
        """
        if self.running:
            return
        config = self._write_config()
        self.netns.create()
        _live.add(self)
        assert self._dir is not None
        self.log_path = os.path.join(self._dir, "janus.log")
        log = open(self.log_path, "wb")
        try:
            self._proc = self.netns.popen(
                ["janus", "-C", config, "-F", self._dir, "-o", "--log-stdout"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log.close()
        try:
            self.netns.run(self._wait_ready, timeout=self.start_timeout + 5)
        except BaseException:
            tail = self.log_tail()
            self.stop()
            raise JanusError(f"Janus did not start; log tail:\n{tail}") from None

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                raise JanusError("janus exited during start-up")
            try:
                reply = run_bounded(_http_json("GET", self.url + "/info", None, timeout=2), timeout=3)
                if reply.get("janus") == "server_info":
                    return
            except (OSError, JanusError, asyncio.TimeoutError):
                pass
            time.sleep(0.1)
        raise JanusError("janus API did not answer in time")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of Janus's log (for failure messages)."""
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as fh:
            return b"\n".join(fh.read().splitlines()[-lines:]).decode("utf-8", "replace")

    def stop(self) -> None:
        """Stop Janus, delete the namespace and the config copy (never raises)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, 15)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, 9)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=5)
        self.netns.delete()
        if self._dir is not None and os.path.isdir(self._dir):
            keep = os.environ.get("ORANGE_FAST_KEEP_JANUS_LOG")
            if not keep:
                shutil.rmtree(self._dir, ignore_errors=True)
        _live.discard(self)


@atexit.register
def _cleanup() -> None:
    for server in list(_live):
        server.stop()


async def _http_json(method: str, url: str, body: dict[str, Any] | None, *, timeout: float) -> dict[str, Any]:
    """One HTTP/1.0 request with a JSON body/answer (plain asyncio streams, no dependency)."""
    if not url.startswith("http://"):
        raise JanusError("only http:// URLs are supported")
    rest = url[len("http://") :]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    payload = b"" if body is None else json.dumps(body).encode()
    request = (
        f"{method} /{path} HTTP/1.0\r\nHost: {hostport}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    ).encode() + payload

    async def exchange() -> bytes:
        reader, writer = await asyncio.open_connection(host, int(port or 80))
        try:
            writer.write(request)
            await writer.drain()
            return await reader.read()
        finally:
            writer.close()

    raw = await asyncio.wait_for(exchange(), timeout)
    head, _, content = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split()
    if len(parts) < 2 or parts[1] != "200":
        raise JanusError(f"HTTP error from Janus: {status_line!r}")
    try:
        reply = json.loads(content)
    except ValueError as exc:
        raise JanusError("Janus sent invalid JSON") from exc
    if not isinstance(reply, (dict, list)):
        raise JanusError("Janus sent an unexpected JSON value")
    return reply  # type: ignore[return-value]


class JanusClient:
    """An async Janus API session over HTTP with a long-poll event loop."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout
        self.session_id: int | None = None
        self._events: dict[int, asyncio.Queue] = {}
        self._poller: asyncio.Task | None = None
        self._closing = False

    def __repr__(self) -> str:
        return f"JanusClient(url={self.url!r}, session={self.session_id})"

    async def __aenter__(self) -> "JanusClient":
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(self, body: dict[str, Any], path: str = "") -> dict[str, Any]:
        body = {"transaction": secrets.token_hex(8), **body}  # a caller may name its own transaction
        reply = await _http_json("POST", self.url + path, body, timeout=self.timeout)
        if reply.get("janus") == "error":
            error = reply.get("error", {})
            raise JanusError(f"Janus error {error.get('code')}: {error.get('reason')}")
        return reply

    async def connect(self) -> None:
        reply = await self.request({"janus": "create"})
        self.session_id = int(reply["data"]["id"])
        self._poller = asyncio.ensure_future(self._poll())

    async def _poll(self) -> None:
        while not self._closing:
            try:
                events = await _http_json(
                    "GET", f"{self.url}/{self.session_id}?maxev=10&rid={secrets.token_hex(4)}", None, timeout=40
                )
            except (OSError, JanusError, asyncio.TimeoutError):
                if self._closing:
                    return
                await asyncio.sleep(0.2)
                continue
            for event in events if isinstance(events, list) else [events]:
                sender = event.get("sender")
                if sender is not None and event.get("janus") == "event":
                    self._events.setdefault(int(sender), asyncio.Queue()).put_nowait(event)

    async def attach(self, plugin: str = "janus.plugin.videoroom") -> "JanusHandle":
        reply = await self.request({"janus": "attach", "plugin": plugin}, f"/{self.session_id}")
        handle_id = int(reply["data"]["id"])
        self._events.setdefault(handle_id, asyncio.Queue())
        return JanusHandle(self, handle_id)

    async def next_event(self, handle_id: int, timeout: float | None = None) -> dict[str, Any]:
        queue = self._events.setdefault(handle_id, asyncio.Queue())
        return await asyncio.wait_for(queue.get(), timeout or self.timeout)

    async def close(self) -> None:
        """Destroy the session (ends the long poll) and stop polling; bounded in time."""
        self._closing = True
        if self.session_id is not None:
            try:
                await asyncio.wait_for(self.request({"janus": "destroy"}, f"/{self.session_id}"), 5)
            except (OSError, JanusError, asyncio.TimeoutError):
                pass
            self.session_id = None
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.cancel()
            # asyncio.wait never propagates the task's outcome and bounds the wait
            await asyncio.wait({poller}, timeout=2)


class JanusHandle:
    """A plugin handle (VideoRoom) of a :class:`JanusClient` session."""

    def __init__(self, client: JanusClient, handle_id: int) -> None:
        self.client = client
        self.id = handle_id

    def __repr__(self) -> str:
        return f"JanusHandle({self.id})"

    async def message(
        self, body: dict[str, Any], jsep: dict[str, Any] | None = None, *, expect_event: bool = True
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Send a plugin message; return the plugin's (synchronous or asynchronous) answer and JSEP."""
        transaction = secrets.token_hex(8)
        request: dict[str, Any] = {"janus": "message", "body": body, "transaction": transaction}
        if jsep is not None:
            request["jsep"] = jsep
        reply = await self.client.request(request, f"/{self.client.session_id}/{self.id}")
        if reply.get("janus") == "success":
            data = reply.get("plugindata", {}).get("data", {})
            _check_plugin_error(data)
            return data, None
        if not expect_event:
            return {}, None
        while True:
            event = await self.client.next_event(self.id)
            if event.get("transaction", transaction) != transaction:
                continue  # the answer to another request on this handle
            data = event.get("plugindata", {}).get("data", {})
            if "transaction" not in event and _is_notification(data):
                continue  # e.g. "a publisher joined", sent to this handle while we wait for our answer
            _check_plugin_error(data)
            return data, event.get("jsep")

    async def trickle_complete(self) -> None:
        await self.client.request(
            {"janus": "trickle", "candidate": {"completed": True}}, f"/{self.client.session_id}/{self.id}"
        )


def _is_notification(data: dict[str, Any]) -> bool:
    """A VideoRoom event that answers no request: the room's publisher list changed."""
    keys = set(data) - {"videoroom", "room"}
    return data.get("videoroom") == "event" and bool(keys) and keys <= {"publishers", "unpublished", "leaving"}


def _check_plugin_error(data: dict[str, Any]) -> None:
    if "error" in data or data.get("videoroom") == "event" and "error_code" in data:
        raise JanusError(f"VideoRoom error {data.get('error_code')}: {data.get('error')}")
