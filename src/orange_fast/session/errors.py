"""The session layer's errors: one base, :class:`SessionError`.

Every error the session layer raises derives from :class:`SessionError`; the concrete
classes keep a standard base too where it describes the mistake (a malformed event is a
``TypeError``, a malformed payload a ``ValueError``).
"""

from __future__ import annotations

__all__ = ["SessionError", "CommitterError", "GroupOpsError", "WireError"]


class SessionError(Exception):
    """Base of every error of :mod:`orange_fast.session`."""


class CommitterError(SessionError, TypeError):
    """An event of the wrong type or shape was given to ``Committer.handle``."""


class GroupOpsError(SessionError):
    """An MLS operation failed (bad commit or Welcome, fork, wrong epoch, hostile member...).

    ``GroupOps`` implementations raise it (or a subclass) for every failure caused by
    received data; the committer answers by resynchronising, never by crashing.
    """


class WireError(SessionError, ValueError):
    """A handshake payload is malformed or not acceptable (the message is ignored)."""
