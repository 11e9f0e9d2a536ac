"""Session clients on a real delivery server (127.0.0.1, SQLite): joins, leaves, rejoins, evictions, keys."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from session_client_support import (
    ROOM,
    TOKEN,
    FreezableProxy,
    assert_all_decrypt,
    can_decrypt,
    close_all,
    converged,
    frame,
    start_client,
    start_server,
    wait_converged,
)

from orange_fast.delivery import DeliveryClient
from orange_fast.rtc.keys import FrameKeys
from orange_fast.session.testing import crash
from orange_fast.sframe import UnknownKeyError

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


async def test_six_members_converge_and_decrypt_each_other(tmp_path: Path) -> None:
    server = await start_server(tmp_path / "log.db")
    clients = []
    try:
        for i in range(6):
            clients.append(await start_client(server.url, f"member{i}"))
        await wait_converged(clients)
        first = clients[0]
        # Roster from MLS state: every member sees the same identities with the same signature keys.
        rosters = {tuple(sorted((r.identity, r.signature_key) for r in c.roster)) for c in clients}
        assert len(rosters) == 1
        assert sorted(r.identity for r in first.roster) == [f"member{i}" for i in range(6)]
        assert first.safety is not None and len(first.safety.text.split()) == 12
        assert len({c.safety for c in clients}) == 1
        assert len({c.send_kid() for c in clients}) == 6
        for c in clients:  # RFC 9605 §5.2 layout, 8 epoch bits: leaf index above the epoch's low byte
            assert c.send_kid() == (c.ops.group.own_leaf_index << 8) | (c.epoch & 0xFF)
        for c in clients:
            assert isinstance(c, FrameKeys)
            assert c.stats.internal_errors == 0 and c.stats.rejected == 0
        assert_all_decrypt(clients)
        # Only the designated committer (the first member) committed the adds.
        assert first.committer.view.committer() == "member0"
    finally:
        await close_all(clients)
        await server.stop()


async def test_removed_member_and_newcomer_cannot_read_other_epochs(tmp_path: Path) -> None:
    server = await start_server(tmp_path / "log.db")
    clients = []
    try:
        for i in range(4):
            clients.append(await start_client(server.url, f"m{i}"))
        await wait_converged(clients)
        leaver = clients.pop(2)
        old_group = leaver.ops.group
        assert old_group is not None
        old_epoch = leaver.epoch
        before = frame(clients[0], b"before the newcomer")
        await leaver.leave()
        await wait_converged(clients)
        assert clients[0].epoch == old_epoch + 1
        assert all(r.identity != "m2" for r in clients[0].roster)
        new_frame = frame(clients[1], b"after the leave")
        assert can_decrypt(clients[0], new_frame)
        # The leaver dropped its keys, and its last MLS state does not yield the new epoch's secrets.
        assert not can_decrypt(leaver, new_frame)
        assert old_group.epoch == old_epoch
        from orange_fast.session.keys import EXPORTER_LABEL
        new_group = clients[0].ops.group
        assert old_group.export_secret(EXPORTER_LABEL, b"", 16) != new_group.export_secret(EXPORTER_LABEL, b"", 16)
        # Frames of the previous epoch still decrypt for members (grace period) ...
        assert can_decrypt(clients[2], before)
        # ... but a newcomer cannot read frames from before it joined.
        newcomer = await start_client(server.url, "late")
        clients.append(newcomer)
        await wait_converged(clients)
        with pytest.raises(UnknownKeyError):
            newcomer.context.decrypt(before)
        assert_all_decrypt(clients)
    finally:
        await close_all(clients)
        await server.stop()


async def test_grace_period_keeps_previous_epoch_then_drops_it(tmp_path: Path) -> None:
    server = await start_server(tmp_path / "log.db")
    clients = []
    try:
        for i in range(2):
            clients.append(await start_client(server.url, f"g{i}"))
        await wait_converged(clients)
        old = frame(clients[0], b"old epoch")
        clients.append(await start_client(server.url, "g2"))
        await wait_converged(clients)
        assert can_decrypt(clients[1], old)  # within the grace period
        await asyncio.sleep(clients[1].config.grace_period + 0.3)
        with pytest.raises(UnknownKeyError):
            clients[1].context.decrypt(frame_replay_safe(old))
    finally:
        await close_all(clients)
        await server.stop()


def frame_replay_safe(ct: bytes) -> bytes:
    return ct  # the key is gone, so the lookup fails before any replay check


async def test_leave_and_rejoin_with_same_id(tmp_path: Path) -> None:
    server = await start_server(tmp_path / "log.db")
    clients = []
    try:
        for i in range(3):
            clients.append(await start_client(server.url, f"r{i}"))
        await wait_converged(clients)
        first_key = {r.identity: r.signature_key for r in clients[0].roster}["r1"]
        await clients.pop(1).leave()
        await wait_converged(clients)
        clients.append(await start_client(server.url, "r1"))
        await wait_converged(clients)
        # A rejoin is a new leaf with a fresh signature key.
        assert {r.identity: r.signature_key for r in clients[0].roster}["r1"] != first_key
        # The committer leaving hands over to the next-oldest member.
        await clients.pop(0).leave()
        await wait_converged(clients)
        assert clients[0].committer.view.committer() == "r2"
        assert_all_decrypt(clients)
    finally:
        await close_all(clients)
        await server.stop()


async def test_everybody_leaves_then_the_room_is_recreated(tmp_path: Path) -> None:
    server = await start_server(tmp_path / "log.db")
    clients = []
    try:
        for i in range(2):
            clients.append(await start_client(server.url, f"e{i}"))
        await wait_converged(clients)
        gen = clients[0].gen
        for c in clients:
            await c.leave()
        clients = [await start_client(server.url, f"n{i}") for i in range(3)]
        await wait_converged(clients)
        assert clients[0].gen == gen + 1
        assert clients[0].epoch is not None
        assert_all_decrypt(clients)
    finally:
        await close_all(clients)
        await server.stop()


async def test_crashed_member_is_evicted_and_removed(tmp_path: Path) -> None:
    server = await start_server(tmp_path / "log.db", eviction_timeout=0.8)
    clients = []
    try:
        for i in range(4):
            clients.append(await start_client(server.url, f"c{i}"))
        await wait_converged(clients)
        crashed = clients.pop(0)  # the committer itself
        await crash(crashed)
        await wait_converged(clients)
        assert all(r.identity != "c0" for r in clients[0].roster)
        assert_all_decrypt(clients)
    finally:
        await close_all(clients)
        await server.stop()


async def test_lobby_visitor_leaving_is_a_noop(tmp_path: Path) -> None:
    server = await start_server(tmp_path / "log.db")
    clients = []
    try:
        for i in range(3):
            clients.append(await start_client(server.url, f"l{i}"))
        await wait_converged(clients)
        state = [(c.gen, c.epoch, c.epoch_authenticator) for c in clients]
        visitor = DeliveryClient(server.url, ROOM, TOKEN, "visitor")
        await visitor.connect()
        await visitor.close(leave=True)
        await clients[0].wait_until(lambda: clients[0].last_seq >= visitor.last_seq + 1, 5)
        await asyncio.sleep(0.3)
        assert [(c.gen, c.epoch, c.epoch_authenticator) for c in clients] == state
        assert converged(clients)
        assert all(c.stats.group_losses == 0 and c.stats.internal_errors == 0 for c in clients)
    finally:
        await close_all(clients)
        await server.stop()


async def test_member_evicted_while_connected_rejoins(tmp_path: Path) -> None:
    server = await start_server(tmp_path / "log.db", heartbeat_interval=0.2, eviction_timeout=0.8)
    proxy = FreezableProxy(server.port)
    await proxy.start()
    clients = []
    try:
        for i in range(2):
            clients.append(await start_client(server.url, f"v{i}"))
        victim = await start_client(proxy.url, "victim")
        clients.append(victim)
        await wait_converged(clients)
        epoch = clients[0].epoch
        proxy.freeze()  # the victim's connection stays open but goes silent: the server evicts it
        await clients[0].wait_until(lambda: clients[0].epoch is not None and clients[0].epoch > epoch, 10)
        assert all(r.identity != "victim" for r in clients[0].roster)
        proxy.thaw()
        await wait_converged(clients)
        assert "evicted" in " ".join(victim.stats.lost_reasons) or victim.stats.group_losses >= 1
        assert_all_decrypt(clients)
        assert all(c.stats.internal_errors == 0 for c in clients)
    finally:
        await close_all(clients)
        await proxy.stop()
        await server.stop()


async def test_concurrent_joins_into_empty_room_make_one_group(tmp_path: Path) -> None:
    server = await start_server(tmp_path / "log.db")
    clients = []
    try:
        clients = list(await asyncio.gather(*(start_client(server.url, f"p{i}") for i in range(5))))
        await wait_converged(clients)
        assert clients[0].gen == 1  # one group was ever created
        assert_all_decrypt(clients)
    finally:
        await close_all(clients)
        await server.stop()


async def test_reconnect_resumes_without_losing_commits(tmp_path: Path) -> None:
    server = await start_server(tmp_path / "log.db", eviction_timeout=3.0)
    clients = []
    try:
        for i in range(3):
            clients.append(await start_client(server.url, f"k{i}"))
        await wait_converged(clients)
        for _ in range(3):
            clients[2].delivery.abort_connection()
            clients.append(await start_client(server.url, f"k{len(clients)}"))
            await wait_converged(clients)
        assert clients[2].stats.group_losses == 0
        assert_all_decrypt(clients)
    finally:
        await close_all(clients)
        await server.stop()


async def test_periodic_self_update_changes_epoch_and_keys(tmp_path: Path) -> None:
    from orange_fast.session.client import SessionConfig

    cfg = SessionConfig(tick_interval=0.1, update_interval=3, grace_period=0.5)
    server = await start_server(tmp_path / "log.db")
    clients = []
    try:
        for i in range(3):
            clients.append(await start_client(server.url, f"u{i}", config=cfg))
        await wait_converged(clients)
        epoch = clients[0].epoch
        gen = clients[0].key_generation()
        await clients[0].wait_until(lambda: (clients[0].epoch or 0) >= epoch + 2, 10)
        await wait_converged(clients)
        assert clients[0].key_generation() > gen
        assert_all_decrypt(clients)
    finally:
        await close_all(clients)
        await server.stop()


async def test_server_restart_clients_resume_and_keep_the_group(tmp_path: Path) -> None:
    from session_client_support import SQLiteStorage

    from orange_fast.delivery import DeliveryServer

    server = await start_server(tmp_path / "log.db", eviction_timeout=5.0)
    port = server.port
    clients = []
    try:
        for i in range(3):
            clients.append(await start_client(server.url, f"s{i}"))
        await wait_converged(clients)
        auth = clients[0].epoch_authenticator
        await server.stop()
        await asyncio.sleep(0.3)  # every client notices and keeps retrying
        server = DeliveryServer("127.0.0.1", port, SQLiteStorage(tmp_path / "log.db", synchronous="NORMAL"),
                                heartbeat_interval=0.2, eviction_timeout=5.0)
        await server.start()
        for c in clients:
            await c.wait_until(lambda c=c: c.delivery.connected and c.committer.caught_up, 10)
        assert clients[0].epoch_authenticator == auth  # nothing was lost or redone
        clients.append(await start_client(server.url, "s3"))
        await wait_converged(clients)
        assert all(c.stats.group_losses == 0 for c in clients)
        assert_all_decrypt(clients)
    finally:
        await close_all(clients)
        await server.stop()


async def test_member_with_a_forked_mls_state_resyncs_by_rejoining(tmp_path: Path) -> None:
    from orange_fast.mls import Group

    server = await start_server(tmp_path / "log.db")
    clients = []
    try:
        for i in range(3):
            clients.append(await start_client(server.url, f"f{i}"))
        await wait_converged(clients)
        victim = clients[2]
        stale_state = victim.ops.group.to_bytes()
        clients.append(await start_client(server.url, "f3"))
        await wait_converged(clients)
        victim.ops.group = Group.from_bytes(stale_state)  # as if it had missed the last commit
        clients.append(await start_client(server.url, "f4"))
        await wait_converged(clients)
        assert victim.stats.group_losses >= 1
        assert any(r in ("missed-epoch", "fork", "epoch-mismatch") for r in victim.stats.lost_reasons)
        assert_all_decrypt(clients)
    finally:
        await close_all(clients)
        await server.stop()
