"""JSON forms of the committer's bodies, events, actions and views.

As web/test/tools/oracle.ts reads and writes them.
"""

from __future__ import annotations

from typing import Any

from orange_fast.session import committer as _committer
from orange_fast.session.committer import (
    AppendResult,
    CaughtUp,
    CommitMsg,
    CreateMsg,
    Delivered,
    Disconnected,
    Evicted,
    Joined,
    KeyPackageMsg,
    Leave,
    Left,
    MemberRef,
    Rejected,
    RequestResync,
    Tick,
    UpdateProposalMsg,
    View,
)

LogEntry = _committer.DecodedEntry
Append = _committer.RequestAppend


def decoded_json(decoded: Any) -> dict[str, Any]:
    """A WireDecoder result as JSON: ``Decoded(entry, rejected)`` or a ``DecodedEntry`` with a Rejected body."""
    body = getattr(decoded, "entry", decoded).body
    if getattr(decoded, "rejected", None) is not None or isinstance(body, Rejected):
        return {"type": "rejected"}
    return body_json(body)


def ref_json(r: MemberRef) -> list[str]:
    return [r.client, r.kp_id.hex()]


def body_json(b: Any) -> dict[str, Any]:
    if isinstance(b, (Joined, Left, Evicted)):
        return {"type": type(b).__name__.lower(), "client": b.client}
    if isinstance(b, Rejected):
        return {"type": "rejected", "client": b.client, "reason": b.reason}
    if isinstance(b, KeyPackageMsg):
        return {"type": "kp", "kpId": b.kp_id.hex(), "keyPackage": b.key_package.hex()}
    if isinstance(b, CreateMsg):
        return {"type": "create", "kpId": b.kp_id.hex()}
    if isinstance(b, UpdateProposalMsg):
        return {"type": "update", "gen": b.gen, "epoch": b.epoch, "proposal": b.proposal.hex()}
    assert isinstance(b, CommitMsg)
    return {
        "type": "commit", "gen": b.gen, "epoch": b.epoch,
        "adds": [
            {"client": w.ref.client, "kpId": w.ref.kp_id.hex(), "keyPackage": w.key_package.hex()} for w in b.adds
        ],
        "removes": [{"client": r.client, "kpId": r.kp_id.hex()} for r in b.removes],
        "commit": b.commit.hex(), "welcome": None if b.welcome is None else b.welcome.hex(),
    }


def event_json(e: Any) -> dict[str, Any]:
    if isinstance(e, Delivered):
        entry = {"seq": e.entry.seq, "sender": e.entry.sender, "body": body_json(e.entry.body)}
        return {"type": "delivered", "entry": entry}
    if isinstance(e, CaughtUp):
        return {"type": "caught_up", "head": e.head}
    if isinstance(e, AppendResult):
        return {"type": "append_result", "requestId": e.request_id, "accepted": e.accepted, "seq": e.seq}
    return {"type": {Disconnected: "disconnected", Tick: "tick", Leave: "leave"}[type(e)]}


def action_json(a: Any) -> dict[str, Any]:
    if isinstance(a, Append):
        return {"type": "append", "requestId": a.request_id, "expectedSeq": a.expected_seq, "body": body_json(a.body)}
    if isinstance(a, RequestResync):
        return {"type": "resync", "fromSeq": a.from_seq}
    if type(a).__name__ == "EpochChanged":
        return {"type": "epoch_changed", "gen": a.gen, "epoch": a.epoch}
    return {"type": "group_lost", "reason": a.reason}


def view_json(v: View) -> dict[str, Any]:
    return {
        "gen": v.gen, "epoch": v.epoch, "members": [ref_json(m) for m in v.members],
        "stale": sorted(ref_json(m) for m in v.stale), "waiting": [ref_json(w.ref) for w in v.waiting],
        "updates": sorted(ref_json(m) for m in v.updates),
        "committer": v.committer(), "creator": v.creator(), "idle": v.idle(),
    }


def plain(x: Any) -> Any:
    if isinstance(x, bytes):
        return x.hex()
    if isinstance(x, MemberRef):
        return ref_json(x)
    if isinstance(x, (list, tuple)):
        return [plain(y) for y in x]
    return x
