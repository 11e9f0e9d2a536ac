"""Session layer: MLS epochs feed SFrame keys; designated committer; safety number.

* :mod:`.committer` -- the designated-committer protocol as a pure state machine.
* :mod:`.keys` -- SFrame base keys and KIDs per MLS epoch (RFC 9605 §5.2), grace period.
* :mod:`.safety` -- the safety number users compare out of band.
* :mod:`.client` -- a room client gluing the committer, the MLS group, the delivery
  service and the SFrame keys (with :mod:`.wire`, :mod:`.mlsops`, :mod:`.framekeys`).
  A client as a process (for the end-to-end tests) is :mod:`orange_fast.harness.session_runner`.

Submodules are imported on demand (``from orange_fast.session import keys``); this
package imports nothing heavy at import time.  The protocol is specified in
``formal/committer.tla`` and explored exhaustively by ``formal/explore.py``.
"""

from __future__ import annotations

__all__ = ["committer", "keys", "safety", "client", "wire", "mlsops", "framekeys"]
