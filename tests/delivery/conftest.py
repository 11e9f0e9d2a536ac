"""Fixtures for the delivery-service tests: real servers on 127.0.0.1:0 over real SQLite files and a real
PostgreSQL (started once per session in a temp folder; tests on it skip with the reason where it is absent).

``make_server`` is parametrized over both stores in the modules of ``_BOTH_STORES`` (server semantics).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from delivery_support import TOKEN, ClientFactory, ServerFactory

from orange_fast.delivery import DeliveryClient, DeliveryServer, SQLiteStorage, Storage
from orange_fast.delivery.pglocal import LocalPostgres, PostgresUnavailable
from orange_fast.delivery.pgstorage import PostgresStorage

_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """A PostgreSQL server for the whole session (initdb in a fresh temp folder, a free port)."""
    try:
        pg = LocalPostgres()
        pg.init()
        pg.start()
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL is not available: {exc}")
    yield pg
    pg.close()


@pytest.fixture
def pg_database(postgres: LocalPostgres) -> Callable[[], str]:
    """Create a fresh database on the session's PostgreSQL; returns its DSN."""
    return lambda: postgres.create_database(f"t{next(_databases)}")


# Modules whose server tests run on both stores; other modules' make_server uses SQLite (their tests may
# look at the SQLite file itself).
_BOTH_STORES = frozenset({"test_delivery_server", "test_delivery_fuzz"})


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_kind" in metafunc.fixturenames:
        both = metafunc.module.__name__.rsplit(".", 1)[-1] in _BOTH_STORES
        metafunc.parametrize("store_kind", ["sqlite", "postgresql"] if both else ["sqlite"])


@pytest.fixture
def make_storage(request: pytest.FixtureRequest, tmp_path: Path, store_kind: str) -> Callable[..., Storage]:
    """``make(db=None)``: a new store; the same ``db`` path names the same SQLite file or PostgreSQL database."""
    dsns: dict[str, str] = {}

    def make(db: Path | None = None) -> Storage:
        path = Path(db or tmp_path / "log.db")
        if store_kind == "sqlite":
            return SQLiteStorage(path, synchronous="NORMAL")
        if str(path) not in dsns:
            dsns[str(path)] = request.getfixturevalue("pg_database")()
        return PostgresStorage(dsns[str(path)])

    return make


@pytest_asyncio.fixture
async def make_server(make_storage: Callable[..., Storage]) -> AsyncIterator[ServerFactory]:
    """Start a DeliveryServer (SQLite file in tmp_path or a PostgreSQL database, short timers); stopped at teardown."""
    servers: list[DeliveryServer] = []

    async def make(db: Path | None = None, port: int = 0, **kwargs: Any) -> DeliveryServer:
        kwargs.setdefault("heartbeat_interval", 0.5)
        kwargs.setdefault("eviction_timeout", 5.0)
        server = DeliveryServer("127.0.0.1", port, make_storage(db), **kwargs)
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

    async def make(server: DeliveryServer | str | list[str], client_id: str, room: str = "room", token: bytes = TOKEN,
                   connect: bool = True, **kwargs: Any) -> DeliveryClient:
        url = server.url if isinstance(server, DeliveryServer) else server
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
