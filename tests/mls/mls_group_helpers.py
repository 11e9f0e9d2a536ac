"""Shared helpers for the group tests: a tiny in-memory "delivery service" of real Group objects."""

from __future__ import annotations

from typing import Dict, List, Tuple

from orange_fast import mls


def new_key_package(suite: mls.CipherSuite, name: bytes) -> Tuple[bytes, mls.KeyPackagePrivate]:
    signer = mls.SignatureKeyPair.generate(suite)
    kp, kpp = mls.KeyPackage.generate(suite, identity=name, signer=signer)
    return kp.to_bytes(), kpp


class Room:
    """Members of one group; every commit is fanned out to all other members."""

    def __init__(self, suite: int = 1, private_handshake: bool = True) -> None:
        self.suite = mls.CipherSuite(suite)
        self.counter = 0
        signer = mls.SignatureKeyPair.generate(self.suite)
        first = mls.Group.create(self.suite, identity=b"m0", signer=signer, private_handshake=private_handshake)
        self.members: Dict[bytes, mls.Group] = {b"m0": first}
        self.private_handshake = private_handshake

    def _name(self) -> bytes:
        self.counter += 1
        return b"m%d" % self.counter

    def fanout(self, sender: bytes, commit: bytes) -> None:
        for name, g in list(self.members.items()):
            if name == sender:
                continue
            res = g.process(commit)
            if res.removed_self:
                del self.members[name]

    def add(self, committer: bytes, count: int = 1) -> List[bytes]:
        names = [self._name() for _ in range(count)]
        kps = [new_key_package(self.suite, n) for n in names]
        g = self.members[committer]
        out = g.add([kp for kp, _ in kps])
        g.merge_pending_commit()
        self.fanout(committer, out.commit)
        assert out.welcome is not None
        for n, (_, kpp) in zip(names, kps):
            self.members[n] = mls.Group.join_from_welcome(out.welcome, kpp,
                                                          private_handshake=self.private_handshake)
        return names

    def remove(self, committer: bytes, victims: List[bytes]) -> None:
        g = self.members[committer]
        idx = [self.members[v].own_leaf_index for v in victims]
        out = g.remove(idx)
        g.merge_pending_commit()
        assert out.welcome is None
        self.fanout(committer, out.commit)
        for v in victims:
            assert v not in self.members

    def update(self, committer: bytes) -> None:
        g = self.members[committer]
        out = g.update()
        g.merge_pending_commit()
        self.fanout(committer, out.commit)

    def external_join(self, via: bytes) -> bytes:
        name = self._name()
        signer = mls.SignatureKeyPair.generate(self.suite)
        g, commit = mls.Group.join_external(self.members[via].group_info(), identity=name, signer=signer,
                                            private_handshake=self.private_handshake)
        self.fanout(name, commit)
        self.members[name] = g
        return name

    def assert_agree(self) -> None:
        groups = list(self.members.values())
        assert len({g.epoch for g in groups}) == 1
        assert len({g.epoch_authenticator for g in groups}) == 1
        assert len({g.export_secret(b"SFrame 1.0 Base Key", b"", 16) for g in groups}) == 1
        assert len({tuple((m.leaf_index, m.identity) for m in g.members) for g in groups}) == 1
        assert len(groups[0].members) == len(groups)
