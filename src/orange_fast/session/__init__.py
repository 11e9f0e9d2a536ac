"""Session layer: MLS epochs feed SFrame keys; designated committer; safety number.

* :mod:`.committer` -- the designated-committer protocol as a pure state machine.
* :mod:`.keys` -- SFrame base keys and KIDs per MLS epoch (RFC 9605 §5.2), grace period.
* :mod:`.safety` -- the safety number users compare out of band.

Submodules are imported on demand (``from orange_fast.session import keys``); this
package imports nothing heavy at import time.
"""

from __future__ import annotations

__all__ = ["committer", "keys", "safety"]
