"""DeliveryClient against a hostile server (a real WebSocket server scripted by the test)."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio
from delivery_support import TOKEN
from websockets.asyncio.server import ServerConnection, serve

from orange_fast.delivery import DeliveryClient, EntryType, LogEntry, ProtocolError
from orange_fast.delivery import protocol as P

pytestmark = [pytest.mark.timeout(30)]

WAIT = 5.0
Script = Callable[[ServerConnection], Awaitable[None]]


@pytest_asyncio.fixture
async def scripted() -> AsyncIterator[Callable[[Script], Awaitable[str]]]:
    servers = []

    async def start(script: Script) -> str:
        server = await serve(script, "127.0.0.1", 0, compression=None, ping_interval=None)
        servers.append(server)
        port = next(iter(server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def ready(head: int = 0) -> bytes:
    return P.encode(P.Ready(head, 0, 0, 1000, 5000, 1 << 20))


def entry(seq: int) -> bytes:
    return P.encode(LogEntry(seq, 0, EntryType.MESSAGE, 0, "srv", "k", b"x"))


async def serve_then(frames: list[bytes | str], ws: ServerConnection) -> None:
    P.decode_client_frame(await ws.recv())  # the HELLO
    for frame in frames:
        await ws.send(frame)
    await ws.wait_closed()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "first",
    [b"\xff", b"", "text frame", entry(1), P.encode(P.AppendOk(1, 1)), ready()[:-1]],
    ids=["unknown-type", "empty", "text", "entry-before-ready", "append-ok-before-ready", "truncated-ready"],
)
async def test_bad_first_frame_fails_connect_with_protocol_error(
    scripted: Callable[[Script], Awaitable[str]], first: bytes | str
) -> None:
    url = await scripted(lambda ws: serve_then([first], ws))
    client = DeliveryClient(url, "room", TOKEN, "alice")
    with pytest.raises(ProtocolError):
        await asyncio.wait_for(client.connect(), WAIT)
    await client.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "frames",
    [
        [ready(3), entry(1), entry(3)],  # a gap
        [ready(1), b"\x82garbage"],  # malformed entry
        [ready(1), ready(1)],  # a second READY
    ],
    ids=["gap", "malformed-entry", "second-ready"],
)
async def test_hostile_stream_ends_client_with_protocol_error(
    scripted: Callable[[Script], Awaitable[str]], frames: list[bytes]
) -> None:
    url = await scripted(lambda ws: serve_then(frames, ws))
    client = DeliveryClient(url, "room", TOKEN, "alice")
    await asyncio.wait_for(client.connect(), WAIT)
    delivered = []
    with pytest.raises(ProtocolError):
        for _ in range(10):
            delivered.append((await client.next_entry(WAIT)).seq)
    assert delivered in ([], [1])  # nothing after the bad frame was delivered
    assert client.last_seq == (delivered[-1] if delivered else 0)
    await client.close()


@pytest.mark.asyncio
async def test_duplicates_from_server_are_dropped(scripted: Callable[[Script], Awaitable[str]]) -> None:
    url = await scripted(lambda ws: serve_then([ready(2), entry(1), entry(1), entry(2)], ws))
    client = DeliveryClient(url, "room", TOKEN, "alice")
    await client.connect()
    assert [(await client.next_entry(WAIT)).seq for _ in range(2)] == [1, 2]
    await client.close(leave=False)


@pytest.mark.asyncio
async def test_server_behind_resume_point_is_refused(scripted: Callable[[Script], Awaitable[str]]) -> None:
    url = await scripted(lambda ws: serve_then([ready(1)], ws))
    client = DeliveryClient(url, "room", TOKEN, "alice", resume_from=5)
    with pytest.raises(ProtocolError):
        await asyncio.wait_for(client.connect(), WAIT)
    await client.close()
