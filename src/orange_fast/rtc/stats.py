"""Thread-safe per-track E2EE statistics (encoder and decoder threads update them)."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DropReason", "TrackStats", "percentile"]


class DropReason:
    """Why a frame was dropped (the keys of :attr:`TrackStats.dropped`)."""

    NO_SEND_KEY = "no_send_key"  #: sender: no send KID yet
    UNKNOWN_KEY = "unknown_key"  #: receiver: KID not (or no longer) held
    AUTH = "auth"  #: receiver: tag did not verify (wrong key, tampering, wrong codec rules)
    REPLAY = "replay"  #: receiver: counter seen before or below the window
    MALFORMED = "malformed"  #: SFrame header or codec framing unparsable
    FRAMING = "framing"  #: sender: bitstream does not fit the codec framing
    COUNTER_EXHAUSTED = "counter_exhausted"  #: sender: KID's counter space used up
    UNSUPPORTED_CODEC = "unsupported_codec"  #: receiver: codec without E2EE rules
    HOLD_TIMEOUT = "hold_timeout"  #: receiver: held for a key that did not arrive in time
    HOLD_OVERFLOW = "hold_overflow"  #: receiver: too many bytes queued behind a held frame
    WRONG_SENDER = "wrong_sender"  #: receiver: authenticated frame of another sender than the bound one


_MAX_HOLD_SAMPLES = 4096


def percentile(values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) of ``values`` by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return ordered[rank]


@dataclass
class TrackStats:
    """Counters of one protected sender or receiver.

    ``encrypted_by_kid``/``decrypted_by_kid`` count frames per KID, i.e. per sender
    and epoch (the KID encodes both).  ``held`` counts frames that waited for their
    epoch's keys and then decrypted; ``hold_ms`` keeps how long (the first 4096);
    ``bound_sender`` is the sender a receiver is bound to (``None``: any).
    """

    kind: str
    direction: str  # "send" or "recv"
    codec: str | None = None
    encrypted: int = 0
    decrypted: int = 0
    dropped: Counter = field(default_factory=Counter)
    encrypted_by_kid: Counter = field(default_factory=Counter)
    decrypted_by_kid: Counter = field(default_factory=Counter)
    keyframes_forced_by_key_change: int = 0
    keyframe_requests_received: int = 0
    keyframe_requests_honoured: int = 0
    keyframe_requests_sent: int = 0
    keyframe_requests_suppressed: int = 0
    held: int = 0
    hold_ms: list = field(default_factory=list)
    bound_sender: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the integer counter ``name``."""
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def count_encrypted(self, kid: int) -> None:
        with self._lock:
            self.encrypted += 1
            self.encrypted_by_kid[kid] += 1

    def count_decrypted(self, kid: int) -> None:
        with self._lock:
            self.decrypted += 1
            self.decrypted_by_kid[kid] += 1

    def count_held(self, seconds: float) -> None:
        with self._lock:
            self.held += 1
            if len(self.hold_ms) < _MAX_HOLD_SAMPLES:
                self.hold_ms.append(seconds * 1000.0)

    def count_dropped(self, reason: str) -> None:
        with self._lock:
            self.dropped[reason] += 1

    def snapshot(self) -> dict[str, Any]:
        """A consistent plain-dict copy (JSON-friendly)."""
        with self._lock:
            return {
                "kind": self.kind,
                "direction": self.direction,
                "codec": self.codec,
                "encrypted": self.encrypted,
                "decrypted": self.decrypted,
                "dropped": dict(self.dropped),
                "encrypted_by_kid": {str(k): v for k, v in self.encrypted_by_kid.items()},
                "decrypted_by_kid": {str(k): v for k, v in self.decrypted_by_kid.items()},
                "keyframes_forced_by_key_change": self.keyframes_forced_by_key_change,
                "keyframe_requests_received": self.keyframe_requests_received,
                "keyframe_requests_honoured": self.keyframe_requests_honoured,
                "keyframe_requests_sent": self.keyframe_requests_sent,
                "keyframe_requests_suppressed": self.keyframe_requests_suppressed,
                "held": self.held,
                "bound_sender": self.bound_sender,
                "hold_ms": [round(v, 3) for v in self.hold_ms],
                "hold_ms_p50": round(percentile(self.hold_ms, 0.5), 3),
                "hold_ms_p99": round(percentile(self.hold_ms, 0.99), 3),
            }
