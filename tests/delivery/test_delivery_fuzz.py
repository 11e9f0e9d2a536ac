"""Hostile frames against one running server: each gets a typed fatal error, nobody else notices."""

from __future__ import annotations

import asyncio
import itertools
from typing import AsyncIterator

import pytest
import pytest_asyncio
from delivery_support import TOKEN, ClientFactory, ServerFactory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect

from orange_fast.delivery import DeliveryClient, DeliveryServer, ErrorCode
from orange_fast.delivery import protocol as P

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

CLIENT_TYPES = {0x01, 0x02, 0x03, 0x10, 0x11}
WAIT = 5.0

valid_client_frames = st.one_of(
    st.builds(P.Hello, st.just("room"), st.just(TOKEN), st.just("x"), st.integers(0, 5), st.binary(max_size=20)),
    st.builds(P.Append, st.integers(0, 2**32 - 1), st.sampled_from(["k", "commit"]), st.binary(max_size=40),
              st.integers(0, 10)),
    st.builds(P.Ping, st.integers(0, 2**64 - 1)),
    st.builds(P.Pong, st.integers(0, 2**64 - 1)),
)


@st.composite
def truncated(draw: st.DrawFn) -> bytes:
    raw = P.encode(draw(valid_client_frames))
    return raw[: draw(st.integers(1, len(raw) - 1))]


# Every strategy below builds bytes that are malformed *by construction* (the expectation does
# not come from the parser under test).
garbage = st.one_of(
    st.binary(min_size=1, max_size=80).filter(lambda b: b[0] not in CLIENT_TYPES),  # unknown frame type
    truncated(),
    st.tuples(valid_client_frames, st.binary(min_size=1, max_size=16)).map(lambda t: P.encode(t[0]) + t[1]),
    st.just(b""),
    st.text(max_size=30),  # a text WebSocket message
    st.builds(lambda tail: b"\x82" + tail, st.binary(max_size=40)),  # a server-only frame type
)


@pytest_asyncio.fixture
async def live(
    make_server: ServerFactory, make_client: ClientFactory
) -> AsyncIterator[tuple[DeliveryServer, DeliveryClient]]:
    server = await make_server(heartbeat_interval=1.0, eviction_timeout=30.0)
    healthy = await make_client(server, "healthy")
    yield server, healthy


_ids = itertools.count()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=garbage, after_hello=st.booleans())
async def test_garbage_gets_typed_error_and_others_keep_working(
    live: tuple[DeliveryServer, DeliveryClient], frame: bytes | str, after_hello: bool
) -> None:
    server, healthy = live
    ws = await connect(server.url, compression=None, ping_interval=None, open_timeout=WAIT)
    try:
        if after_hello:
            await ws.send(P.encode(P.Hello("room", TOKEN, f"fuzz{next(_ids)}")))
            assert isinstance(P.decode_server_frame(await asyncio.wait_for(ws.recv(), WAIT)), P.Ready)
        await ws.send(frame)
        error = None
        for _ in range(1000):  # skip the room's entries until the ERROR
            reply = P.decode_server_frame(await asyncio.wait_for(ws.recv(), WAIT))
            if isinstance(reply, P.Error):
                error = reply
                break
        assert error is not None
        assert (error.code, error.fatal) == (ErrorCode.MALFORMED_FRAME, True)
        await asyncio.wait_for(ws.wait_closed(), WAIT)
        assert ws.close_code == 1008
    finally:
        await ws.close()
    # the server still serves everybody else
    seq = await healthy.append("k", b"ok")
    assert seq >= 2
