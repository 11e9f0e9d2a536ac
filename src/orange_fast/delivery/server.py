"""The delivery server: orders opaque handshake messages per room, never holds key material.

One :class:`DeliveryServer` serves many rooms.  Per room it keeps a totally ordered,
sequence-numbered, persistent log (see :mod:`.storage`) and the set of *present* clients.

Life of a connection:

1. The client sends HELLO (room, token, client id, ``resume_from``, join payload).  The server
   checks the protocol version and the room token (:class:`TokenPolicy`) and that
   ``resume_from`` does not exceed the log head.
2. If the client id is not present in the room, the server appends a JOINED notice (with
   :data:`~.entry.FLAG_CREATOR` if nobody was present) and the client becomes present.  If it is
   still present (a reconnect within the eviction timeout), nothing is appended and an older
   connection with the same client id, if any, is closed with SUPERSEDED.
3. The server replies READY, then sends every entry after ``resume_from`` in order, then every
   new entry as it is appended: catch-up and live traffic come from one cursor, so there is no
   gap and no duplicate.
4. APPEND frames are appended (optionally compare-and-append) and acknowledged with APPEND_OK;
   the entry itself reaches every present connection of the room, the sender included.
5. The server PINGs every ``heartbeat_interval``; any inbound frame counts as a sign of life.
   A connection silent for ``eviction_timeout`` is closed with EVICTED and an EVICTED notice
   is appended.  A client that disconnects without BYE stays present for ``eviction_timeout``
   (so that it can resume); then an EVICTED notice is appended.  BYE appends LEFT at once.

Bad input never crashes the server: malformed frames get a typed ERROR and the connection is
closed; oversize and rate-limited frames get a typed ERROR and are dropped, and a connection
that keeps producing them is closed with ABUSE.  Logs carry ids, sizes and sequence numbers,
never payload bytes or tokens.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import math
import time
from typing import Any, Callable, Sequence

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from . import protocol as P
from .auth import Authenticator, Refusal, TokenPolicy
from .entry import EntryType, LogEntry, NewEntry
from .errors import ErrorCode, MalformedFrameError, SequenceConflictError, StorageError
from .limits import AddressTable, OverloadGauge, ServerLimits
from .ratelimit import RateLimits, TokenBucket
from .storage import Storage

__all__ = ["DeliveryServer", "TokenPolicy", "RateLimits", "ServerLimits"]

logger = logging.getLogger("orange_fast.delivery.server")

_FRAME_OVERHEAD = 4096  # bytes of a frame beyond its payload (ids, kind, token, ...), generously
_READ_PAGE = 256
_TAIL_CACHE = 1024


def _log(level: int, event: str, **fields: Any) -> None:
    """Structured log line: ``event key=value ...`` (fields also in ``record.fields``)."""
    if logger.isEnabledFor(level):
        text = " ".join(f"{k}={v}" for k, v in fields.items())
        logger.log(level, "%s %s", event, text, extra={"event": event, "fields": fields})


class _Presence:
    __slots__ = ("join_seq", "conn", "generation", "evict_handle")

    def __init__(self, join_seq: int, conn: _Conn | None) -> None:
        self.join_seq = join_seq
        self.conn = conn
        self.generation = 0
        self.evict_handle: asyncio.TimerHandle | None = None


class _Room:
    """Runtime state of one room: head, present clients, recent entries, wake-up event.

    ``users`` counts the connections holding this object (from before their access check until
    their end).  A room with no user and nobody present is dropped from memory.  Recent entries
    are kept encoded: an entry is encoded once per fan-out, not once per receiver.
    """

    def __init__(self, name: str, head: int) -> None:
        self.name = name
        self.head = head
        self.lock = asyncio.Lock()
        self.presence: dict[str, _Presence] = {}
        self.tail: collections.deque[tuple[int, bytes]] = collections.deque(maxlen=_TAIL_CACHE)
        self.changed = asyncio.Event()
        self.users = 0

    def published(self, entry: LogEntry) -> None:
        if entry.seq <= self.head:
            return  # already known (another node's entry read twice, or an idempotent retry)
        if entry.seq != self.head + 1:
            self.tail.clear()  # entries in between come from storage (appended by other nodes)
        self.tail.append((entry.seq, P.encode(entry)))
        self.head = entry.seq
        event, self.changed = self.changed, asyncio.Event()
        event.set()

    def cached_after(self, cursor: int) -> list[tuple[int, bytes]] | None:
        """Encoded entries after ``cursor`` from memory, or None if they must be read from storage."""
        if cursor >= self.head:
            return []
        if not self.tail or self.tail[0][0] > cursor + 1:
            return None
        start = cursor + 1 - self.tail[0][0]
        return list(itertools.islice(self.tail, start, None))

    @property
    def idle(self) -> bool:
        return self.users == 0 and not self.presence and not self.lock.locked()


class _Conn:
    __slots__ = (
        "ws", "peer", "address", "room", "held_room", "client_id", "last_rx", "msg_bucket", "byte_bucket",
        "violations", "bye", "evicted", "closing", "tasks", "counted",
    )

    def __init__(self, ws: ServerConnection, now: float, limits: RateLimits) -> None:
        self.ws = ws
        try:
            self.peer = "%s:%s" % tuple(ws.remote_address[:2])
            self.address = str(ws.remote_address[0])
        except Exception:  # pragma: no cover - unix sockets, odd transports
            self.peer = self.address = "?"
        self.room: _Room | None = None
        self.held_room: _Room | None = None  # counted in its ``users`` until the handler ends
        self.counted = False  # counted in the per-address table
        self.client_id: str | None = None
        self.last_rx = now
        self.msg_bucket = TokenBucket(limits.messages_per_second, limits.message_burst, now)
        self.byte_bucket = TokenBucket(limits.bytes_per_second, limits.byte_burst, now)
        self.violations = TokenBucket(limits.violations_per_second, limits.violation_burst, now)
        self.bye = False
        self.evicted = False
        self.closing = False
        self.tasks: list[asyncio.Task[None]] = []


class DeliveryServer:
    """Asyncio WebSocket delivery service.

    Args:
        host, port: where to listen (``port=0`` picks a free port; see :attr:`port`).
        storage: the :class:`~.storage.Storage` (opened by :meth:`start`, closed by :meth:`stop`).
        heartbeat_interval: seconds between server PINGs.
        eviction_timeout: seconds of silence (connected) or absence (disconnected) after which a
            client is declared gone with an EVICTED notice.
        max_message_size: largest payload (APPEND payload or HELLO join payload) in bytes.
            Frames up to about twice that get a MESSAGE_TOO_LARGE error; larger WebSocket
            messages make the connection close with code 1009.
        rate_limits: per-connection :class:`RateLimits`.
        auth: the :class:`~.auth.Authenticator`: :class:`~.auth.AccessTokens` (per-client signed
            tokens) or :class:`TokenPolicy` (shared room tokens).  **Embedded default: shared room
            tokens** (``TokenPolicy()``, insecure against members who impersonate each other), so that
            existing embeddings ``DeliveryServer(host, port, storage)`` + ``DeliveryClient(url, room,
            room_token, client_id)`` keep working; the server logs a warning at start.
            ``orange-fast serve`` is secure by default (access tokens).
        token_policy: the older name for a :class:`TokenPolicy` ``auth`` (give one of the two).
        limits: :class:`~.limits.ServerLimits` (embedded default: ``ServerLimits()``, no
            per-address caps, no retention; the CLI uses ``ServerLimits.public()``).
        allowed_origins: exact ``Origin`` values accepted on the WebSocket handshake (others get
            HTTP 403).  Connections without an ``Origin`` header are non-browser clients and are
            accepted (they still need a token).  None (embedded default): no Origin check.
        hello_timeout: seconds a new connection has to send its HELLO.
        clock: wall clock for entry timestamps (seconds since the epoch).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        storage: Storage | None = None,
        *,
        heartbeat_interval: float = 5.0,
        eviction_timeout: float = 15.0,
        max_message_size: int = 1 << 20,
        rate_limits: RateLimits | None = None,
        token_policy: TokenPolicy | None = None,
        hello_timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        auth: Authenticator | None = None,
        limits: ServerLimits | None = None,
        allowed_origins: Sequence[str] | None = None,
    ) -> None:
        if storage is None or not isinstance(storage, Storage):
            raise TypeError("storage must be a Storage")
        if auth is not None and token_policy is not None:
            raise ValueError("give auth or token_policy, not both")
        auth = auth if auth is not None else token_policy if token_policy is not None else TokenPolicy()
        if not isinstance(auth, Authenticator):
            raise TypeError("auth must be an Authenticator (AccessTokens or TokenPolicy)")
        if limits is not None and not isinstance(limits, ServerLimits):
            raise TypeError("limits must be a ServerLimits")
        if allowed_origins is not None:
            allowed_origins = list(allowed_origins)
            if not all(isinstance(o, str) and o for o in allowed_origins):
                raise ValueError("allowed_origins must be non-empty strings")
        for name, value in (
            ("heartbeat_interval", heartbeat_interval),
            ("eviction_timeout", eviction_timeout),
            ("hello_timeout", hello_timeout),
        ):
            if not isinstance(value, (int, float)) or not 0 < value < 2**31 / 1000:
                raise ValueError(f"{name} must be a positive number of seconds")
        if heartbeat_interval >= eviction_timeout:
            raise ValueError("heartbeat_interval must be shorter than eviction_timeout")
        if not isinstance(max_message_size, int) or not 1 <= max_message_size <= 1 << 30:
            raise ValueError("max_message_size must be in [1, 2**30]")
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError("port must be in [0, 65535]")
        self.host = host
        self._requested_port = port
        self.storage = storage
        self.heartbeat_interval = float(heartbeat_interval)
        self.eviction_timeout = float(eviction_timeout)
        self.max_message_size = max_message_size
        self.rate_limits = rate_limits if rate_limits is not None else RateLimits()
        self.auth = auth
        self.token_policy = auth  # older attribute name
        self.limits = limits if limits is not None else ServerLimits()
        self.max_join_payload = min(self.limits.max_join_payload, max_message_size)
        self.allowed_origins = allowed_origins
        self._addresses = AddressTable(self.limits)
        self._overload = OverloadGauge(self.limits.overload_lag)
        self.hello_timeout = float(hello_timeout)
        self._clock = clock
        self._server: Server | None = None
        self._rooms: dict[str, _Room] = {}
        self._rooms_lock = asyncio.Lock()
        self._conns: set[_Conn] = set()
        self._bg: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._nonce = itertools.count(1)
        self._cluster: Any = None  # a .cluster.Cluster when the storage is shared by several nodes
        self.node_id = "local"
        """This node's id in the presence table (unique per process when the storage is shared)."""
        self.refusals: collections.Counter[str] = collections.Counter()
        """How many connections were refused, by error code name (for operators and tests)."""

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        """The bound TCP port (valid after :meth:`start`)."""
        if self._server is None:
            raise RuntimeError("server not started")
        sock = next(iter(self._server.sockets))
        return int(sock.getsockname()[1])

    @property
    def url(self) -> str:
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"ws://{host}:{self.port}"

    @property
    def rooms_in_memory(self) -> int:
        """Rooms currently held in memory (in use by a connection or with someone present)."""
        return len(self._rooms)

    @property
    def connection_count(self) -> int:
        """Open connections (those past the admission caps)."""
        return len(self._conns)

    @property
    def overloaded(self) -> bool:
        """Whether new connections are being shed because the event loop lags (see ``overload_lag``)."""
        return self._overload.shedding

    async def start(self) -> None:
        """Open the storage, re-arm eviction of clients left present by a previous run, listen."""
        if self._server is not None:
            raise RuntimeError("server already started")
        self._stopping = False
        if self.auth.insecure:
            _log(logging.WARNING, "insecure-auth", mode="shared-room-tokens",
                 note="any room member can connect as any other member's client id")
        await self.storage.open()
        if self.storage.shared:
            await self._join_cluster()
        else:
            for name in await self.storage.rooms_with_presence():
                room = await self._room(name)
                for client_id, presence in room.presence.items():
                    self._arm_eviction(room, client_id, presence)
        self._server = await serve(
            self._handler,
            self.host,
            self._requested_port,
            compression=None,
            ping_interval=None,
            max_size=2 * self.max_message_size + _FRAME_OVERHEAD,
            max_queue=16,
            open_timeout=self.hello_timeout,
            close_timeout=2.0,
            origins=self._origins(),
        )
        if self.limits.overload_lag is not None:
            self._spawn(self._watch_load())
        if self.limits.room_retention is not None:
            self._spawn(self._retention_sweeper(self.limits.room_retention))
        _log(logging.INFO, "listening", host=self.host, port=self.port)

    def _origins(self) -> list[Origin | None] | None:
        """websockets' ``origins``: the allowlist plus None (no Origin header: not a browser)."""
        if self.allowed_origins is None:
            return None
        return [*(Origin(o) for o in self.allowed_origins), None]

    async def stop(self) -> None:
        """Stop listening, close every connection (SHUTTING_DOWN) and the storage.

        Present clients stay present in the storage; after a restart they have
        ``eviction_timeout`` to reconnect and resume.
        """
        if self._server is None:
            return
        self._stopping = True
        for room in self._rooms.values():
            for presence in room.presence.values():
                if presence.evict_handle is not None:
                    presence.evict_handle.cancel()
                    presence.evict_handle = None
        conns = list(self._conns)
        await asyncio.gather(
            *(self._fatal(c, ErrorCode.SHUTTING_DOWN, "server stopping", close_code=1001) for c in conns),
            return_exceptions=True,
        )
        server, self._server = self._server, None
        server.close(close_connections=True)
        await server.wait_closed()
        for task in list(self._bg):
            task.cancel()
        await asyncio.gather(*self._bg, return_exceptions=True)
        self._rooms.clear()
        if self._cluster is not None:
            cluster, self._cluster = self._cluster, None
            await cluster.stop()
        await self.storage.close()
        _log(logging.INFO, "stopped")

    async def __aenter__(self) -> DeliveryServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def serve_until(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then :meth:`stop`."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    # ------------------------------------------------------------------ rooms and log

    async def _room(self, name: str) -> _Room:
        room = self._rooms.get(name)
        if room is not None:
            return room
        async with self._rooms_lock:
            room = self._rooms.get(name)
            if room is None:
                info = await self.storage.get_room(name)
                room = _Room(name, info.head if info is not None else 0)
                if self._cluster is None:  # with several nodes, room.presence holds this node's clients only
                    for client_id, join_seq in (await self.storage.present_clients(name)).items():
                        room.presence[client_id] = _Presence(join_seq, None)
                self._rooms[name] = room
            return room

    async def _hold_room(self, conn: _Conn, name: str) -> _Room | None:
        """The room for ``conn`` (counted as a user until the connection ends); None at the room cap."""
        cap = self.limits.max_rooms
        if name not in self._rooms and cap is not None and len(self._rooms) >= cap:
            return None
        room = await self._room(name)
        room.users += 1  # no await since _room returned: the room cannot be dropped in between
        conn.held_room = room
        return room

    def _release_room(self, conn: _Conn) -> None:
        room, conn.held_room = conn.held_room, None
        if room is not None:
            room.users -= 1
            self._drop_if_idle(room)

    def _drop_if_idle(self, room: _Room) -> None:
        """Free a room's memory once no connection uses it and nobody is present."""
        if room.idle and self._rooms.get(room.name) is room:
            del self._rooms[room.name]
            _log(logging.DEBUG, "room-unloaded", room=room.name)

    async def _watch_load(self, interval: float = 0.05) -> None:
        """Sample event-loop lag; the gauge decides when new connections are shed."""
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(interval)
            was = self._overload.shedding
            if self._overload.observe(max(0.0, loop.time() - before - interval)) != was:
                _log(logging.WARNING, "overload" if not was else "overload-over",
                     lag_ms=int(self._overload.lag * 1000), connections=len(self._conns))

    async def sweep_retention(self) -> list[str]:
        """Delete the logs of rooms nobody is present in and idle longer than ``room_retention``."""
        retention = self.limits.room_retention
        if retention is None:
            return []
        before_ms = max(0, self._now_ms() - int(retention * 1000))
        async with self._rooms_lock:  # no room can be loaded while its log is being deleted
            deleted = await self.storage.delete_idle_rooms(before_ms, keep=frozenset(self._rooms))
        for name in deleted:
            _log(logging.INFO, "room-deleted", room=name, reason="retention")
        return deleted

    async def _retention_sweeper(self, retention: float) -> None:
        period = min(3600.0, max(1.0, retention / 4))
        while True:
            await asyncio.sleep(period)
            try:
                await self.sweep_retention()
            except StorageError as exc:
                _log(logging.ERROR, "retention-failed", error=type(exc).__name__)

    async def _append_locked(
        self, room: _Room, entry: NewEntry, expected_seq: int | None = None, request_id: int | None = None
    ) -> LogEntry:
        """Append while holding ``room.lock``; wakes every connection of the room."""
        stored = await self.storage.append(room.name, entry, expected_seq, request_id)
        self._published(room, stored)
        return stored

    async def _remove_locked(self, room: _Room, client_id: str, entry_type: EntryType, epoch: int) -> bool:
        """Append LEFT/EVICTED (holding ``room.lock``) if the client is still present at ``epoch``."""
        stored = await self.storage.remove(room.name, NewEntry(entry_type, client_id, self._now_ms()), epoch or None)
        room.presence.pop(client_id, None)
        if stored is not None:
            self._published(room, stored)
        return stored is not None

    def _published(self, room: _Room, stored: LogEntry) -> None:
        room.published(stored)
        _log(
            logging.INFO if stored.entry_type != EntryType.MESSAGE else logging.DEBUG,
            "append", room=room.name, seq=stored.seq, type=stored.entry_type.name, sender=stored.sender,
            kind=stored.kind or "-", size=len(stored.payload), flags=stored.flags,
        )

    def _now_ms(self) -> int:
        return max(0, int(self._clock() * 1000))

    def _arm_eviction(self, room: _Room, client_id: str, presence: _Presence) -> None:
        """Declare a disconnected client gone after ``eviction_timeout`` unless it comes back.

        With several nodes the database records the time and any node's sweep evicts it.
        """
        if presence.evict_handle is not None:
            presence.evict_handle.cancel()
        if self._cluster is not None:
            room.presence.pop(client_id, None)
            self._spawn(self.storage.detach(room.name, client_id, presence.generation))
            return
        generation = presence.generation
        loop = asyncio.get_running_loop()
        presence.evict_handle = loop.call_later(
            self.eviction_timeout, lambda: self._spawn(self._evict_absent(room, client_id, generation))
        )

    def _spawn(self, coro: Any) -> None:
        if self._stopping:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    async def _evict_absent(self, room: _Room, client_id: str, generation: int) -> None:
        async with room.lock:
            presence = room.presence.get(client_id)
            if presence is None or presence.conn is not None or presence.generation != generation or self._stopping:
                return
            presence.evict_handle = None
            try:
                await self._remove_locked(room, client_id, EntryType.EVICTED, generation)
            except StorageError as exc:
                _log(logging.ERROR, "evict-failed", room=room.name, client=client_id, error=type(exc).__name__)
                self._arm_eviction(room, client_id, presence)
                return
            _log(logging.INFO, "evicted", room=room.name, client=client_id, reason="absent")
        self._drop_if_idle(room)

    # ------------------------------------------------------------------ connections

    async def _send(self, conn: _Conn, frame: P.Frame) -> bool:
        try:
            await conn.ws.send(P.encode(frame))
            return True
        except ConnectionClosed:
            return False

    async def _fatal(
        self, conn: _Conn, code: ErrorCode, detail: str, *, request_id: int = 0, seq: int = 0, close_code: int = 1008
    ) -> None:
        """Send a fatal ERROR and close the connection."""
        if conn.closing:
            return
        conn.closing = True
        _log(logging.INFO, "close", peer=conn.peer, room=conn.room.name if conn.room else "-",
             client=conn.client_id or "-", code=code.name)
        detail = "".join(c if " " <= c <= "~" else "?" for c in detail[:200])

        async def send_and_close() -> None:
            await self._send(conn, P.Error(code, detail, request_id, True, seq))
            await conn.ws.close(close_code, code.name)

        try:
            await asyncio.wait_for(send_and_close(), 2.0)
        except (asyncio.TimeoutError, ConnectionClosed):
            conn.ws.transport.abort()

    def _admission(self, conn: _Conn, now: float) -> Refusal | None:
        """Global and per-address caps on a new connection, before anything else is done for it."""
        cap = self.limits.max_connections
        if cap is not None and len(self._conns) >= cap:
            return Refusal(ErrorCode.SERVER_BUSY, "server full: too many connections")
        if self._overload.shedding:
            return Refusal(ErrorCode.SERVER_BUSY, "server overloaded: try again later")
        if not self._addresses.open(conn.address, now):
            return Refusal(ErrorCode.RATE_LIMITED, "too many connections from this address")
        conn.counted = True
        return None

    async def _refuse(self, conn: _Conn, refusal: Refusal, room: str = "-", client: str = "-") -> None:
        self.refusals[refusal.code.name] += 1
        _log(logging.INFO, "refused", peer=conn.peer, room=room, client=client, code=refusal.code.name)
        close_code = 1013 if refusal.code == ErrorCode.SERVER_BUSY else 1008
        await self._fatal(conn, refusal.code, refusal.detail, close_code=close_code)

    async def _handler(self, ws: ServerConnection) -> None:
        conn = _Conn(ws, asyncio.get_running_loop().time(), self.rate_limits)
        refusal = self._admission(conn, conn.last_rx)
        if refusal is not None:
            await self._refuse(conn, refusal)
            return
        self._conns.add(conn)
        try:
            await self._serve(conn)
        except ConnectionClosed:
            pass
        except StorageError as exc:
            _log(logging.ERROR, "storage-error", peer=conn.peer, error=type(exc).__name__)
            await self._fatal(conn, ErrorCode.INTERNAL_ERROR, "storage failure", close_code=1011)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug: log it, keep serving everyone else
            logger.exception("connection handler failed (peer=%s)", conn.peer)
            await self._fatal(conn, ErrorCode.INTERNAL_ERROR, "internal error", close_code=1011)
        finally:
            self._conns.discard(conn)
            for task in conn.tasks:
                task.cancel()
            await asyncio.gather(*conn.tasks, return_exceptions=True)
            try:
                await self._detach(conn)
            finally:
                self._release_room(conn)
                if conn.counted:
                    self._addresses.close(conn.address)

    async def _receive_hello(self, conn: _Conn) -> P.Hello | None:
        try:
            message = await asyncio.wait_for(conn.ws.recv(), self.hello_timeout)
        except asyncio.TimeoutError:
            await self._fatal(conn, ErrorCode.NOT_AUTHENTICATED, "no HELLO in time")
            return None
        conn.last_rx = asyncio.get_running_loop().time()
        if (
            isinstance(message, bytes)
            and len(message) >= 2
            and message[0] == P.FrameType.HELLO
            and message[1] != P.PROTOCOL_VERSION
        ):
            await self._fatal(conn, ErrorCode.UNSUPPORTED_VERSION, f"this server speaks version {P.PROTOCOL_VERSION}")
            return None
        try:
            frame = P.decode_client_frame(message)
        except MalformedFrameError as exc:
            _log(logging.INFO, "malformed", peer=conn.peer, reason=str(exc))
            await self._fatal(conn, ErrorCode.MALFORMED_FRAME, str(exc))
            return None
        if not isinstance(frame, P.Hello):
            await self._fatal(conn, ErrorCode.NOT_AUTHENTICATED, "HELLO required first")
            return None
        return frame

    async def _check_access(self, conn: _Conn, hello: P.Hello) -> _Room | None:
        """Authenticate the HELLO and hold its room (creating it if allowed); None if refused.

        Order matters for strangers: the per-address HELLO rate and the token are checked before
        any storage access or room memory, so a junk HELLO leaves nothing behind.
        """
        refusal: Refusal | None = None
        if not self._addresses.hello(conn.address, asyncio.get_running_loop().time()):
            refusal = Refusal(ErrorCode.RATE_LIMITED, "too many HELLOs from this address")
        elif len(hello.join_payload) > self.max_join_payload:
            refusal = Refusal(ErrorCode.MESSAGE_TOO_LARGE, f"join payload over {self.max_join_payload} bytes")
        else:
            refusal = self.auth.authenticate(hello)
        room = None
        if refusal is None:
            room = await self._hold_room(conn, hello.room)
            if room is None:
                refusal = Refusal(ErrorCode.SERVER_BUSY, "server full: too many rooms")
        if refusal is None:
            info = await self.storage.get_room(hello.room)
            access = self.auth.room_access(hello, info.token_hash if info is not None else None)
            if access.create_hash is not None:
                info = await self.storage.create_room(hello.room, access.create_hash, self._now_ms())
                # a racing HELLO may have created it first: decide again on what is stored
                access = self.auth.room_access(hello, info.token_hash)
            refusal = access.refusal
        if refusal is not None:
            await self._refuse(conn, refusal, hello.room, hello.client_id)
            return None
        return room

    async def _serve(self, conn: _Conn) -> None:
        hello = await self._receive_hello(conn)
        if hello is None:
            return
        room = await self._check_access(conn, hello)
        if room is None:
            return
        client_id = hello.client_id
        superseded: _Conn | None = None
        async with room.lock:
            if self._stopping:
                await self._fatal(conn, ErrorCode.SHUTTING_DOWN, "server stopping", close_code=1001)
                return
            if hello.resume_from > room.head:
                await self._catch_up(room)  # another node may have appended
            if hello.resume_from > room.head:
                await self._fatal(conn, ErrorCode.BAD_RESUME, "resume_from beyond the log head", seq=room.head)
                return
            # present or not, and the creator flag, are decided in the storage's transaction
            attached = await self.storage.attach(
                room.name, NewEntry(EntryType.JOINED, client_id, self._now_ms(), payload=hello.join_payload),
                self.node_id,
            )
            presence = room.presence.get(client_id)
            if presence is not None:
                if presence.evict_handle is not None:
                    presence.evict_handle.cancel()
                    presence.evict_handle = None
                superseded = presence.conn
            presence = room.presence[client_id] = _Presence(attached.join_seq, conn)
            presence.generation = attached.epoch
            join_seq = 0
            if attached.joined is not None:
                self._published(room, attached.joined)
                join_seq = attached.joined.seq
            conn.room, conn.client_id = room, client_id
            head = room.head
        if superseded is not None:
            self._spawn(self._fatal(superseded, ErrorCode.SUPERSEDED, "same client id connected again"))
        _log(logging.INFO, "attached", peer=conn.peer, room=room.name, client=client_id,
             resume_from=hello.resume_from, join_seq=join_seq, head=head)
        ready = P.Ready(
            head, join_seq, self._now_ms(), _ms(self.heartbeat_interval), _ms(self.eviction_timeout),
            self.max_message_size,
        )
        if not await self._send(conn, ready):
            return
        loop = asyncio.get_running_loop()
        conn.tasks.append(loop.create_task(self._stream(conn, room, hello.resume_from)))
        conn.tasks.append(loop.create_task(self._heartbeat(conn)))
        await self._read_loop(conn, room, client_id)

    async def _stream(self, conn: _Conn, room: _Room, cursor: int) -> None:
        """Send every entry after ``cursor`` in order: catch-up from storage, then live."""
        try:
            while True:
                frames = room.cached_after(cursor)
                if frames is None:
                    frames = [(e.seq, P.encode(e)) for e in await self.storage.read(room.name, cursor, _READ_PAGE)]
                if not frames:
                    changed = room.changed
                    if room.head > cursor:
                        continue
                    await changed.wait()
                    continue
                for seq, frame in frames:
                    if seq != cursor + 1:  # storage broke its contract: never skip silently
                        raise StorageError(f"log gap in room {room.name!r} after seq {cursor}")
                    await conn.ws.send(frame)  # waits while the socket's write buffer is full
                    cursor = seq
        except ConnectionClosed:
            return
        except StorageError as exc:
            _log(logging.ERROR, "stream-failed", room=room.name, client=conn.client_id, error=str(exc))
            await self._fatal(conn, ErrorCode.INTERNAL_ERROR, "storage failure", close_code=1011)

    async def _heartbeat(self, conn: _Conn) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                silent = loop.time() - conn.last_rx
                wait = min(self.heartbeat_interval, max(0.0, self.eviction_timeout - silent))
                await asyncio.sleep(wait)
                if loop.time() - conn.last_rx >= self.eviction_timeout:
                    conn.evicted = True
                    _log(logging.INFO, "silent", room=conn.room.name if conn.room else "-", client=conn.client_id)
                    await self._fatal(conn, ErrorCode.EVICTED, "no traffic within the eviction timeout")
                    return
                if not await self._send(conn, P.Ping(next(self._nonce) % (1 << 64))):
                    return
        except ConnectionClosed:
            return

    def _violation(self, conn: _Conn, now: float) -> bool:
        """Count a rejected frame; True if the connection crossed the abuse threshold."""
        return not conn.violations.try_consume(1, now)

    async def _read_loop(self, conn: _Conn, room: _Room, client_id: str) -> None:
        loop = asyncio.get_running_loop()
        async for message in conn.ws:
            now = loop.time()
            conn.last_rx = now
            size = len(message)
            if not (conn.msg_bucket.try_consume(1, now) and conn.byte_bucket.try_consume(size, now)):
                if self._violation(conn, now):
                    await self._fatal(conn, ErrorCode.ABUSE, "rate limit exceeded repeatedly")
                    return
                refusal = P.Error(ErrorCode.RATE_LIMITED, "rate limit exceeded", _peek_request_id(message))
                await self._send(conn, refusal)
                continue
            try:
                frame = P.decode_client_frame(message)
            except MalformedFrameError as exc:
                _log(logging.INFO, "malformed", room=room.name, client=client_id, reason=str(exc))
                await self._fatal(conn, ErrorCode.MALFORMED_FRAME, str(exc))
                return
            if isinstance(frame, P.Append):
                await self._on_append(conn, room, client_id, frame, now)
                if conn.closing:
                    return
            elif isinstance(frame, P.Ping):
                await self._send(conn, P.Pong(frame.nonce))
            elif isinstance(frame, P.Pong):
                pass
            elif isinstance(frame, P.Bye):
                await self._on_bye(conn, room, client_id)
                return
            else:  # a second HELLO
                await self._fatal(conn, ErrorCode.NOT_AUTHENTICATED, "HELLO only once per connection")
                return

    async def _on_append(self, conn: _Conn, room: _Room, client_id: str, frame: P.Append, now: float) -> None:
        if len(frame.payload) > self.max_message_size:
            if self._violation(conn, now):
                await self._fatal(conn, ErrorCode.ABUSE, "oversize messages repeatedly")
                return
            await self._send(
                conn,
                P.Error(ErrorCode.MESSAGE_TOO_LARGE, f"payload over {self.max_message_size} bytes", frame.request_id),
            )
            return
        entry = NewEntry(EntryType.MESSAGE, client_id, self._now_ms(), kind=frame.kind, payload=frame.payload)
        async with room.lock:
            presence = room.presence.get(client_id)
            if presence is None or presence.conn is not conn:
                # evicted or superseded meanwhile: this connection no longer speaks for the client
                await self._fatal(conn, ErrorCode.SUPERSEDED, "client is no longer present on this connection")
                return
            try:
                stored = await self._append_locked(room, entry, frame.expected_seq or None, frame.request_id or None)
            except SequenceConflictError as exc:
                head = exc.head
                stored = None
        if stored is None:
            await self._send(
                conn,
                P.Error(ErrorCode.SEQUENCE_CONFLICT, f"log head is {head}", frame.request_id, False, head),
            )
            return
        await self._send(conn, P.AppendOk(frame.request_id, stored.seq))

    async def _on_bye(self, conn: _Conn, room: _Room, client_id: str) -> None:
        conn.bye = True
        async with room.lock:
            presence = room.presence.get(client_id)
            if presence is not None and presence.conn is conn:
                await self._remove_locked(room, client_id, EntryType.LEFT, presence.generation)
        conn.closing = True
        await conn.ws.close(1000, "bye")

    async def _detach(self, conn: _Conn) -> None:
        """After a connection ended: evict now (silent), or arm the absence timer (dropped)."""
        room, client_id = conn.room, conn.client_id
        if room is None or client_id is None:
            return
        async with room.lock:
            presence = room.presence.get(client_id)
            if presence is None or presence.conn is not conn:
                return
            presence.conn = None
            if self._stopping:
                return
            if conn.evicted:
                try:
                    await self._remove_locked(room, client_id, EntryType.EVICTED, presence.generation)
                except StorageError as exc:
                    room.presence[client_id] = presence
                    _log(logging.ERROR, "evict-failed", room=room.name, client=client_id, error=type(exc).__name__)
                else:
                    _log(logging.INFO, "evicted", room=room.name, client=client_id, reason="silent")
                    return
            self._arm_eviction(room, client_id, presence)
        _log(logging.INFO, "detached", room=room.name, client=client_id)

    # ------------------------------------------------------------------ several nodes (see .cluster)

    async def _join_cluster(self) -> None:
        from .cluster import Cluster, new_node_id

        self.node_id = new_node_id()
        self._cluster = Cluster(
            self.storage, self, self.node_id,  # type: ignore[arg-type]
            interval=min(self.heartbeat_interval, self.eviction_timeout / 4),
            lease_ttl=max(3 * self.heartbeat_interval, 1.0),
            eviction_timeout=self.eviction_timeout, now_ms=self._now_ms,
        )
        try:
            await self._cluster.start()
        except BaseException:
            self._cluster = None
            await self.storage.close()
            raise

    async def _catch_up(self, room: _Room) -> None:
        """Publish what other nodes appended to ``room`` since its head (one read for all its streams)."""
        while True:
            entries = await self.storage.read(room.name, room.head, _READ_PAGE)
            for entry in entries:
                if entry.seq > room.head and entry.entry_type in (EntryType.LEFT, EntryType.EVICTED):
                    self._removed_elsewhere(room, entry)
                room.published(entry)
            if len(entries) < _READ_PAGE:
                return

    def _removed_elsewhere(self, room: _Room, entry: LogEntry) -> None:
        """Another node recorded that a client of this node left or was evicted: close its connection.

        (A node that lost its lease for longer than the eviction timeout had its clients evicted.)
        """
        presence = room.presence.get(entry.sender)
        if presence is None or presence.join_seq > entry.seq:
            return  # not here, or joined again after that entry
        del room.presence[entry.sender]
        if presence.evict_handle is not None:
            presence.evict_handle.cancel()
        if presence.conn is not None:
            presence.conn.evicted = False
            self._spawn(self._fatal(presence.conn, ErrorCode.EVICTED, "removed from the room by another node"))

    def _spawn_catch_up(self, room: _Room) -> None:
        async def run() -> None:
            try:
                await self._catch_up(room)
            except StorageError as exc:  # the streams read storage themselves when they can
                _log(logging.WARNING, "catch-up-failed", room=room.name, error=type(exc).__name__)

        self._spawn(run())

    def cluster_appended(self, room: str, seq: int) -> None:
        """Another node (or this one) committed ``seq`` in ``room``."""
        state = self._rooms.get(room)
        if state is not None and seq > state.head:
            self._spawn_catch_up(state)

    def cluster_resync(self) -> None:
        """The LISTEN connection was (re)established: notifications may have been lost."""
        for state in list(self._rooms.values()):
            self._spawn_catch_up(state)

    def cluster_attached(self, room: str, client: str, epoch: int, node: str) -> None:
        """``client`` attached on ``node`` at ``epoch``: close an older connection here (SUPERSEDED)."""
        state = self._rooms.get(room)
        presence = state.presence.get(client) if state is not None else None
        if node == self.node_id or presence is None or presence.generation >= epoch:
            return
        del state.presence[client]  # type: ignore[union-attr]
        if presence.conn is not None:
            self._spawn(self._fatal(presence.conn, ErrorCode.SUPERSEDED, "same client id connected again"))

    def cluster_evicted(self, room: str, entry: LogEntry) -> None:
        """A sweep on this node evicted ``entry.sender`` from ``room``."""
        state = self._rooms.get(room)
        if state is not None:
            state.presence.pop(entry.sender, None)
            state.published(entry)


def _ms(seconds: float) -> int:
    return min(2**32 - 1, max(0, int(math.ceil(seconds * 1000))))


def _peek_request_id(message: object) -> int:
    """The request id of an APPEND frame that is dropped before parsing (0 if not an APPEND)."""
    if isinstance(message, bytes) and len(message) >= 5 and message[0] == P.FrameType.APPEND:
        return int.from_bytes(message[1:5], "big")
    return 0
