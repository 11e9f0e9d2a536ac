"""Fixtures for the delivery-service tests: real servers on 127.0.0.1:0 over real SQLite files."""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator

import pytest_asyncio
from delivery_support import TOKEN, ClientFactory, ServerFactory

from orange_fast.delivery import DeliveryClient, DeliveryServer, SQLiteStorage


@pytest_asyncio.fixture
async def make_server(tmp_path: Path) -> AsyncIterator[ServerFactory]:
    """Start a DeliveryServer (SQLite file in tmp_path, short timers); stopped at teardown."""
    servers: list[DeliveryServer] = []

    async def make(db: Path | None = None, port: int = 0, **kwargs: Any) -> DeliveryServer:
        kwargs.setdefault("heartbeat_interval", 0.5)
        kwargs.setdefault("eviction_timeout", 5.0)
        server = DeliveryServer("127.0.0.1", port, SQLiteStorage(db or tmp_path / "log.db", synchronous="NORMAL"), **kwargs)
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.stop()


@pytest_asyncio.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    """Connect a DeliveryClient; every client is closed (without BYE) at teardown."""
    clients: list[DeliveryClient] = []

    async def make(server: DeliveryServer | str, client_id: str, room: str = "room", token: bytes = TOKEN,
                   connect: bool = True, **kwargs: Any) -> DeliveryClient:
        url = server if isinstance(server, str) else server.url
        kwargs.setdefault("backoff_initial", 0.02)
        kwargs.setdefault("backoff_max", 0.2)
        client = DeliveryClient(url, room, token, client_id, **kwargs)
        clients.append(client)
        if connect:
            await client.connect()
        return client

    yield make
    for client in clients:
        await client.close(leave=False, timeout=1.0)
