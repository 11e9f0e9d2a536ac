"""Cross-language sessions: Node (TypeScript, ts-mls) and Python participants in one room over a
real delivery server. After every step all members agree on generation, epoch, epoch
authenticator, MLS exporter output, roster, KIDs and safety number, and frames encrypted on one
side decrypt on the other."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from web_support import NodePeer, require_build, room

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]

LABEL = "orange_fast web test"


@pytest.fixture(autouse=True)
def _needs_node() -> None:
    require_build()


async def node_state(peer: NodePeer) -> dict[str, Any]:
    return await peer.ask("status")  # type: ignore[no-any-return]


def py_state(c: Any) -> dict[str, Any]:
    return c.status()  # type: ignore[no-any-return]


async def wait_agreement(nodes: list[NodePeer], pys: list[Any], timeout: float = 30.0) -> dict[str, Any]:
    """Wait until every member is in one group at one epoch with the same authenticator, safety number
    and full roster, and the committer has nothing left to do; return the common state."""
    ids = sorted([n.client_id for n in nodes] + [p.client_id for p in pys])
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        states = [await node_state(n) for n in nodes] + [py_state(p) for p in pys]
        keys = {(s["gen"], s["epoch"], s["auth"], s["safety"]) for s in states}
        if (
            len(keys) == 1
            and states[0]["epoch"] is not None
            and all(sorted(s["roster"]) == ids for s in states)
            and all(s["idle"] for s in states)
        ):
            return states[0]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no agreement: {states}")
        await asyncio.sleep(0.05)


async def check_everything_agrees(nodes: list[NodePeer], pys: list[Any]) -> None:
    """Exporter output, KIDs and frames in every direction."""
    exports = {(await n.ask("export", label=LABEL, context="0102", length=32))["out"] for n in nodes}
    exports |= {p.ops.group.export_secret(LABEL.encode(), b"\x01\x02", 32).hex() for p in pys}
    assert len(exports) == 1, exports
    # each member's send KID is a receive KID of every other member
    send = {n.client_id: (await n.ask("kids"))["send"] for n in nodes}
    recv = {n.client_id: set((await n.ask("kids"))["recv"]) for n in nodes}
    for p in pys:
        send[p.client_id] = [str(p.send_kid())]
        recv[p.client_id] = {str(k) for k in p.context.receive_kids()}
    current = {cid: max(int(k) for k in ks) if len(ks) > 1 else int(ks[0]) for cid, ks in send.items()}
    for cid, kid in current.items():
        for other in send:
            if other != cid:
                assert str(kid) in recv[other], (cid, kid, other, recv[other])
    # frames: Node -> everyone, Python -> everyone
    for n in nodes:
        payload = f"frame from {n.client_id}".encode()
        sent = await n.ask("encrypt", frame=payload.hex())
        for p in pys:
            assert p.context.decrypt(bytes.fromhex(sent["ct"])) == payload
        for other in nodes:
            if other is not n:
                assert (await other.ask("decrypt", ct=sent["ct"]))["pt"] == payload.hex()
    for p in pys:
        payload = f"frame from {p.client_id}".encode()
        ct = p.context.encrypt(p.send_kid(), payload)
        for n in nodes:
            assert (await n.ask("decrypt", ct=ct.hex())).get("pt") == payload.hex()


async def test_node_creates_python_joins_then_python_committer_adds_node(tmp_path: Path) -> None:
    async with room(tmp_path / "log.db") as r:
        nodes, pys = r.nodes, r.pys
        await r.add_node("node-a")
        await wait_agreement(nodes, pys)  # Node created the group alone
        for name in ("py-b", "py-c"):
            await r.add_python(name)
            state = await wait_agreement(nodes, pys)
            assert state["committer"] == "node-a"
            await check_everything_agrees(nodes, pys)
        events = await nodes[0].ask("events")
        epochs = [(e["kind"], e["epoch"]) for e in events if e["kind"] == "epoch"]
        assert epochs == [("epoch", 0), ("epoch", 1), ("epoch", 2)]
        assert [e["identity"] for e in events if e["kind"] == "joined"] == ["node-a", "py-b", "py-c"]
        assert [e["detail"] for e in events if e["kind"] == "safety"][-1] == pys[0].status()["safety"]
        # the Node committer leaves: Python's py-b becomes the committer and removes it
        await nodes.pop().close()
        state = await wait_agreement(nodes, pys)
        assert state["committer"] == "py-b"
        # a new Node joiner is added by the Python committer
        await r.add_node("node-d")
        state = await wait_agreement(nodes, pys)
        assert state["committer"] == "py-b"
        await check_everything_agrees(nodes, pys)


async def test_node_committer_adds_and_removes_python_members_and_restarts(tmp_path: Path) -> None:
    async with room(tmp_path / "log.db") as r:
        nodes, pys = r.nodes, r.pys
        await r.add_node("node-a")
        await wait_agreement(nodes, pys)
        for name in ("py-b", "py-c"):
            await r.add_python(name)
        await wait_agreement(nodes, pys)
        # the Node committer removes a Python member that left
        gone = pys.pop(0)
        await gone.leave()
        state = await wait_agreement(nodes, pys)
        assert state["committer"] == "node-a" and sorted(state["roster"]) == ["node-a", "py-c"]
        assert ("left", "py-b") in [(e["kind"], e.get("identity")) for e in await nodes[0].ask("events")]
        await check_everything_agrees(nodes, pys)
        # a second Node member, then the first Node client is killed and restarts with its id
        await r.add_node("node-e")
        await wait_agreement(nodes, pys)
        await nodes[0].kill()
        nodes[0] = await NodePeer.start(r.server.url, "node-a")
        state = await wait_agreement(nodes, pys, timeout=40)
        assert sorted(state["roster"]) == ["node-a", "node-e", "py-c"]
        await check_everything_agrees(nodes, pys)


async def test_python_update_proposals_with_a_node_member(tmp_path: Path) -> None:
    """Python members propose self-updates (post-compromise security) every few ticks; the Node
    member caches them and processes the Python committer's commits that include them by reference,
    and as committer commits them itself: the group keeps moving with everybody in it."""
    async with room(tmp_path / "log.db") as r:
        nodes, pys = r.nodes, r.pys
        await r.add_python("py-a", update_interval=3)
        await r.add_node("node-b")
        await wait_agreement(nodes, pys)  # node-b is admitted before py-c: next in seniority
        await r.add_python("py-c", update_interval=3)
        first = await wait_agreement(nodes, pys)
        await asyncio.sleep(1.5)  # several update rounds
        later = await wait_agreement(nodes, pys)
        assert later["epoch"] > first["epoch"] + 1, (first, later)
        stats = await nodes[0].ask("stats")
        assert stats["groupLosses"] == 0 and stats["internalErrors"] == 0, stats
        await check_everything_agrees(nodes, pys)
        # the Python committer leaves: the Node member becomes committer and commits proposals
        await pys.pop(0).leave()
        state = await wait_agreement(nodes, pys)
        assert state["committer"] == "node-b"
        await asyncio.sleep(1.0)
        later = await wait_agreement(nodes, pys)
        assert later["epoch"] > state["epoch"], (state, later)
        assert (await nodes[0].ask("stats"))["groupLosses"] == 0
        await check_everything_agrees(nodes, pys)


async def wait_epoch_beyond(nodes: list[NodePeer], pys: list[Any], epoch: int, timeout: float = 30.0) -> dict[str, Any]:
    """Wait for a common state (see :func:`wait_agreement`) whose epoch is beyond ``epoch``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        state = await wait_agreement(nodes, pys, timeout)
        if state["epoch"] > epoch:
            return state
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"epoch stayed at {state['epoch']} (wanted > {epoch})")
        await asyncio.sleep(0.05)


async def test_node_self_updates_committed_by_a_python_committer(tmp_path: Path) -> None:
    """Only the Node member refreshes (Python members never do and the Python committer makes no
    self-update of its own): every epoch after the adds is a Python commit of a Node Update
    proposal by reference. The Node member processes those commits with its new leaf key, and
    epochs, exporter output, KIDs, frames and safety numbers agree after each."""
    async with room(tmp_path / "log.db") as r:
        nodes, pys = r.nodes, r.pys
        await r.add_python("py-a", update_interval=0)
        await r.add_python("py-b", update_interval=0)
        start = await wait_agreement(nodes, pys)
        node = await NodePeer.start(r.server.url, "node-c", updateInterval=3)
        nodes.append(node)
        joined = await wait_agreement(nodes, pys)
        assert joined["committer"] == "py-a"
        state = await wait_epoch_beyond(nodes, pys, joined["epoch"] + 1)  # two Node refreshes or more
        assert state["epoch"] > start["epoch"] + 2
        for p in pys:
            assert p.stats.group_losses == 0, p.stats
        stats = await node.ask("stats")
        assert stats["groupLosses"] == 0 and stats["internalErrors"] == 0, stats
        py_short = pys[0].safety.short
        assert state["safety_short"] == py_short == " ".join(pys[0].safety.text.split()[:5])
        await check_everything_agrees(nodes, pys)


async def test_python_self_updates_committed_by_a_node_committer_and_node_refreshes_too(tmp_path: Path) -> None:
    """A Node committer (no self-updates of its own) commits a Python member's Update proposals;
    a second Node member's proposals are processed by the Python member; everybody agrees after."""
    async with room(tmp_path / "log.db") as r:
        nodes, pys = r.nodes, r.pys
        nodes.append(await NodePeer.start(r.server.url, "node-a", updateInterval=0))
        await wait_agreement(nodes, pys)
        await r.add_python("py-b", update_interval=3)
        first = await wait_agreement(nodes, pys)
        assert first["committer"] == "node-a"
        later = await wait_epoch_beyond(nodes, pys, first["epoch"] + 1)
        assert later["committer"] == "node-a"
        await check_everything_agrees(nodes, pys)
        nodes.append(await NodePeer.start(r.server.url, "node-c", updateInterval=4))
        joined = await wait_agreement(nodes, pys)
        await wait_epoch_beyond(nodes, pys, joined["epoch"] + 2)
        for n in nodes:
            stats = await n.ask("stats")
            assert stats["groupLosses"] == 0 and stats["internalErrors"] == 0, (n.client_id, stats)
        assert pys[0].stats.group_losses == 0, pys[0].stats
        await check_everything_agrees(nodes, pys)


def py_events(c: Any) -> list[dict[str, Any]]:
    """Drain a Python client's event queue, as the Node peer's JSON events."""
    out = []
    while not c.events.empty():
        e = c.events.get_nowait()
        d = {"kind": e.kind, "gen": e.gen, "epoch": e.epoch}
        if e.identity is not None:
            d["identity"] = e.identity
        if e.detail:
            d["detail"] = e.detail
        if e.leaf is not None:
            d["leaf"] = e.leaf
        out.append(d)
    return out


async def test_roster_joined_left_duplicate_events_alike(tmp_path: Path) -> None:
    """A Node member restarts with its client id (a rejoin: for one epoch its identity holds two
    leaves). A Python and a Node member that watch it emit the same roster, joined, left (with
    leaves), duplicate, epoch and safety events."""
    async with room(tmp_path / "log.db") as r:
        nodes, pys = r.nodes, r.pys
        py = await r.add_python("py-a")
        await r.add_node("node-b")
        await r.add_node("node-c")
        await wait_agreement(nodes, pys)
        py_events(py)
        seen = len(await nodes[0].ask("events"))
        await nodes[1].kill()
        nodes[1] = await NodePeer.start(r.server.url, "node-c")
        await wait_agreement(nodes, pys, timeout=40)
        node_side = (await nodes[0].ask("events"))[seen:]
        py_side = py_events(py)
        assert node_side == py_side
        kinds = [e["kind"] for e in py_side]
        assert {"roster", "joined", "left", "duplicate"} <= set(kinds), kinds
        assert [e.get("identity") for e in py_side if e["kind"] in ("joined", "left", "duplicate")] == ["node-c"] * 3


async def test_superseded_both_ways(tmp_path: Path) -> None:
    """A Node client connecting with a Python client's id supersedes it (the Python session emits
    ``superseded`` and stops), and the other way round; the newcomer is then admitted."""
    async with room(tmp_path / "log.db") as r:
        nodes, pys = r.nodes, r.pys
        await r.add_python("py-a")
        old_py = await r.add_python("x")
        await wait_agreement(nodes, pys)
        pys.remove(old_py)
        await r.add_node("x")
        state = await wait_agreement(nodes, pys, timeout=40)
        assert "x" in state["roster"]
        assert [e["kind"] for e in py_events(old_py)][-1] == "superseded"
        old_node = nodes.pop()
        await r.add_python("x")
        await wait_agreement(nodes, pys, timeout=40)
        events = await old_node.ask("events")
        assert events[-1]["kind"] == "superseded", events[-3:]
        await old_node.close()
        await old_py.leave()


async def test_node_committer_passes_over_a_key_package_its_mls_refuses(tmp_path: Path) -> None:
    """A Python member (mallory) publishes a well-signed KeyPackage whose encryption key is the
    Node committer's current leaf key: both wire decoders accept it (they cannot know the tree),
    ts-mls refuses to add it. The Node committer passes over it instead of dropping its group:
    it removes mallory's old leaf and adds the genuine KeyPackage her client publishes next;
    Python and Node members converge, nobody loses the group."""

    from mls.hostile_leaf import key_package_reusing
    from orange_fast.session.committer import KeyPackageMsg
    from orange_fast.session.wire import encode_body

    async with room(tmp_path / "log.db") as r:
        nodes, pys = r.nodes, r.pys
        node = await r.add_node("node-a")
        await wait_agreement(nodes, pys)
        for name in ("mallory", "py-b", "py-d"):
            await r.add_python(name)
        await wait_agreement(nodes, pys)
        await pys.pop().leave()  # node-a's removal commit gives its leaf a new encryption key
        await wait_agreement(nodes, pys)
        mallory = pys[0]
        node_key = next(m.encryption_key for m in mallory.ops.group.members if m.identity == b"node-a")
        kp = key_package_reusing(b"mallory", node_key)
        await mallory.delivery.append(*encode_body(KeyPackageMsg(kp.ref(), kp.to_bytes())))
        deadline = asyncio.get_running_loop().time() + 20
        while not any(o.startswith("refused") for _s, o in await node.ask("notes")):
            assert asyncio.get_running_loop().time() < deadline, (
                await node.ask("notes"), await node.ask("stats"), await node_state(node), [p.status() for p in pys],
                (await node.ask("events"))[-8:])
            await asyncio.sleep(0.05)
        state = await wait_agreement(nodes, pys, timeout=40)
        assert [o for _s, o in await node.ask("notes") if o.startswith("refused")] == ["refused:keypackage:mallory"]
        assert state["committer"] == "node-a"
        stats = await node.ask("stats")
        assert stats["groupLosses"] == 0 and stats["internalErrors"] == 0, stats
        assert pys[1].stats.group_losses == 0
        members = {m[0]: m[1] for m in await node.ask("members")}
        assert members["mallory"] != bytes(kp.leaf_node.signature_key).hex()
        await check_everything_agrees(nodes, pys)


async def test_node_committer_leaves_out_updates_that_change_credentials(tmp_path: Path) -> None:
    """A Python member (mallory) proposes Updates that rename her, swap her key, both, or pass as
    another member. Python's MLS refuses them (credentials never change); the Node members must
    too, or the Node committer would commit them by reference and fork the Python members. The
    view counts each claim, so the Node committer commits a path; everybody stays in one group
    with the same roster."""
    from mls.hostile_leaf import hostile_update

    from orange_fast.session.committer import UpdateProposalMsg
    from orange_fast.session.wire import encode_body

    async with room(tmp_path / "log.db") as r:
        nodes, pys = r.nodes, r.pys
        node = await r.add_node("node-a")
        await wait_agreement(nodes, pys)
        await r.add_node("node-b")
        await r.add_python("py-c")
        mallory = await r.add_python("mallory")
        start = await wait_agreement(nodes, pys)
        roster = sorted((m[0], m[1]) for m in await node.ask("members"))
        pyc_key = next(r_.signature_key for r_ in pys[0].roster if r_.identity == "py-c")
        group = mallory.ops.group
        hostile = [
            lambda: hostile_update(group, identity=b"node-a"),
            lambda: hostile_update(group, new_key=True),
            lambda: hostile_update(group, identity=b"py-c", new_key=True),
            lambda: hostile_update(group, identity=b"py-c", claim_key=pyc_key),
        ]
        epoch = start["epoch"]
        for make in hostile:
            await mallory.delivery.append(*encode_body(UpdateProposalMsg(mallory.gen, mallory.epoch, make())))
            state = await wait_epoch_beyond(nodes, pys, epoch)
            epoch = state["epoch"]
            for n in nodes:
                assert sorted((m[0], m[1]) for m in await n.ask("members")) == roster
        for n in nodes:
            notes = [o for _s, o in await n.ask("notes")]
            assert notes.count("proposal-invalid") == len(hostile), (n.client_id, notes)
            stats = await n.ask("stats")
            assert stats["groupLosses"] == 0 and stats["internalErrors"] == 0, stats
        assert pys[0].stats.group_losses == 0
        await check_everything_agrees(nodes, pys)
