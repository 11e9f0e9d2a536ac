"""Type stubs for the benchmarks' C-loop limit (``orange_fast.sframe._limit``)."""

from typing import Any

import numpy.typing as npt
from typing_extensions import Buffer

# any C-contiguous buffer: bytes, bytearray, numpy arrays (uint8 data, int64 offsets)
_Array = Buffer | npt.NDArray[Any]

class LimitKey:
    """A bare keyed SFrame key state (no counters, no window, no lock)."""

    def __init__(self, suite: int, base_key: Buffer, kid: int, encrypt: bool) -> None: ...
    def seal_loop(
        self,
        data: _Array,
        offsets: _Array,
        out: _Array,
        out_offsets: _Array,
        metadata: Buffer = b"",
        first_ctr: int = 0,
        repeat: int = 1,
    ) -> int:
        """Encrypt every packed frame ``repeat`` times; return the elapsed nanoseconds."""
    def open_loop(
        self,
        data: _Array,
        offsets: _Array,
        out: _Array,
        metadata: Buffer = b"",
        repeat: int = 1,
    ) -> int:
        """Decrypt every packed SFrame ciphertext ``repeat`` times; return the elapsed nanoseconds."""
