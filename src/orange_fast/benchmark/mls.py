"""MLS benchmark: orange_fast's RFC 9420 group layer against AWS mls-rs, side by side in one run.

Operations, for groups of ``n`` members (cipher suite 1):

  commit_add      create a Commit adding one KeyPackage (the Welcome is made too)
  process_add     another member processes that Commit
  join_welcome    the new member joins from the Welcome (ratchet tree carried in the GroupInfo)
  commit_remove   create a Commit removing one member
  process_remove  another member processes it
  commit_update   create an empty Commit with an UpdatePath (fresh keys for the committer's path)
  process_update  another member processes it

The group of ``n`` members is built with one Commit adding ``n - 1`` KeyPackages.  Such a tree has blank
parent nodes everywhere except on the creator's path, so a path operation would encrypt to ``n/2``
leaves; to measure the steady state (one HPKE encryption per copath node, ~log2 n), the members at
leaves 2, 4, 8, ... each commit an update first, which fills the roots of the creator's copath
subtrees.  Both implementations build exactly the same tree shape and perform the same operations on
it: the committer is leaf 0, the member removed is leaf 1 (its sibling), the receiver is leaf n-1.

Every measurement restores the states outside the timed region (orange_fast: ``clear_pending_commit``
for the committer, ``Group.from_bytes`` plus a tree-hash warm-up for the receiver; mls-rs:
``write_to_storage`` once, ``Client.load_group`` per measurement), then times the operation once per
contender, interleaved, so both see the same machine load; the cyclic GC is paused while timing.  The
figure reported is the best round (the least disturbed on a shared machine); the median is kept in the
result.  Each commit operation also records the commit message size of both sides (same work: the
sizes differ only by credential/capability details).  mls-rs is driven through its uniffi bindings,
so its figures include the Python<->Rust marshalling (small next to these operations).

Also reported per size: how many hash computations an update commit costs in orange_fast (counted
by wrapping the suite's hash), which shows that tree hashes are cached (the count grows with log n,
not with the tree size).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, Optional

__all__ = ["run_mls_bench", "format_mls_table", "OursBench", "MlsRsBench", "mls_rs_available", "DEFAULT_SIZES",
           "QUICK_SIZES", "OPS"]

DEFAULT_SIZES = (2, 8, 32, 128, 512, 1024)
QUICK_SIZES = (2, 8)
OPS = ("commit_add", "process_add", "join_welcome", "commit_remove", "process_remove",
       "commit_update", "process_update")
SUITE_ID = 1

Progress = Optional[Callable[[str], None]]


def _filler_leaves(n: int) -> list[int]:
    """Leaves 2, 4, 8, ... < n: their update commits fill the roots of leaf 0's copath subtrees."""
    out = []
    k = 2
    while k < n:
        out.append(k)
        k *= 2
    return out


def _receiver_leaf(n: int) -> int:
    return n - 1


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall time of one call, with the cyclic garbage collector paused (as ``timeit`` does)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        r = fn()
        t = time.perf_counter() - t0
    finally:
        if enabled:
            gc.enable()
    return t, r


def _commit_size(out: Any) -> Optional[int]:
    """Size of the commit message in a contender's commit output (None for other results)."""
    msg = getattr(out, "commit_message", None)
    if msg is not None:
        return len(msg.to_bytes())
    msg = getattr(out, "commit", None)
    return len(msg) if isinstance(msg, (bytes, bytearray)) else None


# --------------------------------------------------------------------------------------------------
# orange_fast
# --------------------------------------------------------------------------------------------------
class OursBench:
    """The orange_fast contender: a committer, a receiver, and the snapshot they are restored from."""

    name = "orange_fast"

    def __init__(self, n: int, private_handshake: bool) -> None:
        from .. import mls

        self.mls = mls
        self.n = n
        self.ph = private_handshake
        suite = mls.CipherSuite(SUITE_ID)
        self.suite = suite
        signer = mls.SignatureKeyPair.generate(suite)
        alice = mls.Group.create(suite, identity=b"member-0", signer=signer, private_handshake=private_handshake)
        kps = []
        for i in range(1, n):
            s = mls.SignatureKeyPair.generate(suite)
            kps.append(mls.KeyPackage.generate(suite, identity=b"member-%d" % i, signer=s))
        held: dict[int, Any] = {0: alice}
        if kps:
            out = alice.add([kp.to_bytes() for kp, _ in kps])
            alice.merge_pending_commit()
            if out.welcome is None:  # pragma: no cover - a commit that adds members always has a Welcome
                raise RuntimeError("the commit adding the members has no Welcome")
            want = set(_filler_leaves(n)) | {_receiver_leaf(n)}
            for leaf in sorted(want):
                held[leaf] = mls.Group.join_from_welcome(out.welcome, kps[leaf - 1][1],
                                                         private_handshake=private_handshake)
            for leaf in _filler_leaves(n):
                o = held[leaf].update()
                held[leaf].merge_pending_commit()
                for other, g in held.items():
                    if other != leaf:
                        g.process(o.commit)
        if len({g.epoch_authenticator for g in held.values()}) != 1:  # pragma: no cover - sanity
            raise RuntimeError("orange_fast members disagree after building the group")
        self.committer = held[0]
        self.receiver_bytes = held[_receiver_leaf(n)].to_bytes() if n > 1 else None
        self.groups = held

    def receiver(self) -> Any:
        """A fresh copy of the receiver's state, with its tree-hash cache warm as in a long-lived member
        (``Group.from_bytes`` checks the tree hash, which fills the cache; mls-rs keeps its tree
        hashes in its stored state)."""
        if self.receiver_bytes is None:
            raise ValueError("a group of one member has no receiver")
        return self.mls.Group.from_bytes(self.receiver_bytes)

    def new_key_package(self) -> tuple[bytes, Any]:
        mls = self.mls
        s = mls.SignatureKeyPair.generate(self.suite)
        kp, kpp = mls.KeyPackage.generate(self.suite, identity=b"newcomer", signer=s)
        return kp.to_bytes(), kpp

    def epoch_key(self) -> bytes:
        return self.committer.export_secret(b"SFrame 1.0 Base Key", b"", 16)

    def ops(self) -> list[str]:
        """The operations that make sense for this group size (a 1-member group has nobody to remove)."""
        return [op for op in OPS if self.n > 1 or op in ("commit_add", "join_welcome", "commit_update")]

    def prepare(self, op: str) -> Callable[[], Any]:
        """Untimed setup for ``op``; returns the zero-argument call to time."""
        mls = self.mls
        a = self.committer
        if a.has_pending_commit:
            a.clear_pending_commit()
        if op in ("commit_add", "process_add", "join_welcome"):
            kp, kpp = self.new_key_package()
            if op == "commit_add":
                return lambda: a.add([kp])
            out = a.add([kp])
            a.clear_pending_commit()
            if op == "process_add":
                r = self.receiver()
                return lambda: r.process(out.commit)
            return lambda: mls.Group.join_from_welcome(out.welcome, kpp, private_handshake=self.ph)
        if op in ("commit_remove", "process_remove"):
            if op == "commit_remove":
                return lambda: a.remove([1])
            out = a.remove([1])
            a.clear_pending_commit()
            r = self.receiver()
            return lambda: r.process(out.commit)
        if op == "commit_update":
            return a.update
        if op == "process_update":
            out = a.update()
            a.clear_pending_commit()
            r = self.receiver()
            return lambda: r.process(out.commit)
        raise ValueError(f"unknown operation {op!r}")


# --------------------------------------------------------------------------------------------------
# mls-rs (agentvault-mls-rs-uniffi wheel)
# --------------------------------------------------------------------------------------------------
class MlsRsBench:
    """The mls-rs contender, driven through its uniffi Python bindings."""

    name = "mls-rs"

    def __init__(self, n: int) -> None:
        import mls_rs_uniffi as R

        self.R = R
        self.n = n
        self.cs = R.CipherSuite.CURVE25519_AES128
        self.gid = b"orange-fast-bench-%d" % n
        a = self._client(b"member-0")
        alice = a.create_group(self.gid)
        clients = [a] + [self._client(b"member-%d" % i) for i in range(1, n)]
        held: dict[int, Any] = {0: alice}
        if n > 1:
            out = alice.add_members([c.generate_key_package_message() for c in clients[1:]])
            alice.process_incoming_message(out.commit_message)
            want = set(_filler_leaves(n)) | {_receiver_leaf(n)}
            for leaf in sorted(want):
                held[leaf] = clients[leaf].join_group(out.ratchet_tree, out.welcome_message).group
            for leaf in _filler_leaves(n):
                o = held[leaf].commit()
                held[leaf].process_incoming_message(o.commit_message)
                for other, g in held.items():
                    if other != leaf:
                        g.process_incoming_message(o.commit_message)
        if len({g.export_secret(b"orange-fast bench", b"", 16) for g in held.values()}) != 1:  # pragma: no cover
            raise RuntimeError("mls-rs members disagree after building the group")
        for g in held.values():
            g.write_to_storage()
        self.clients = clients
        self.groups = held
        self.removed_identity = clients[1].signing_identity() if n > 1 else None

    def _client(self, name: bytes) -> Any:
        R = self.R
        return R.Client(name, R.generate_signature_keypair(self.cs), R.client_config_default())

    def epoch_key(self) -> bytes:
        return self.groups[0].export_secret(b"SFrame 1.0 Base Key", b"", 16)

    def ops(self) -> list[str]:
        """The operations that make sense for this group size."""
        return [op for op in OPS if self.n > 1 or op in ("commit_add", "join_welcome", "commit_update")]

    def prepare(self, op: str) -> Callable[[], Any]:
        """Untimed setup for ``op`` (fresh states loaded from storage); returns the call to time."""
        gid = self.gid
        ca = self.clients[0]
        cr = self.clients[_receiver_leaf(self.n)]
        a = ca.load_group(gid)
        if op in ("commit_add", "process_add", "join_welcome"):
            newcomer = self._client(b"newcomer")
            kp = newcomer.generate_key_package_message()
            if op == "commit_add":
                return lambda: a.add_members([kp])
            out = a.add_members([kp])
            if op == "process_add":
                r = cr.load_group(gid)
                return lambda: r.process_incoming_message(out.commit_message)
            return lambda: newcomer.join_group(out.ratchet_tree, out.welcome_message)
        if op in ("commit_remove", "process_remove"):
            if op == "commit_remove":
                return lambda: a.remove_members([self.removed_identity])
            out = a.remove_members([self.removed_identity])
            r = cr.load_group(gid)
            return lambda: r.process_incoming_message(out.commit_message)
        if op == "commit_update":
            return a.commit
        if op == "process_update":
            out = a.commit()
            r = cr.load_group(gid)
            return lambda: r.process_incoming_message(out.commit_message)
        raise ValueError(f"unknown operation {op!r}")


def mls_rs_available() -> bool:
    try:
        import mls_rs_uniffi  # noqa: F401
    except Exception:  # pragma: no cover - depends on the environment
        return False
    return True


def _wire_format_of(msg: bytes) -> int:
    return int.from_bytes(msg[2:4], "big")


# --------------------------------------------------------------------------------------------------
# hash-count profile (tree-hash caching evidence)
# --------------------------------------------------------------------------------------------------
def _count_hashes(ours: OursBench) -> dict[str, int]:
    """Hash computations (suite ``hash`` calls, tree hashes included) of one update commit and of
    processing it, in orange_fast."""
    from ..mls import suite as suite_mod

    suite = suite_mod.get_suite(SUITE_ID)
    cls = type(suite)
    counter = [0]
    original = cls.hash

    def counting(self: Any, data: bytes) -> bytes:
        counter[0] += 1
        return original(self, data)

    out: dict[str, int] = {}
    cls.hash = counting  # type: ignore[method-assign]
    if ours.committer.has_pending_commit:
        ours.committer.clear_pending_commit()
    try:
        o = ours.committer.update()
        out["commit_update"] = counter[0]
        ours.committer.clear_pending_commit()
        if ours.receiver_bytes is not None:
            r = ours.receiver()
            counter[0] = 0
            r.process(o.commit)
            out["process_update"] = counter[0]
    finally:
        cls.hash = original  # type: ignore[method-assign]
    return out


# --------------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------------
def run_mls_bench(sizes: Sequence[int] = DEFAULT_SIZES, quick: bool = False,
                  progress: Progress = None, rounds: Optional[int] = None,
                  private_handshake: Optional[bool] = None) -> dict:
    """Measure both contenders on every operation for each group size.

    ``rounds`` defaults to 2 (quick) or 7.  ``private_handshake`` defaults to the wire format mls-rs
    uses for its own commits (so both do the same framing work); orange_fast's default is private.
    Returns ``{"sizes": [...], "ops": [...], "rounds": r, "cases": [{"size", "op", "ours_s",
    "ours_median_s", "mls_rs_s", "mls_rs_median_s", "ratio", "ours_commit_bytes", "mls_rs_commit_bytes"
    (commit operations: the size of the commit message, showing both did the same work)}],
    "hash_calls": {size: {...}},
    "build_s": {...}, "mls_rs": bool, "handshake": "private"|"public"}``.
    """
    if rounds is None:
        rounds = 2 if quick else 7
    if rounds < 1:
        raise ValueError("rounds must be >= 1")
    sizes = [int(s) for s in sizes]
    if not sizes or any(s < 1 for s in sizes):
        raise ValueError("group sizes must be >= 1")
    say = progress or (lambda _text: None)
    have_rs = mls_rs_available()
    result: dict[str, Any] = {"sizes": sizes, "ops": list(OPS), "rounds": rounds, "cases": [],
                              "hash_calls": {}, "build_s": {}, "mls_rs": have_rs}
    if private_handshake is None:
        private_handshake = False
        if have_rs:
            rs_probe = MlsRsBench(2)
            rs_out = rs_probe.groups[0].commit()
            private_handshake = _wire_format_of(rs_out.commit_message.to_bytes()) == 2
    result["handshake"] = "private" if private_handshake else "public"

    for n in sizes:
        say(f"MLS bench: building groups of {n} members")
        t, ours = _timed(lambda: OursBench(n, private_handshake))
        build = {"ours": t}
        rs = None
        if have_rs:
            t, rs = _timed(lambda: MlsRsBench(n))
            build["mls_rs"] = t
        result["build_s"][n] = build
        if rs is not None and ours.epoch_key() is None:  # pragma: no cover - sanity
            raise RuntimeError("exporter failed")
        t_ours: dict[str, list[float]] = {op: [] for op in OPS}
        t_rs: dict[str, list[float]] = {op: [] for op in OPS}
        sizes_seen: dict[tuple[str, str], Optional[int]] = {}
        for i in range(rounds):
            say(f"MLS bench: {n} members, round {i + 1}/{rounds}")
            for op in ours.ops():
                # interleaved: both contenders run the operation back to back
                t, out = _timed(ours.prepare(op))
                t_ours[op].append(t)
                sizes_seen[(op, "ours")] = _commit_size(out)
                if rs is not None:
                    t, out = _timed(rs.prepare(op))
                    t_rs[op].append(t)
                    sizes_seen[(op, "mls_rs")] = _commit_size(out)
        result["hash_calls"][n] = _count_hashes(ours)
        for op in OPS:
            if not t_ours[op]:
                continue
            case: dict[str, Any] = {"size": n, "op": op, "ours_s": min(t_ours[op]),
                                    "ours_median_s": statistics.median(t_ours[op])}
            if sizes_seen.get((op, "ours")) is not None:
                case["ours_commit_bytes"] = sizes_seen[(op, "ours")]
            if sizes_seen.get((op, "mls_rs")) is not None:
                case["mls_rs_commit_bytes"] = sizes_seen[(op, "mls_rs")]
            if t_rs[op]:
                case["mls_rs_s"] = min(t_rs[op])
                case["mls_rs_median_s"] = statistics.median(t_rs[op])
                case["ratio"] = case["ours_s"] / case["mls_rs_s"] if case["mls_rs_s"] > 0 else float("inf")
            result["cases"].append(case)
    return result


def _ms(x: Optional[float]) -> str:
    if x is None:
        return "–"
    ms = x * 1e3
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    return f"{ms:.2f}"


def format_mls_table(result: dict) -> str:
    """The result of :func:`run_mls_bench` as Markdown: one table (ours | mls-rs | ratio, in ms, best
    round) per operation, rows by group size, then the hash-count profile."""
    lines = [f"MLS, cipher suite 1, handshake as {result.get('handshake', '?')} messages; best of "
             f"{result['rounds']} rounds, milliseconds; ratio = orange_fast / mls-rs.", ""]
    sizes = result["sizes"]
    by = {(c["size"], c["op"]): c for c in result["cases"]}
    header = "| operation | " + " | ".join(f"n={n}" for n in sizes) + " |"
    lines.append(header)
    lines.append("|---|" + "---:|" * len(sizes))
    for op in result["ops"]:
        ours_cells, rs_cells, ratio_cells = [], [], []
        for n in sizes:
            c = by.get((n, op))
            ours_cells.append(_ms(c["ours_s"]) if c else "–")
            rs_cells.append(_ms(c.get("mls_rs_s")) if c else "–")
            ratio_cells.append(f"{c['ratio']:.2f}×" if c and "ratio" in c else "–")
        lines.append(f"| {op} orange_fast | " + " | ".join(ours_cells) + " |")
        if result.get("mls_rs"):
            lines.append(f"| {op} mls-rs | " + " | ".join(rs_cells) + " |")
            lines.append(f"| {op} **ratio** | " + " | ".join(ratio_cells) + " |")
    size_rows = []
    for op in result["ops"]:
        cells = []
        for n in sizes:
            c = by.get((n, op)) or {}
            if "ours_commit_bytes" in c:
                cells.append(f"{c['ours_commit_bytes']} / {c.get('mls_rs_commit_bytes', '–')}")
            else:
                cells.append("")
        if any(cells):
            size_rows.append(f"| {op} | " + " | ".join(c or "–" for c in cells) + " |")
    if size_rows:
        lines.append("")
        lines.append("Commit message size in bytes, orange_fast / mls-rs (same work on both sides):")
        lines.append("")
        lines.append("| | " + " | ".join(f"n={n}" for n in sizes) + " |")
        lines.append("|---|" + "---:|" * len(sizes))
        lines.extend(size_rows)
    hc = result.get("hash_calls") or {}
    if hc:
        lines.append("")
        lines.append("Hash computations in orange_fast per update commit (tree hashes cached: grows with "
                     "log n, not n):")
        lines.append("")
        lines.append("| | " + " | ".join(f"n={n}" for n in sizes) + " |")
        lines.append("|---|" + "---:|" * len(sizes))
        for key in ("commit_update", "process_update"):
            cells = [str((hc.get(n) or hc.get(str(n)) or {}).get(key, "–")) for n in sizes]
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
