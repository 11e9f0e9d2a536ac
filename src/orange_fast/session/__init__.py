"""Session layer: MLS epochs feed SFrame keys; designated committer; safety number.

The public API, importable from here::

    from orange_fast.session import SessionClient, SessionConfig

* :class:`SessionClient`, :class:`SessionConfig`, :class:`SessionEvent`,
  :class:`RosterEntry` -- a room client (:mod:`.client`);
* :class:`SafetyNumber` -- what participants compare out of band (:mod:`.safety`);
* :class:`SessionError` -- the base of every error of this layer (:mod:`.errors`).

The modules behind it: :mod:`.committer` (the designated-committer protocol as a pure
state machine; specified in ``formal/committer.tla``, explored by ``formal/explore.py``),
:mod:`.wire` (its messages as log entries), :mod:`.mlsops` (its MLS work on
``orange_fast.mls``), :mod:`.keys` and :mod:`.framekeys` (SFrame keys per epoch),
:mod:`orange_fast.harness.session_runner` (a client as a process, for end-to-end tests) and :mod:`.testing` (hooks
for tests).  The names above are imported on first use, so importing this package loads
nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import SessionError

if TYPE_CHECKING:  # pragma: no cover
    from .client import RosterEntry, SessionClient, SessionConfig, SessionEvent
    from .safety import SafetyNumber

__all__ = ["SessionClient", "SessionConfig", "SessionEvent", "RosterEntry", "SafetyNumber", "SessionError"]

_LAZY = {
    "SessionClient": "client",
    "SessionConfig": "client",
    "SessionEvent": "client",
    "RosterEntry": "client",
    "SafetyNumber": "safety",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
