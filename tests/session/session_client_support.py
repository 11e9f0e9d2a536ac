"""Helpers for the session-client tests: real servers, clients, convergence checks, a freezable TCP proxy."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any, Iterable

from orange_fast.delivery import DeliveryServer, SQLiteStorage  # noqa: F401 (re-exported for tests)
from orange_fast.session.client import SessionClient, SessionConfig
from orange_fast.session.testing import crash
from orange_fast.sframe import SFrameError

TOKEN = b"session-test-token-0123456789"
ROOM = "room"
FAST = SessionConfig(tick_interval=0.1, grace_period=0.5, append_timeout=5.0, update_interval=0)
DELIVERY_OPTIONS = {"backoff_initial": 0.02, "backoff_max": 0.2, "connect_timeout": 3.0}


async def start_server(path: Path, **kwargs: Any) -> DeliveryServer:
    kwargs.setdefault("heartbeat_interval", 0.2)
    kwargs.setdefault("eviction_timeout", 1.0)
    server = DeliveryServer("127.0.0.1", 0, SQLiteStorage(path, synchronous="NORMAL"), **kwargs)
    await server.start()
    return server


async def start_client(url: str, client_id: str, *, room: str = ROOM, config: SessionConfig = FAST,
                       **options: Any) -> SessionClient:
    opts = dict(DELIVERY_OPTIONS)
    opts.update(options)
    client = SessionClient(url, room, TOKEN, client_id, config=config, delivery_options=opts)
    await client.start()
    return client


async def join_all(clients: list[SessionClient], url: str, names: Iterable[str]) -> None:
    """Start a client per name (appended to ``clients`` as it starts, so callers can close
    them all) and wait until they form one group."""
    for name in names:
        clients.append(await start_client(url, name))
    await wait_converged(clients)


async def append_and_wait(sender: Any, clients: Iterable[SessionClient], kind: str, payload: bytes) -> int:
    """Append ``(kind, payload)`` with a delivery client and wait until every client read it."""
    seq = await sender.append(kind, payload)
    for c in clients:
        await c.wait_until(lambda c=c: c.last_seq >= seq, 10)
    return seq


def converged(clients: Iterable[SessionClient]) -> bool:
    """All clients are in one group at one epoch with the same authenticator and full rosters."""
    clients = list(clients)
    if not clients or not all(c.in_group for c in clients):
        return False
    if len({(c.gen, c.epoch, c.epoch_authenticator, c.safety) for c in clients}) != 1:
        return False
    ids = sorted(c.client_id for c in clients)
    return all(sorted(r.identity for r in c.roster) == ids for c in clients) and all(
        c.committer.view.idle() for c in clients
    )


async def wait_converged(clients: list[SessionClient], timeout: float = 20.0) -> None:
    async def loop() -> None:
        while not converged(clients):
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(loop(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError("no convergence: " + repr([c.status() for c in clients])) from None


def frame(sender: SessionClient, payload: bytes) -> bytes:
    kid = sender.send_kid()
    assert kid is not None, f"{sender.client_id} has no send key"
    return sender.context.encrypt(kid, payload)


def can_decrypt(receiver: SessionClient, ciphertext: bytes) -> bool:
    try:
        receiver.context.decrypt(ciphertext)
    except SFrameError:
        return False
    return True


def assert_all_decrypt(clients: list[SessionClient]) -> None:
    for sender in clients:
        payload = b"frame from " + sender.client_id.encode()
        for receiver in clients:
            if receiver is sender:
                continue
            ct = frame(sender, payload)
            assert receiver.context.decrypt(ct) == payload, (sender.client_id, receiver.client_id)


async def close_all(clients: Iterable[SessionClient]) -> None:
    for c in clients:
        with contextlib.suppress(Exception):
            await crash(c)


class FreezableProxy:
    """A TCP relay on 127.0.0.1 whose traffic can be frozen (connections stay open, no bytes move)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.flowing = asyncio.Event()
        self.flowing.set()
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"ws://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    def freeze(self) -> None:
        self.flowing.clear()

    def thaw(self) -> None:
        self.flowing.set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while True:
                    data = await src.read(65536)
                    if not data:
                        break
                    await self.flowing.wait()
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.close()

        tasks = [asyncio.ensure_future(pump(reader, up_w)), asyncio.ensure_future(pump(up_r, writer))]
        for t in tasks:
            self._tasks.add(t)  # type: ignore[arg-type]
            t.add_done_callback(self._tasks.discard)  # type: ignore[arg-type]
        await asyncio.gather(*tasks, return_exceptions=True)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class ForgingServer(DeliveryServer):
    """A hostile delivery server (test only): it can append entries under any sender id."""

    async def forge(self, room_name: str, sender: str, kind: str, payload: bytes) -> int:
        from orange_fast.delivery import EntryType, NewEntry

        room = await self._room(room_name)
        async with room.lock:
            stored = await self._append_locked(
                room, NewEntry(EntryType.MESSAGE, sender, self._now_ms(), kind=kind, payload=payload)
            )
        return stored.seq

    async def payloads(self, room_name: str, kind: str) -> list[tuple[int, str, bytes]]:
        """(seq, sender, payload) of every stored message of ``kind``."""
        entries = await self.storage.read(room_name, 0, 100000)
        return [(e.seq, e.sender, e.payload) for e in entries if e.kind == kind]


async def start_forging_server(path: Path, **kwargs: Any) -> ForgingServer:
    kwargs.setdefault("heartbeat_interval", 0.2)
    kwargs.setdefault("eviction_timeout", 1.0)
    server = ForgingServer("127.0.0.1", 0, SQLiteStorage(path, synchronous="NORMAL"), **kwargs)
    await server.start()
    return server


def snapshot(clients: Iterable[SessionClient]) -> list[tuple[Any, ...]]:
    """What must not change under hostile input: epoch, authenticator, roster, keys, committer view."""
    return [
        (c.gen, c.epoch, c.epoch_authenticator, c.roster, c.send_kid(), c.key_generation(),
         c.committer.view.members, c.committer.view.waiting, c.committer.view.stale)
        for c in clients
    ]
