"""A room of session clients for the call demo: the real delivery service and one
:class:`~orange_fast.session.client.SessionClient` per participant, on a private asyncio loop.

The clients agree on an MLS group through the delivery service (127.0.0.1, SQLite in
a temporary directory) with the designated committer, and each one is the
:class:`~orange_fast.rtc.keys.FrameKeys` of its participant: the aiortc hooks read its
thread-safe SFrame context and send KID from the media threads while the loop here
keeps the session alive (heartbeats, commits, key changes).
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import threading
from pathlib import Path
from typing import Any

__all__ = ["SessionRoom"]


class SessionRoom:
    """``n`` session clients in one room, converged before :meth:`start` returns.

    Use as a context manager.  :attr:`clients` are the per-participant key providers;
    :meth:`safety_numbers` what each participant shows.
    """

    def __init__(self, n: int, *, timeout: float = 60.0, room: str = "demo", netns: Any = None,
                 members: int | None = None, defer_clients: bool = False) -> None:
        """``netns``: run the delivery service and the clients inside this
        :class:`~orange_fast.harness.netns.Netns` (so browsers there reach it on 127.0.0.1);
        ``members``: the group size to converge on (``n`` plus members that join from
        elsewhere, e.g. browsers: then :meth:`start` does not wait, :meth:`wait_converged` does);
        ``defer_clients``: :meth:`start` creates the clients but connects them only at
        :meth:`start_clients` (so that someone else, e.g. a browser, is the room's first member)."""
        if n < 1:
            raise ValueError("a room needs at least one participant")
        self.n = n
        self.timeout = timeout
        self.room = room
        self.members = n if members is None else members
        self.netns = netns
        self.defer_clients = defer_clients
        self.left: set[int] = set()  # indices of clients that left (leave_client)
        self.clients: list[Any] = []
        self.url = ""
        self.token = secrets.token_bytes(24)  # the room token (a recorder joining the room needs it)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="session-room", daemon=True)
        self._tmp = tempfile.TemporaryDirectory(prefix="orange-fast-call-")
        self._server: Any = None

    def __enter__(self) -> SessionRoom:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run_loop(self) -> None:
        if self.netns is not None:
            from .netns import _enter

            _enter(self.netns.name)
        self._loop.run_forever()

    def _run(self, coro: Any, timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self) -> None:
        """Start the delivery service and the clients; wait until all share one epoch."""
        self._thread.start()
        try:
            self._run(self._start(), self.timeout + 10)
        except BaseException:
            self.stop()
            raise

    async def _start(self) -> None:
        from ..delivery.server import DeliveryServer
        from ..delivery.storage import SQLiteStorage
        from ..session.client import SessionClient, SessionConfig

        storage = SQLiteStorage(Path(self._tmp.name) / "rooms.db", synchronous="NORMAL")
        self._server = DeliveryServer("127.0.0.1", 0, storage)
        await self._server.start()
        self.url = self._server.url
        token = self.token
        config = SessionConfig(tick_interval=0.2)
        for i in range(self.n):
            self.clients.append(SessionClient(self.url, self.room, token, f"participant-{i}", config=config))
        if not self.defer_clients:
            await self._start_clients()

    def start_clients(self) -> None:
        """Connect the clients created by a ``defer_clients`` room (from any thread but the room's)."""
        self._run(self._start_clients(), self.timeout + 10)

    async def _start_clients(self) -> None:
        for client in self.clients:
            await client.start()
        if self.members == self.n:
            await self._converge()

    def wait_converged(self, timeout: float | None = None) -> None:
        """Block until :meth:`converged` (from any thread but the room's); TimeoutError otherwise."""
        t = self.timeout if timeout is None else timeout
        self._run(self._converge(t), t + 5)

    def expect_members(self, members: int) -> None:
        """Change the group size :meth:`wait_converged` waits for (someone else joined or left)."""
        self._loop.call_soon_threadsafe(setattr, self, "members", members)

    def leave_client(self, index: int, timeout: float | None = None) -> None:
        """Client ``index`` leaves (BYE); block until the others converge without it."""
        async def leave() -> None:
            await self.clients[index].leave(timeout=2.0)
            self.left.add(index)
            self.members -= 1
            await self._converge(timeout)

        t = self.timeout if timeout is None else timeout
        self._run(leave(), t + 10)

    def _active(self) -> list[Any]:
        return [c for i, c in enumerate(self.clients) if i not in self.left]

    async def _converge(self, timeout: float | None = None) -> None:
        await self._active()[0].wait_until(self._converged, self.timeout if timeout is None else timeout)

    def _converged(self) -> bool:
        active = self._active()
        states = {(c.gen, c.epoch, c.epoch_authenticator, c.safety) for c in active}
        return (
            all(c.in_group and c.send_kid() is not None for c in active)
            and len(states) == 1
            and all(len(c.roster) == self.members for c in active)
        )

    def safety_numbers(self) -> list[str]:
        """The safety number each participant shows (all equal when nobody is attacked)."""
        return [c.safety.text if c.safety is not None else "" for c in self.clients]

    def stop(self) -> None:
        """Leave, stop the delivery service and the loop; idempotent."""
        if self._thread.is_alive():
            try:
                self._run(self._stop(), 30)
            except Exception:  # best effort: the process is ending the demo anyway
                pass
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._tmp.cleanup()

    async def _stop(self) -> None:
        from ..session.testing import crash

        for client in self.clients:
            try:
                await client.leave(timeout=2.0)
            except Exception:
                await crash(client)
        if self._server is not None:
            await self._server.stop()
            self._server = None
