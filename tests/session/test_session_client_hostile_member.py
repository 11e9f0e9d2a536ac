"""A hostile member (issue 9, finding 1): well-signed MLS messages that lie about credentials.

Real ``SessionClient``s over a real delivery server.  Mallory is a genuine member (her own
signing key and epoch secrets, so every message she sends is properly framed and
authenticated) who tries to rename herself, swap her signature key, pass as another member,
and commit without being the designated committer.  Every honest member refuses the same
messages, the group converges with its roster unchanged, media keys stay current, and when
mallory disconnects the honest members remove her and converge (no committer drops the
group: on the code before this fix her rename was committed, the roster became
``[alice, bob, alice]`` and her removal made each committer drop the group in a loop).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from mls.hostile_leaf import hostile_update, key_package_reusing
from session_client_support import (
    append_and_wait,
    assert_all_decrypt,
    close_all,
    converged,
    crash,
    join_all,
    start_client,
    start_server,
    wait_converged,
)

from orange_fast.session.committer import CommitMsg, UpdateProposalMsg
from orange_fast.session.wire import encode_body

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]


def _roster(client) -> list[tuple[str, bytes, bool]]:
    return sorted((r.identity, r.signature_key, r.duplicate) for r in client.roster)


async def test_hostile_member_cannot_change_credentials_and_her_leave_converges(tmp_path: Path) -> None:
    server = await start_server(tmp_path / "log.db")
    clients = []
    try:
        await join_all(clients, server.url, ("alice", "bob", "mallory"))
        alice, bob, mallory = clients
        assert alice.committer.view.committer() == "alice"
        roster = _roster(alice)
        bob_key = next(r.signature_key for r in bob.roster if r.identity == "bob")
        group = mallory.ops.group
        assert group is not None
        hostile = [
            ("rename", lambda: hostile_update(group, identity=b"alice")),
            ("key swap", lambda: hostile_update(group, new_key=True)),
            ("rename + key swap", lambda: hostile_update(group, identity=b"alice", new_key=True)),
            ("pass as bob", lambda: hostile_update(group, identity=b"bob", claim_key=bob_key)),
        ]
        for what, make in hostile:
            epoch = alice.epoch
            assert epoch is not None
            proposal = UpdateProposalMsg(mallory.gen, mallory.epoch, make())
            await mallory.delivery.append(*encode_body(proposal))
            # The view records mallory's (claimed) update, so the committer commits; the
            # proposal itself is refused by every member and not part of that commit.
            await alice.wait_until(lambda e=epoch: (alice.epoch or 0) > e and converged(clients), 20)
            await wait_converged(clients)
            for c in clients:
                assert _roster(c) == roster, what
            assert_all_decrypt(clients)
        for c in (alice, bob):
            notes = [outcome for _seq, outcome in c.committer.notes]
            assert notes.count("proposal-invalid") == len(hostile), notes

        # A commit from a member that is not the designated committer (a genuine self-update,
        # so MLS alone would accept it): ignored by everybody, mallory included.
        epoch = alice.epoch
        out = group.update()
        group.clear_pending_commit()
        rogue = CommitMsg(mallory.gen, mallory.epoch, (), (), out.commit, None)
        seq = await append_and_wait(mallory.delivery, clients, *encode_body(rogue))
        for c in clients:
            assert c.epoch == epoch and _roster(c) == roster
            assert (seq, "ignored:not-designated-committer") in c.committer.notes
        assert_all_decrypt(clients)

        # Mallory disconnects without a word; the server evicts her, the committer removes her
        # leaf, and the honest members converge without dropping their group.
        await crash(mallory)
        honest = [alice, bob]
        await wait_converged(honest)
        for c in honest:
            assert sorted(r.identity for r in c.roster) == ["alice", "bob"]
            assert c.stats.group_losses == 0 and c.stats.internal_errors == 0
            events = []
            while not c.events.empty():
                events.append(c.events.get_nowait())
            assert not [e for e in events if e.kind in ("duplicate", "lost")]
            assert [e.identity for e in events if e.kind == "left"] == ["mallory"]
        assert_all_decrypt(honest)
    finally:
        await close_all(clients)
        await server.stop()


async def _key_packages_are_refused(tmp_path: Path, key_packages: list[bytes], reason: str) -> None:
    """A room of alice and bob; a connection with client id ``carol`` publishes
    ``key_packages``: every member refuses each for ``reason`` and changes nothing (no add, no
    epoch, no group loss, even after the timers ticked); then the genuine carol joins."""
    from session_client_support import DELIVERY_OPTIONS, ROOM, TOKEN

    from orange_fast.delivery import DeliveryClient
    from orange_fast.session.committer import KeyPackageMsg

    server = await start_server(tmp_path / "log.db")
    clients = []
    visitor = DeliveryClient(server.url, ROOM, TOKEN, "carol", **DELIVERY_OPTIONS)
    try:
        await join_all(clients, server.url, ("alice", "bob"))
        epoch = clients[0].epoch
        await visitor.connect()
        for kp in key_packages:
            await append_and_wait(visitor, clients, *encode_body(KeyPackageMsg(b"", kp)))
        await asyncio.sleep(0.5)  # timers tick: a committer that could act has acted
        for c in clients:
            assert c.committer.view.waiting == () and c.epoch == epoch
            assert sorted(r.identity for r in c.roster) == ["alice", "bob"]
            assert c.stats.group_losses == 0 and c.stats.rejected == len(key_packages)
            events = [c.events.get_nowait() for _ in range(c.events.qsize())]
            assert [e.detail for e in events if e.kind == "rejected"] == [reason] * len(key_packages)
        await visitor.close(leave=True)
        clients.append(await start_client(server.url, "carol"))  # the genuine carol gets in
        await wait_converged(clients)
        assert all(c.stats.group_losses == 0 for c in clients[:2])
    finally:
        await close_all(clients)
        await visitor.close(leave=False)
        await server.stop()


async def test_key_package_must_carry_the_client_id_the_server_authenticated(tmp_path: Path) -> None:
    """End to end: the server stamps each entry with the client id it authenticated; a
    KeyPackage whose MLS identity is another id is refused by every member and never added."""
    from orange_fast.mls import KeyPackage, SignatureKeyPair

    kps = [  # a member's id, and an id nobody authenticated
        KeyPackage.generate(1, identity=identity, signer=SignatureKeyPair.generate(1))[0].to_bytes()
        for identity in (b"alice", b"dave")
    ]
    await _key_packages_are_refused(tmp_path, kps, "KeyPackage identity is not its sender's")


async def test_superseded_client_reports_it(tmp_path: Path) -> None:
    """Another connection with our client id takes over: the SessionClient says so with a
    ``superseded`` event and drops its keys, instead of stopping silently."""
    from session_client_support import DELIVERY_OPTIONS, ROOM, TOKEN

    from orange_fast.delivery import DeliveryClient

    server = await start_server(tmp_path / "log.db")
    clients = []
    usurper = DeliveryClient(server.url, ROOM, TOKEN, "bob", **DELIVERY_OPTIONS)
    try:
        await join_all(clients, server.url, ("alice", "bob"))
        bob = clients[1]
        seen = []
        bob._on_event = seen.append
        await usurper.connect()
        await bob.wait_until(lambda: any(e.kind == "superseded" for e in seen), 10)
        assert not bob.in_group and bob.send_kid() is None
        assert [e.kind for e in seen if e.kind in ("superseded", "failed")] == ["superseded"]
    finally:
        await close_all(clients)
        await usurper.close(leave=False)
        await server.stop()


@pytest.mark.parametrize("window", ["expired", "not-yet-valid", "expires-soon"])
async def test_key_package_outside_its_lifetime_cannot_make_committers_drop_the_group(
    tmp_path: Path, window: str
) -> None:
    """A KeyPackage whose lifetime does not cover its publication (by the server's timestamp,
    the same for every client) with a margin is refused by every member alike.  Before this
    rule, the decoder accepted it, the committer's MLS commit (which checks lifetimes against
    its clock) failed, and each designated committer in turn dropped the group."""
    import time

    from orange_fast.mls import KeyPackage, SignatureKeyPair
    from orange_fast.mls.messages import Lifetime

    now = int(time.time())
    lifetime = {
        "expired": Lifetime(now - 7200, now - 3600),
        "not-yet-valid": Lifetime(now + 3600, now + 7200),
        "expires-soon": Lifetime(now - 3600, now + 5),
    }[window]
    kp, _ = KeyPackage.generate(1, identity=b"carol", signer=SignatureKeyPair.generate(1), lifetime=lifetime)
    await _key_packages_are_refused(tmp_path, [kp.to_bytes()], "KeyPackage lifetime does not cover its publication")


async def test_key_package_mls_refuses_is_passed_over_not_a_reason_to_drop_the_group(tmp_path: Path) -> None:
    """Mallory (a member) publishes a well-signed KeyPackage of her own whose encryption key
    is alice's current leaf key: the decoder cannot know the tree, so every member accepts
    it, but MLS refuses to add it.  The committer passes over it instead of dropping its
    group (before, each committer in turn dropped the group on it): it removes mallory's old
    leaf (her new KeyPackage made it stale) and adds the genuine KeyPackage her client
    publishes when it sees itself stale (it replaces the bad one); everybody converges."""

    from orange_fast.session.committer import KeyPackageMsg

    server = await start_server(tmp_path / "log.db")
    clients = []
    try:
        await join_all(clients, server.url, ("alice", "bob", "dave", "mallory"))
        await clients.pop(2).leave()  # dave leaves: alice's removal commit gives her leaf a new key
        await wait_converged(clients)
        alice, bob, mallory = clients
        old_key = next(r.signature_key for r in alice.roster if r.identity == "mallory")
        alice_key = next(m.encryption_key for m in mallory.ops.group.members if m.identity == b"alice")
        kp = key_package_reusing(b"mallory", alice_key)
        await mallory.delivery.append(*encode_body(KeyPackageMsg(kp.ref(), kp.to_bytes())))
        await alice.wait_until(lambda: any(o.startswith("refused") for _s, o in alice.committer.notes), 10)
        await wait_converged(clients)
        assert [o for _s, o in alice.committer.notes if o.startswith("refused")] == ["refused:keypackage:mallory"]
        new_key = next(r.signature_key for r in alice.roster if r.identity == "mallory")
        assert new_key not in (old_key, bytes(kp.leaf_node.signature_key))
        for c in (alice, bob):
            assert c.stats.group_losses == 0 and c.stats.internal_errors == 0
        clients.append(await start_client(server.url, "carol"))
        await wait_converged(clients)
        assert_all_decrypt(clients)
    finally:
        await close_all(clients)
        await server.stop()
