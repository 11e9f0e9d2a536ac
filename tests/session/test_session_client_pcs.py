"""Post-compromise security in the session client: every member refreshes its own leaf.

A member that is not the designated committer appends an MLS Update proposal every
``update_interval`` ticks; the committer commits every proposal of the epoch by reference.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from session_client_support import (
    assert_all_decrypt,
    close_all,
    start_client,
    start_server,
    wait_converged,
)

from orange_fast.session.client import SessionConfig
from orange_fast.session.committer import CommitterConfig

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]

UPDATING = SessionConfig(tick_interval=0.1, grace_period=0.5, append_timeout=5.0, update_interval=3)


def _leaf_keys(client) -> dict[int, bytes]:
    """Encryption key of every member's leaf, as this client's MLS tree has it."""
    keys = {m.leaf_index: m.encryption_key for m in client.ops.group.members}
    return {r.leaf_index: keys[r.leaf_index] for r in client.roster}


async def test_every_member_refreshes_its_leaf(tmp_path: Path) -> None:
    server = await start_server(tmp_path / "log.db")
    clients = []
    try:
        for i in range(3):
            clients.append(await start_client(server.url, f"member{i}", config=UPDATING))

        # members refresh every 0.3 s, so the view is rarely idle: wait for one epoch that
        # everybody shares with the full roster instead of an idle room
        def same_epoch() -> bool:
            return (
                all(c.in_group and len(c.roster) == 3 for c in clients)
                and len({(c.epoch, c.epoch_authenticator) for c in clients}) == 1
            )

        await clients[0].wait_until(same_epoch, 60)
        before = _leaf_keys(clients[0])
        epoch0 = clients[0].epoch

        async def every_leaf_changed() -> None:
            while True:
                if same_epoch() and clients[0].epoch > epoch0:
                    now = _leaf_keys(clients[0])
                    if all(now.get(leaf) not in (None, key) for leaf, key in before.items()):
                        return
                await asyncio.sleep(0.02)

        await asyncio.wait_for(every_leaf_changed(), 60)
        for c in clients:  # stop refreshing, so the room can settle and be checked
            c.committer.config = CommitterConfig(update_interval=0)
        await wait_converged(clients)
        # the non-committers' refreshes arrived as proposals, committed by the committer
        assert clients[0].committer.view.committer() == "member0"
        assert len({c.safety for c in clients}) == 1
        assert_all_decrypt(clients)
        for c in clients:
            assert c.stats.internal_errors == 0
    finally:
        await close_all(clients)
        await server.stop()


@pytest.mark.asyncio(loop_scope="function")
async def test_update_proposal_wire_round_trip_and_truncation() -> None:
    from orange_fast.session.committer import UpdateProposalMsg
    from orange_fast.session.wire import (
        KIND_UPDATE,
        WireError,
        encode_body,
        parse_payload,
    )

    body = UpdateProposalMsg(gen=3, epoch=2**40 + 5, proposal=b"\x00\x01mls-proposal")
    kind, payload = encode_body(body)
    assert kind == KIND_UPDATE
    assert parse_payload(kind, payload) == body
    for cut in range(len(payload)):
        with pytest.raises(WireError):
            parse_payload(kind, payload[:cut])
    with pytest.raises(WireError):
        parse_payload(kind, payload + b"\x00")
    with pytest.raises(WireError):  # an empty proposal is refused
        parse_payload(kind, encode_body(UpdateProposalMsg(1, 1, b""))[1])
