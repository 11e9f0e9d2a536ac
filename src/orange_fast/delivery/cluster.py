"""Several delivery nodes on one PostgreSQL database: fan-out, supersede, leases, eviction.

A :class:`Cluster` runs beside a :class:`~.server.DeliveryServer` whose storage is shared
(:class:`~.pgstorage.PostgresStorage`).  It owns no state of its own beyond its node id:

* **Fan-out.**  One dedicated connection LISTENs on :data:`~.pgstorage.LOG_CHANNEL`; each
  ``room:seq`` notification (sent by PostgreSQL only when the append committed) makes the server
  read the room from its cursor.  Notifications sent while the LISTEN connection is down are
  lost, so after every (re)connection the server re-reads every room it serves.
* **Supersede.**  :data:`~.pgstorage.ATTACH_CHANNEL` tells the node holding an older connection
  of a client that a newer attachment exists elsewhere: it closes that connection (SUPERSEDED).
* **Leases.**  The node renews its lease (``nodes.expires_at``, database clock) every
  ``interval``; a node that dies stops renewing.
* **Eviction.**  Every node sweeps with :meth:`~.pgstorage.PostgresStorage.evict_stale`: clients
  of dead nodes, and disconnected clients, that stay away longer than the eviction timeout get
  one EVICTED notice, appended by whichever node gets there first.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable
from typing import Any, Protocol

from .entry import LogEntry
from .errors import StorageError
from .pgstorage import ATTACH_CHANNEL, LOG_CHANNEL, PostgresStorage

__all__ = ["Cluster", "ClusterMember", "new_node_id"]

logger = logging.getLogger("orange_fast.delivery.cluster")


def new_node_id() -> str:
    """A node id unique across restarts: host, pid and random bits."""
    host = "".join(c for c in socket.gethostname() if c.isalnum())[:24] or "node"
    return f"{host}-{os.getpid()}-{secrets.token_hex(4)}"


class ClusterMember(Protocol):
    """What the cluster calls back on its server (all called on the event loop, must not block)."""

    def cluster_appended(self, room: str, seq: int) -> None: ...
    def cluster_attached(self, room: str, client: str, epoch: int, node: str) -> None: ...
    def cluster_resync(self) -> None: ...
    def cluster_evicted(self, room: str, entry: LogEntry) -> None: ...


class Cluster:
    """The node's membership: LISTEN connection, lease renewal and eviction sweeps.

    Args:
        storage: the shared store (its DSN is used for the LISTEN connection).
        member: the server to call back.
        node_id: this node's id (see :func:`new_node_id`).
        interval: seconds between lease renewals and eviction sweeps (and LISTEN health checks).
        lease_ttl: seconds a lease lasts without renewal (> ``interval``).
        eviction_timeout: seconds a client may stay away before it is evicted.
        now_ms: clock for the EVICTED entries' timestamps.
    """

    def __init__(
        self,
        storage: PostgresStorage,
        member: ClusterMember,
        node_id: str,
        *,
        interval: float,
        lease_ttl: float,
        eviction_timeout: float,
        now_ms: Callable[[], int],
    ) -> None:
        if not 0 < interval < lease_ttl:
            raise ValueError("need 0 < interval < lease_ttl")
        self.storage = storage
        self.member = member
        self.node_id = node_id
        self.interval = interval
        self.lease_ttl = lease_ttl
        self.eviction_timeout = eviction_timeout
        self._now_ms = now_ms
        self._tasks: list[asyncio.Task[None]] = []
        self._listening = asyncio.Event()
        self.listen_connections = 0
        """How many times the LISTEN connection was (re)established."""

    def __repr__(self) -> str:
        return f"Cluster(node_id={self.node_id!r})"

    async def start(self, timeout: float = 10.0) -> None:
        """Take the lease, start listening (waits until LISTEN is in place) and sweeping."""
        await self.storage.renew_lease(self.node_id, self.lease_ttl)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._listen()), loop.create_task(self._maintain())]
        try:
            await asyncio.wait_for(self._listening.wait(), timeout)
        except asyncio.TimeoutError:
            await self.stop(release=False)
            raise StorageError("cannot LISTEN on the database") from None

    async def stop(self, *, release: bool = True) -> None:
        """Stop the tasks; with ``release``, hand this node's clients to the eviction timer and drop the lease."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if release:
            try:
                await self.storage.release_node(self.node_id)
            except StorageError as exc:
                logger.warning("release-failed node=%s error=%s", self.node_id, type(exc).__name__)

    # ------------------------------------------------------------------ LISTEN

    def _notified(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        try:
            if channel == LOG_CHANNEL:
                room, _, seq = payload.rpartition(":")
                self.member.cluster_appended(room, int(seq))
            elif channel == ATTACH_CHANNEL:
                epoch, node, room, client = payload.split(" ")
                self.member.cluster_attached(room, client, int(epoch), node)
        except ValueError:
            logger.error("bad-notification channel=%s", channel)

    async def _listen(self) -> None:
        import asyncpg  # type: ignore[import-untyped]

        backoff = 0.05
        while True:
            conn = None
            try:
                conn = await asyncio.wait_for(
                    asyncpg.connect(self.storage.dsn,
                                    server_settings={"application_name": f"orange-fast-listen {self.node_id}"}),
                    10.0,
                )
                await conn.add_listener(LOG_CHANNEL, self._notified)
                await conn.add_listener(ATTACH_CHANNEL, self._notified)
                self.listen_connections += 1
                # anything committed while we were not listening: read every room again
                self.member.cluster_resync()
                self._listening.set()
                backoff = 0.05
                while not conn.is_closed():
                    await asyncio.sleep(self.interval)
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), max(self.interval, 1.0) * 5)
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError) as exc:
                logger.warning("listen-lost node=%s error=%s", self.node_id, type(exc).__name__)
            finally:
                if conn is not None:
                    conn.terminate()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    # ------------------------------------------------------------------ lease and sweep

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.storage.renew_lease(self.node_id, self.lease_ttl)
                for room, entry in await self.storage.evict_stale(self.eviction_timeout, self._now_ms):
                    logger.info("evicted room=%s client=%s seq=%d reason=gone", room, entry.sender, entry.seq)
                    self.member.cluster_evicted(room, entry)
            except StorageError as exc:
                logger.warning("maintain-failed node=%s error=%s", self.node_id, type(exc).__name__)
