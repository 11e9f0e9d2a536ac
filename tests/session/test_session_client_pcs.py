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
    converged,
    start_client,
    start_server,
    wait_converged,
)

from orange_fast.session.client import SessionConfig

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
        await wait_converged(clients)
        before = _leaf_keys(clients[0])
        epoch0 = clients[0].epoch

        async def every_leaf_changed() -> None:
            while True:
                if converged(clients) and clients[0].epoch > epoch0:
                    now = _leaf_keys(clients[0])
                    if all(now[leaf] != key for leaf, key in before.items()):
                        return
                await asyncio.sleep(0.05)

        await asyncio.wait_for(every_leaf_changed(), 60)
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
