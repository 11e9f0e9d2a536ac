"""Hostile handshake messages from a member and from the server are rejected without state change."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from session_client_support import (
    ROOM,
    assert_all_decrypt,
    close_all,
    converged,
    snapshot,
    start_client,
    start_forging_server,
    wait_converged,
)

from orange_fast.delivery.errors import ServerError
from orange_fast.mls import KeyPackage, SignatureKeyPair
from orange_fast.session.committer import CommitMsg, KeyPackageMsg
from orange_fast.session.wire import (
    KIND_COMMIT,
    KIND_CREATE,
    KIND_KEY_PACKAGE,
    MAX_PAYLOAD,
    encode_body,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


async def _settle(clients, seq: int) -> None:
    for c in clients:
        await c.wait_until(lambda c=c: c.last_seq >= seq, 5)
    await asyncio.sleep(0.3)  # ticks and timers run: nothing may react to the junk


async def test_hostile_member_messages_change_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="orange_fast.session.client")
    server = await start_forging_server(tmp_path / "log.db", max_message_size=256 * 1024)
    clients = []
    try:
        for name in ("alice", "bob", "mallory"):
            clients.append(await start_client(server.url, name))
        await wait_converged(clients)
        alice, bob, mallory = clients
        before = snapshot(clients)
        old_commit = (await server.payloads(ROOM, KIND_COMMIT))[0][2]
        bob_ref = next(m for m in alice.committer.view.members if m.client == "bob")
        # A commit removing bob, made by mallory (a member, but not the designated committer).
        group = mallory.ops.group
        bob_leaf = next(r.leaf_index for r in mallory.roster if r.identity == "bob")
        out = group.remove([bob_leaf])
        group.clear_pending_commit()
        rogue = CommitMsg(mallory.gen, mallory.epoch, (), (bob_ref,), out.commit, None)
        # A KeyPackage under someone else's identity.
        signer = SignatureKeyPair.generate(1)
        kp, _ = KeyPackage.generate(1, identity=b"alice", signer=signer)
        junk = [
            (KIND_COMMIT, b"\x01garbage"),
            (KIND_COMMIT, b""),
            (KIND_CREATE, b"\x01\x05abc"),
            (KIND_KEY_PACKAGE, b"\x01\x00\x00\x00\x04abcd"),
            ("no.such.kind", b"\x01"),
            (KIND_COMMIT, old_commit),  # replay of an old commit: wrong epoch
            encode_body(rogue),  # right epoch, wrong sender
            encode_body(KeyPackageMsg(kp.ref(), kp.to_bytes())),  # identity is not the sender's
        ]
        last = 0
        for kind, payload in junk:
            last = await mallory.delivery.append(kind, payload)
        with pytest.raises(ServerError):
            await mallory.delivery.append(KIND_COMMIT, b"\x01" + bytes(300 * 1024))  # oversize
        await _settle(clients, last)
        assert snapshot(clients) == before
        assert converged(clients)
        for c in clients:
            assert c.stats.internal_errors == 0 and c.stats.group_losses == 0
            assert c.stats.rejected >= 5 and c.stats.ignored >= 2
        assert "rejected handshake message" in caplog.text
        assert_all_decrypt(clients)
        # The group still works after the junk.
        clients.append(await start_client(server.url, "carol"))
        await wait_converged(clients)
    finally:
        await close_all(clients)
        await server.stop()


async def test_hostile_server_entries_change_nothing(tmp_path: Path) -> None:
    server = await start_forging_server(tmp_path / "log.db")
    clients = []
    try:
        for name in ("a", "b", "c"):
            clients.append(await start_client(server.url, name))
        await wait_converged(clients)
        before = snapshot(clients)
        commits = await server.payloads(ROOM, KIND_COMMIT)
        kps = await server.payloads(ROOM, KIND_KEY_PACKAGE)
        seq, sender, payload = commits[-1]
        forged = [
            (sender, KIND_COMMIT, payload),  # the latest commit again, under its real sender
            (sender, KIND_COMMIT, commits[0][2]),  # an old one
            (sender, KIND_COMMIT, payload[:-1]),  # truncated
            (sender, KIND_COMMIT, payload + b"\x00"),  # trailing byte
            (sender, KIND_COMMIT, b"\x01" + bytes(MAX_PAYLOAD)),  # oversize
            ("b", KIND_COMMIT, payload),  # the right commit under another member's name
            (kps[0][1], KIND_KEY_PACKAGE, kps[0][2]),  # a replayed KeyPackage
            ("c", KIND_KEY_PACKAGE, kps[0][2]),  # someone's KeyPackage under another sender
            ("a", KIND_CREATE, b"\x01\x20" + bytes(32)),  # a Create while the group is alive
        ]
        last = 0
        for who, kind, data in forged:
            last = await server.forge(ROOM, who, kind, data)
        await _settle(clients, last)
        assert snapshot(clients) == before
        for c in clients:
            assert c.stats.internal_errors == 0 and c.stats.group_losses == 0
            assert c.stats.rejected >= 4
        assert_all_decrypt(clients)
    finally:
        await close_all(clients)
        await server.stop()
