"""A malicious delivery service substitutes KeyPackages: safety numbers expose it."""

from __future__ import annotations

from pathlib import Path

import pytest
from session_client_support import (
    ForgingServer,
    assert_all_decrypt,
    close_all,
    start_client,
    start_forging_server,
    start_server,
    wait_converged,
)

from orange_fast.delivery import protocol as P
from orange_fast.mls import KeyPackage, SignatureKeyPair
from orange_fast.session.wire import KIND_KEY_PACKAGE, WIRE_VERSION

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


async def test_split_view_man_in_the_middle_changes_the_victims_safety_number(tmp_path: Path) -> None:
    """The server forks the room: the victim's KeyPackage never reaches the members.

    The members' log gets the attacker's KeyPackage under the victim's name, and the victim's
    log is a second group whose other members are the attacker under the members' names.
    Every roster shows the same three names, yet the victim's safety number differs.
    """
    honest = await start_server(tmp_path / "members.db")
    fork = await start_server(tmp_path / "victim.db")
    clients = []
    try:
        alice = await start_client(honest.url, "alice")
        bob = await start_client(honest.url, "bob")
        clients += [alice, bob]
        fake_alice = await start_client(fork.url, "alice")
        fake_bob = await start_client(fork.url, "bob")
        clients += [fake_alice, fake_bob]
        await wait_converged([alice, bob])
        await wait_converged([fake_alice, fake_bob])
        fake_victim = await start_client(honest.url, "victim")  # the attacker's KeyPackage, victim's name
        victim = await start_client(fork.url, "victim")
        clients += [fake_victim, victim]
        await wait_converged([alice, bob, fake_victim])
        await wait_converged([victim, fake_alice, fake_bob])
        names = sorted(r.identity for r in alice.roster)
        assert names == sorted(r.identity for r in victim.roster) == ["alice", "bob", "victim"]
        assert alice.safety == bob.safety
        assert victim.safety != alice.safety
        assert not victim.safety.matches(alice.safety)
        # The victim's view of "alice" carries the attacker's key, not alice's.
        key = {r.identity: r.signature_key for r in victim.roster}["alice"]
        assert key != {r.identity: r.signature_key for r in alice.roster}["alice"]
    finally:
        await close_all(clients)
        await honest.stop()
        await fork.stop()


class SubstitutingServer(ForgingServer):
    """Replaces the first KeyPackage ``victim`` publishes by the attacker's (same identity)."""

    victim = "victim"
    replacement: bytes = b""
    substituted = 0

    async def _on_append(self, conn, room, client_id, frame, now):  # type: ignore[override]
        if client_id == self.victim and frame.kind == KIND_KEY_PACKAGE and not self.substituted:
            self.substituted += 1
            frame = P.Append(frame.request_id, frame.kind, self.replacement, frame.expected_seq)
        return await super()._on_append(conn, room, client_id, frame, now)


async def test_substituted_key_package_is_visible_in_the_roster_and_heals(tmp_path: Path) -> None:
    server = await start_forging_server(tmp_path / "log.db")
    server.__class__ = SubstitutingServer
    attacker = SignatureKeyPair.generate(1)
    kp, _private = KeyPackage.generate(1, identity=b"victim", signer=attacker)
    data = kp.to_bytes()
    server.replacement = bytes([WIRE_VERSION]) + len(data).to_bytes(4, "big") + data
    clients = []
    seen_ghost = []
    try:
        for name in ("alice", "bob"):
            clients.append(await start_client(server.url, name))
        await wait_converged(clients)

        def watch(event) -> None:
            keys = {r.identity: r.signature_key for r in clients[0].roster}
            if keys.get("victim") == attacker.public_key:
                seen_ghost.append(clients[0].safety)

        clients[0]._on_event = watch
        victim = await start_client(server.url, "victim")
        clients.append(victim)
        await wait_converged(clients)
        assert server.substituted == 1
        # Either the committer added the ghost first (the members then had the attacker's key
        # under the victim's name, and the victim's Welcome failed), or the victim saw a
        # KeyPackage it did not make under its name and published a new one first.  Either way
        # the substituted KeyPackage does not survive:
        final = {r.identity: r.signature_key for r in clients[0].roster}
        assert final["victim"] != attacker.public_key
        assert len(clients[0].roster) == 3
        assert victim.safety == clients[0].safety
        assert victim.safety not in seen_ghost
        assert_all_decrypt(clients)
    finally:
        await close_all(clients)
        await server.stop()
