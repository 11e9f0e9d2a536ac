"""Asyncio client of the delivery service: ordered log entries in, appends out, reconnects by itself.

Usage::

    client = DeliveryClient("ws://127.0.0.1:8765", "room-1", token, "alice")
    await client.connect()                       # first connection; raises typed errors
    seq = await client.append("commit", payload, expected_seq=client.last_seq + 1)
    async for entry in client:                   # every entry of the room, in log order
        ...
    await client.close()                         # BYE: a LEFT notice is appended

Guarantees: entries are delivered in order, each exactly once, across reconnects (the client
resumes from the last sequence number it received; a gap from the server is a fatal
:class:`~.errors.ProtocolError`).  An append whose connection drops before its answer raises
:class:`~.errors.ConnectionLostError`: its outcome is unknown.  With ``retry_appends`` the client
instead resends it after reconnecting, with the same request id, and the server applies it at
most once (idempotency key (room, client id, request id) while the client stays present).

Several URLs (nodes of one delivery service on a shared database) may be given: the client
connects to the first that answers and, when a connection is lost, tries the next one.  Fatal
server refusals (wrong token, room not allowed, bad resume, unsupported version, superseded,
abuse) end the client: the iterator raises the error.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from typing import Any, AsyncIterator, Awaitable, Callable, Sequence

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from . import protocol as P
from .entry import EntryType, LogEntry, check_id, check_kind, check_seq
from .errors import (
    ClientClosedError,
    ConnectionLostError,
    ErrorCode,
    MalformedFrameError,
    ProtocolError,
    ServerError,
    server_error_for,
)

__all__ = ["DeliveryClient"]

logger = logging.getLogger("orange_fast.delivery.client")

_END = object()

# Server refusals after which reconnecting cannot help.
_FINAL = frozenset(
    {
        ErrorCode.AUTH_FAILED,
        ErrorCode.ROOM_NOT_ALLOWED,
        ErrorCode.BAD_RESUME,
        ErrorCode.UNSUPPORTED_VERSION,
        ErrorCode.SUPERSEDED,
        ErrorCode.ABUSE,
        ErrorCode.MALFORMED_FRAME,
        ErrorCode.NOT_AUTHENTICATED,
        ErrorCode.UNEXPECTED_FRAME,
        ErrorCode.MESSAGE_TOO_LARGE,
    }
)

# Refusals of a full or overloaded server: typed error on the first connect, retried with backoff later.
_BUSY = frozenset({ErrorCode.SERVER_BUSY, ErrorCode.RATE_LIMITED})

EntryCallback = Callable[[LogEntry], "Awaitable[None] | None"]


class DeliveryClient:
    """One client id in one room.

    Args:
        url: ``ws://host:port`` of the server, or a list of them (several nodes serving the same
            rooms): the client rotates through them on connection failures.
        room, token, client_id: see the protocol's HELLO.  ``token`` is a shared room token or a
            signed access token (``orange-fast token``), or a callable returning one: it is called
            before every HELLO, so that a long-lived client can present a fresh access token
            when it reconnects after its first one expired.
        resume_from: last sequence number already processed (0 = read the room from the start).
        join_payload: opaque bytes for the JOINED notice when this client becomes present.
        reconnect: reconnect automatically (exponential backoff with jitter) after a lost connection.
        backoff_initial, backoff_max: reconnect delays in seconds.
        connect_timeout: seconds for the WebSocket handshake plus READY.
        max_frame_size: largest WebSocket message accepted from the server.
        on_entry: optional callback (sync or async) called for each entry, in order, before the
            entry is available to the iterator.
        retry_appends: resend an append whose connection was lost (same request id) after
            reconnecting, instead of raising :class:`~.errors.ConnectionLostError`; the server
            applies it once.
    """

    def __init__(
        self,
        url: str | Sequence[str],
        room: str,
        token: bytes | Callable[[], bytes],
        client_id: str,
        *,
        resume_from: int = 0,
        join_payload: bytes = b"",
        reconnect: bool = True,
        backoff_initial: float = 0.05,
        backoff_max: float = 2.0,
        connect_timeout: float = 5.0,
        max_frame_size: int = 64 * 1024 * 1024,
        on_entry: EntryCallback | None = None,
        retry_appends: bool = False,
    ) -> None:
        check_id(room, "room id")
        check_id(client_id, "client id")
        check_seq(resume_from, "resume_from")
        # validates token and payload (a token source is validated when it is called)
        P.Hello(room, b"-" if callable(token) else token, client_id, resume_from, join_payload)
        if not 0 < backoff_initial <= backoff_max:
            raise ValueError("need 0 < backoff_initial <= backoff_max")
        urls = [url] if isinstance(url, str) else list(url)
        if not urls or not all(isinstance(u, str) for u in urls):
            raise ValueError("url must be a URL or a non-empty list of URLs")
        self.urls = urls
        self.url = urls[0]
        """The URL of the current (or last tried) server."""
        self.retry_appends = retry_appends
        self.room = room
        self.client_id = client_id
        self._token = token
        self._join_payload = join_payload
        self._last_seq = resume_from
        self.reconnect = reconnect
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.connect_timeout = connect_timeout
        self.max_frame_size = max_frame_size
        self._on_entry = on_entry
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._pending: dict[int, asyncio.Future[int]] = {}
        # a random start: a new client object resuming the same presence must not reuse the
        # request ids (idempotency keys) of an earlier one
        self._request_ids = itertools.count(random.randrange(1, 1 << 32))
        self._ws: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._run_task: asyncio.Task[None] | None = None
        self._closing = False
        self._finished = False
        self._failure: BaseException | None = None
        self.ready: P.Ready | None = None
        """The last READY frame received."""
        self.join_seq = 0
        """Sequence number of this client's latest JOINED notice (0 until one is seen)."""
        self.connections = 0
        self._attempts = 0
        """How many times a connection reached READY."""

    def __repr__(self) -> str:
        return (
            f"DeliveryClient(url={self.url!r}, room={self.room!r}, client_id={self.client_id!r}, "
            f"last_seq={self._last_seq})"
        )

    # ------------------------------------------------------------------ state

    @property
    def last_seq(self) -> int:
        """Sequence number of the last entry received (the resume point)."""
        return self._last_seq

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def failure(self) -> BaseException | None:
        """The error that ended the client, if any."""
        return self._failure

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until a connection is READY (raises the failure if the client ended)."""
        if self._failure is not None:
            raise self._failure
        if self._finished:
            raise ClientClosedError("client closed")
        if self._connected.is_set():
            return
        waiter = asyncio.ensure_future(self._connected.wait())
        done_task = self._run_task
        try:
            wait_for = {waiter} if done_task is None else {waiter, done_task}
            await asyncio.wait(wait_for, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if self._connected.is_set():
            return
        if self._failure is not None:
            raise self._failure
        if self._finished:
            raise ClientClosedError("client closed")
        raise asyncio.TimeoutError("not connected in time")

    # ------------------------------------------------------------------ lifecycle

    async def connect(self) -> P.Ready:
        """Make the first connection (raising its error if it fails), then keep it alive."""
        if self._run_task is not None:
            raise RuntimeError("connect() called twice")
        first: asyncio.Future[P.Ready] = asyncio.get_running_loop().create_future()
        self._run_task = asyncio.get_running_loop().create_task(self._run(first))
        return await first

    async def close(self, *, leave: bool = True, timeout: float = 5.0) -> None:
        """Stop the client.  With ``leave`` (default) send BYE first so a LEFT notice is appended.

        Without ``leave`` (or if not connected) the server keeps the client present until its
        eviction timeout, and a later client with the same id and ``resume_from`` resumes.
        """
        if self._closing:
            if self._run_task is not None:
                await asyncio.gather(self._run_task, return_exceptions=True)
            return
        self._closing = True
        ws = self._ws
        if ws is not None:
            try:
                if leave:
                    await ws.send(P.encode(P.Bye()))
                    await asyncio.wait_for(ws.wait_closed(), timeout)  # the server closes after LEFT
                else:
                    await asyncio.wait_for(ws.close(), timeout)
            except (ConnectionClosed, asyncio.TimeoutError, OSError):
                pass
        if self._run_task is not None:
            self._run_task.cancel()
            await asyncio.gather(self._run_task, return_exceptions=True)
        self._finish(None)

    async def __aenter__(self) -> DeliveryClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ API

    async def append(self, kind: str, payload: bytes, expected_seq: int | None = None, *, timeout: float = 10.0) -> int:
        """Append ``payload`` under ``kind``; return its sequence number.

        With ``expected_seq``, the append only happens if the entry gets exactly that sequence
        number; otherwise :class:`~.errors.ServerSequenceConflictError` (``.seq`` = current head).
        Waits for a connection if the client is reconnecting.
        """
        check_kind(kind)
        payload = bytes(payload)
        if expected_seq is not None:
            check_seq(expected_seq, "expected_seq", minimum=1)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        request_id = self._next_request_id()
        frame = P.Append(request_id, kind, payload, expected_seq or 0)
        while True:
            generation = self.connections
            try:
                return await self._send_append(frame, max(0.0, deadline - loop.time()))
            except ConnectionLostError:
                if not self.retry_appends or self._finished or loop.time() >= deadline:
                    raise
                logger.info("append %d: connection lost, resending after reconnect", request_id)
            # the lost connection may still look connected until its reader notices: wait for a new one
            while self.connections == generation and not self._finished and loop.time() < deadline:
                await asyncio.sleep(0.01)

    async def _send_append(self, frame: P.Append, timeout: float) -> int:
        await self.wait_connected(timeout)
        ws = self._ws
        if ws is None:
            raise ConnectionLostError("connection lost before the append was sent")
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending[frame.request_id] = future
        try:
            await ws.send(P.encode(frame))
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except ConnectionClosed:
            raise ConnectionLostError("connection lost during append") from None
        finally:
            if self._pending.get(frame.request_id) is future:
                del self._pending[frame.request_id]

    async def next_entry(self, timeout: float | None = None) -> LogEntry:
        """The next entry in log order (raises the client's failure, or ClientClosedError, at the end)."""
        item = await asyncio.wait_for(self._queue.get(), timeout)
        if item is _END:
            self._queue.put_nowait(_END)  # keep the end visible to other readers
            if self._failure is not None:
                raise self._failure
            raise ClientClosedError("client closed")
        return item  # type: ignore[no-any-return]

    async def entries(self) -> AsyncIterator[LogEntry]:
        """Every entry in log order until the client is closed (then the iterator ends)."""
        while True:
            try:
                yield await self.next_entry()
            except ClientClosedError:
                return

    def __aiter__(self) -> AsyncIterator[LogEntry]:
        return self.entries()

    def abort_connection(self) -> None:
        """Drop the current connection abruptly, as a network failure would.

        The client reconnects (if ``reconnect``) and resumes after :attr:`last_seq`; the
        server keeps it present meanwhile.  Useful to force a resync, and in tests.
        """
        ws = self._ws
        if ws is not None:
            ws.transport.abort()

    # ------------------------------------------------------------------ internals

    def _next_request_id(self) -> int:
        while True:
            rid = next(self._request_ids) % (1 << 32)
            if rid and rid not in self._pending:
                return rid

    def _finish(self, failure: BaseException | None) -> None:
        if self._finished:
            return
        self._finished = True
        if failure is not None and self._failure is None:
            self._failure = failure
        self._fail_pending(ClientClosedError("client closed") if failure is None else failure)
        self._queue.put_nowait(_END)

    def _fail_pending(self, exc: BaseException) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(exc)
                future.exception()  # mark retrieved: the awaiting append may already be gone

    async def _run(self, first: asyncio.Future[P.Ready]) -> None:
        backoff = self.backoff_initial
        try:
            while not self._closing:
                try:
                    ws = await asyncio.wait_for(
                        connect(
                            self._pick_url(),
                            compression=None,
                            ping_interval=None,
                            max_size=self.max_frame_size,
                            open_timeout=self.connect_timeout,
                            close_timeout=2.0,
                        ),
                        self.connect_timeout,
                    )
                except (OSError, InvalidHandshake, asyncio.TimeoutError) as exc:
                    if not first.done():
                        if self._attempts < len(self.urls):
                            continue  # first connection: try every URL once
                        first.set_exception(ConnectionLostError(f"cannot connect: {type(exc).__name__}"))
                        self._finish(None)
                        return
                    await self._sleep_backoff(backoff)
                    backoff = min(backoff * 2, self.backoff_max)
                    continue
                except InvalidURI as exc:
                    error = ValueError(f"invalid URL: {exc}")
                    if not first.done():
                        first.set_exception(error)
                    self._finish(error)
                    return
                try:
                    ready = await self._hello(ws)
                    self._ws = ws
                    self.ready = ready
                    self.connections += 1
                    self._connected.set()
                    if not first.done():
                        first.set_result(ready)
                    backoff = self.backoff_initial
                    await self._session(ws, ready)
                except ServerError as exc:
                    if exc.code in _FINAL or (exc.code in _BUSY and not first.done()):
                        if not first.done():
                            first.set_exception(exc)
                        self._finish(exc)
                        return
                    logger.info("connection ended by server: %s", exc.code.name)
                except ProtocolError as exc:  # the server broke the protocol: do not trust it further
                    if not first.done():
                        first.set_exception(exc)
                    self._finish(exc)
                    return
                except (ConnectionClosed, OSError, asyncio.TimeoutError):
                    pass
                finally:
                    self._ws = None
                    self._connected.clear()
                    self._fail_pending(ConnectionLostError("connection lost"))
                    await ws.close()
                if not first.done():
                    first.set_exception(ConnectionLostError("connection lost before READY"))
                    self._finish(None)
                    return
                if self._closing:
                    break
                if not self.reconnect:
                    self._finish(ConnectionLostError("connection lost and reconnect is off"))
                    return
                await self._sleep_backoff(backoff)
                backoff = min(backoff * 2, self.backoff_max)
        except asyncio.CancelledError:
            if not first.done():
                first.set_exception(ClientClosedError("client closed"))
            raise
        finally:
            if self._closing:
                self._finish(None)

    def _pick_url(self) -> str:
        """The URL for the next attempt: the first on the first connection, then the next one in turn."""
        if self.connections or self._attempts:
            self.url = self.urls[(self.urls.index(self.url) + 1) % len(self.urls)]
        self._attempts += 1
        return self.url

    async def _sleep_backoff(self, backoff: float) -> None:
        await asyncio.sleep(backoff * random.uniform(0.5, 1.0))

    async def _hello(self, ws: ClientConnection) -> P.Ready:
        token = self._token() if callable(self._token) else self._token
        hello = P.Hello(self.room, token, self.client_id, self._last_seq, self._join_payload)
        try:
            await ws.send(P.encode(hello))
        except ConnectionClosed:
            # a server refusing new connections (SERVER_BUSY) may have sent its ERROR and closed
            # before our HELLO: read that ERROR, which is still buffered, to raise the typed error
            pass
        message = await asyncio.wait_for(ws.recv(), self.connect_timeout)
        try:
            frame = P.decode_server_frame(message)
        except MalformedFrameError as exc:
            raise ProtocolError(f"malformed frame from server: {exc}") from None
        if isinstance(frame, P.Error):
            raise server_error_for(frame.code, frame.detail, fatal=frame.fatal, seq=frame.seq)
        if not isinstance(frame, P.Ready):
            raise ProtocolError("expected READY")
        if frame.head_seq < self._last_seq:
            raise ProtocolError("server log is behind this client's resume point")
        return frame

    async def _session(self, ws: ClientConnection, ready: P.Ready) -> None:
        loop = asyncio.get_running_loop()
        last_rx = loop.time()
        # The server pings every heartbeat interval; silence for the eviction timeout means a dead link.
        silence_limit = max(ready.eviction_timeout_ms, ready.heartbeat_interval_ms * 2, 1) / 1000.0

        async def watchdog() -> None:
            while True:
                remaining = silence_limit - (loop.time() - last_rx)
                if remaining <= 0:
                    logger.info("server silent for %.3fs: reconnecting", silence_limit)
                    ws.transport.abort()
                    return
                await asyncio.sleep(remaining)

        guard = loop.create_task(watchdog())
        try:
            async for message in ws:
                last_rx = loop.time()
                try:
                    frame = P.decode_server_frame(message)
                except MalformedFrameError as exc:
                    raise ProtocolError(f"malformed frame from server: {exc}") from None
                if isinstance(frame, LogEntry):
                    await self._deliver(frame)
                elif isinstance(frame, P.AppendOk):
                    future = self._pending.get(frame.request_id)
                    if future is not None and not future.done():
                        future.set_result(frame.seq)
                elif isinstance(frame, P.Error):
                    error = server_error_for(frame.code, frame.detail, fatal=frame.fatal, seq=frame.seq)
                    future = self._pending.get(frame.request_id) if frame.request_id else None
                    if future is not None and not future.done():
                        future.set_exception(error)
                    if frame.fatal:
                        raise error
                    if future is None:
                        logger.info("server error: %s", frame.code.name)
                elif isinstance(frame, P.Ping):
                    await ws.send(P.encode(P.Pong(frame.nonce)))
                elif isinstance(frame, P.Pong):
                    pass
                else:
                    raise ProtocolError("unexpected READY")
        finally:
            guard.cancel()

    async def _deliver(self, entry: LogEntry) -> None:
        if entry.seq <= self._last_seq:
            return  # already delivered (defensive: the server resumes after last_seq)
        if entry.seq != self._last_seq + 1:
            raise ProtocolError(f"gap in the log: got seq {entry.seq} after {self._last_seq}")
        self._last_seq = entry.seq
        if entry.entry_type == EntryType.JOINED and entry.sender == self.client_id:
            self.join_seq = entry.seq
        if self._on_entry is not None:
            try:
                result = self._on_entry(entry)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:  # a consumer bug must not break delivery
                logger.exception("on_entry callback failed at seq %d", entry.seq)
        self._queue.put_nowait(entry)

