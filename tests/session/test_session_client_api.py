"""Session client API: events, configuration errors, wrong tokens, churn with 8 clients, hygiene."""

from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path

import pytest
from session_client_support import (
    FAST,
    TOKEN,
    assert_all_decrypt,
    close_all,
    start_client,
    start_server,
    wait_converged,
)

from orange_fast.delivery.errors import AuthenticationFailedError
from orange_fast.session.client import SessionClient, SessionConfig, SessionEvent
from orange_fast.session.testing import crash

pytestmark = [pytest.mark.timeout(60)]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tick_interval": 0},
        {"grace_period": -1.0},
        {"append_timeout": float("inf")},
        {"update_interval": -1},
        {"mls_suite": 99},
        {"sframe_suite": 0},
    ],
)
def test_bad_config_raises_typed_errors(kwargs: dict) -> None:
    with pytest.raises((ValueError, TypeError)):
        SessionConfig(**kwargs)


def _drain(q: "asyncio.Queue[SessionEvent]") -> list[SessionEvent]:
    out = []
    while not q.empty():
        out.append(q.get_nowait())
    return out


@pytest.mark.asyncio
async def test_events_follow_mls_membership(tmp_path: Path) -> None:
    server = await start_server(tmp_path / "log.db")
    clients = []
    try:
        alice = await start_client(server.url, "alice")
        clients.append(alice)
        for name in ("bob", "carol"):
            clients.append(await start_client(server.url, name))
        await wait_converged(clients)
        events = _drain(alice.events)
        kinds = [e.kind for e in events]
        assert "epoch" in kinds and "safety" in kinds
        assert sorted(e.identity for e in events if e.kind == "joined") == ["alice", "bob", "carol"]
        assert events[-1].kind in ("safety", "joined")
        assert [e.detail for e in events if e.kind == "safety"][-1] == alice.safety.text
        await clients.pop(1).leave()
        await wait_converged(clients)
        events = _drain(alice.events)
        assert [e.identity for e in events if e.kind == "left"] == ["bob"]
        assert all(e.epoch == alice.epoch for e in events if e.kind in ("left", "epoch"))
        carol = clients[1]
        await carol.leave()
        events = _drain(carol.events)
        assert [e.kind for e in events][-1] == "lost" and events[-1].detail == "left"
        assert carol.roster == () and carol.send_kid() is None and carol.safety is None
    finally:
        await close_all(clients)
        await server.stop()


@pytest.mark.asyncio
async def test_wrong_room_token_is_a_typed_error(tmp_path: Path) -> None:
    server = await start_server(tmp_path / "log.db")
    clients = []
    try:
        clients.append(await start_client(server.url, "owner"))
        intruder = SessionClient(server.url, "room", b"another-token-0123456789", "intruder", config=FAST)
        with pytest.raises(AuthenticationFailedError):
            await intruder.start()
    finally:
        await close_all(clients)
        await server.stop()


@pytest.mark.asyncio
async def test_eight_clients_random_churn_converges(tmp_path: Path) -> None:
    rng = random.Random(4242)
    server = await start_server(tmp_path / "log.db", eviction_timeout=0.6)
    live: dict[str, SessionClient] = {}
    gone: list[SessionClient] = []
    try:
        for i in range(5):
            live[f"x{i}"] = await start_client(server.url, f"x{i}")
        for step in range(10):
            action = rng.choice(["join", "leave", "crash", "join"]) if len(live) > 2 else "join"
            if action == "join" or len(live) >= 8:
                if len(live) < 8:
                    name = next(f"x{i}" for i in range(12) if f"x{i}" not in live)
                    live[name] = await start_client(server.url, name)
            else:
                name = rng.choice(sorted(live))
                client = live.pop(name)
                gone.append(client)
                await (client.leave() if action == "leave" else crash(client))
            if step % 3 == 2:
                await wait_converged(list(live.values()), 20)
        await wait_converged(list(live.values()), 20)
        assert_all_decrypt(list(live.values()))
        assert all(c.stats.internal_errors == 0 for c in live.values())
    finally:
        await close_all(list(live.values()) + gone)
        await server.stop()


@pytest.mark.asyncio
async def test_reprs_and_logs_hold_no_secrets(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = await start_server(tmp_path / "log.db")
    clients = []
    try:
        for name in ("s0", "s1"):
            clients.append(await start_client(server.url, name))
        await wait_converged(clients)
        group = clients[0].ops.group
        secrets = [
            group.export_secret(b"SFrame 1.0 Base Key", b"", 16).hex(),
            TOKEN.hex(),
            TOKEN.decode(),
        ]
        text = caplog.text + repr(clients[0]) + repr(clients[0].roster) + repr(clients[0].ops)
        text += repr(clients[0].frame_keys)
        text += repr(clients[0].status())
        for s in secrets:
            assert s not in text
    finally:
        await close_all(clients)
        await server.stop()


@pytest.mark.asyncio
async def test_roster_events_tell_members_apart_by_key(tmp_path: Path) -> None:
    """A client that comes back with a new KeyPackage is a new member (new signature key): the
    others see ``joined`` for the new key, ``duplicate`` while both leaves are in the tree, and
    ``left`` for the old key; ``roster`` events carry each new roster."""
    server = await start_server(tmp_path / "log.db", eviction_timeout=3.0)
    clients = []
    try:
        for name in ("alice", "bob"):
            clients.append(await start_client(server.url, name))
        await wait_converged(clients)
        alice = clients[0]
        old_key = next(r.signature_key for r in alice.roster if r.identity == "bob")
        _drain(alice.events)
        await crash(clients.pop())
        clients.append(await start_client(server.url, "bob"))  # before the server evicts the old one
        await wait_converged(clients)
        new_key = next(r.signature_key for r in alice.roster if r.identity == "bob")
        assert new_key != old_key and not any(r.duplicate for r in alice.roster)
        events = [e for e in _drain(alice.events) if e.kind in ("roster", "joined", "left", "duplicate")]
        assert [(e.kind, e.identity) for e in events if e.kind != "roster"] == [
            ("joined", "bob"), ("duplicate", "bob"), ("left", "bob")
        ]
        joined, left = (next(e for e in events if e.kind == k) for k in ("joined", "left"))
        assert joined.leaf != left.leaf
        assert [e.detail for e in events if e.kind == "roster"] == ["alice,bob,bob", "alice,bob"]
        assert alice.status()["duplicates"] == []
    finally:
        await close_all(clients)
        await server.stop()


def test_public_names_of_the_session_package() -> None:
    from orange_fast import session
    from orange_fast.session import (
        SafetyNumber,
        SessionClient,
        SessionConfig,
        SessionError,
    )
    from orange_fast.session.errors import CommitterError, GroupOpsError
    from orange_fast.session.mlsops import MLSOpsError
    from orange_fast.session.wire import WireError

    assert session.SessionEvent.__module__ == "orange_fast.session.client"
    assert SafetyNumber.__module__ == "orange_fast.session.safety"
    for err in (CommitterError, GroupOpsError, MLSOpsError, WireError):
        assert issubclass(err, SessionError)
    with pytest.raises(AttributeError):
        session.NoSuchName  # noqa: B018
    # one property for the safety number; no test hook on the public client
    for name in ("safety_value", "safety_number", "crash"):
        assert not hasattr(SessionClient, name)
    assert SessionConfig().update_interval * SessionConfig().tick_interval == 300.0  # self-update every 5 min


def test_importing_the_package_loads_no_client() -> None:
    import subprocess
    import sys

    code = ("import sys, orange_fast.session as s; assert 'orange_fast.session.client' not in sys.modules; "
            "s.SessionClient; assert 'orange_fast.session.client' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
