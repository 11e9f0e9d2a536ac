"""Hypothesis stateful test: members join (Welcome or external commit), leave and update in random order;
after every commit all members agree on epoch, epoch authenticator, exporter and membership."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mls_group_helpers import Room

MAX_MEMBERS = 16


class GroupMachine(RuleBasedStateMachine):
    room: Room
    max_members = MAX_MEMBERS

    @initialize(private=st.booleans())
    def start(self, private: bool) -> None:
        self.room = Room(private_handshake=private)

    def _pick(self, data: st.DataObject) -> bytes:
        return data.draw(st.sampled_from(sorted(self.room.members)))

    @precondition(lambda self: len(self.room.members) < self.max_members)
    @rule(data=st.data(), count=st.integers(min_value=1, max_value=3))
    def add(self, data: st.DataObject, count: int) -> None:
        count = min(count, self.max_members - len(self.room.members))
        self.room.add(self._pick(data), count)

    @precondition(lambda self: len(self.room.members) > 1)
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        committer = self._pick(data)
        others = sorted(n for n in self.room.members if n != committer)
        k = data.draw(st.integers(min_value=1, max_value=min(3, len(others))))
        victims = data.draw(st.lists(st.sampled_from(others), min_size=k, max_size=k, unique=True))
        self.room.remove(committer, victims)

    @rule(data=st.data())
    def update(self, data: st.DataObject) -> None:
        self.room.update(self._pick(data))

    @precondition(lambda self: len(self.room.members) < self.max_members)
    @rule(data=st.data())
    def external_join(self, data: st.DataObject) -> None:
        self.room.external_join(self._pick(data))

    @invariant()
    def agree(self) -> None:
        self.room.assert_agree()


GroupMachine.TestCase.settings = settings(max_examples=6, stateful_step_count=10, deadline=None,
                                          suppress_health_check=[HealthCheck.too_slow])
TestGroupMachine = GroupMachine.TestCase


class BigGroupMachine(GroupMachine):
    """Up to 64 members (``-m slow``)."""

    max_members = 64

    @precondition(lambda self: len(self.room.members) < self.max_members)
    @rule(data=st.data(), count=st.integers(min_value=4, max_value=12))
    def add_many(self, data: st.DataObject, count: int) -> None:
        count = min(count, self.max_members - len(self.room.members))
        self.room.add(self._pick(data), count)


BigGroupMachine.TestCase.settings = settings(max_examples=10, stateful_step_count=30, deadline=None,
                                             suppress_health_check=[HealthCheck.too_slow])
TestBigGroupMachine = pytest.mark.slow(BigGroupMachine.TestCase)
