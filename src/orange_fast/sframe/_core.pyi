"""Type stubs for the compiled SFrame core (``orange_fast.sframe._core``)."""

from collections.abc import Sequence
from typing import Literal

from typing_extensions import Buffer

import numpy as np
import numpy.typing as npt

from .suites import CipherSuite

MAX_HEADER_SIZE: int  # 17

def openssl_version() -> str:
    """Version text of the OpenSSL linked into the core, e.g. ``"OpenSSL 3.5.9 29 Sep 2026"``."""

def openssl_version_number() -> int:
    """``OPENSSL_VERSION_NUMBER`` of the linked OpenSSL (0xMNN00PP0)."""

def openssl_static() -> bool:
    """True when libcrypto is linked statically into the extension (the fast, intended build)."""

def openssl_cpu_info() -> str:
    """The CPU capability string OpenSSL detected (which AES/GCM code paths it can use)."""

def encode_header(kid: int, ctr: int) -> bytes:
    """Encode an SFrame header (RFC 9605 §4.3) with the minimal encoding."""

def decode_header(buf: Buffer) -> tuple[int, int, int]:
    """Decode a header strictly; return ``(kid, ctr, header_len)``.

    Raises :class:`MalformedHeaderError` on empty or truncated input and on
    non-minimal encodings.
    """

class Context:
    """An SFrame context: one cipher suite and a map KID -> key (send or receive).

    Thread-safe: counters are reserved atomically and never reused; each key's
    OpenSSL state and replay window is protected by its own lock.
    """

    suite: CipherSuite
    replay_window: int
    def __init__(self, suite: CipherSuite | int, *, replay_window: int = 128) -> None:
        """Set up is done when the object is created; a second ``__init__`` raises ``TypeError``."""
    def add_send_key(self, kid: int, base_key: Buffer, *, start_counter: int | None = None) -> None:
        """Install the encryption key for ``kid``.

        A KID's send counter continues where it stopped if the KID is removed and
        added again, so no (KID, CTR) is ever used twice within one Context;
        ``start_counter`` resumes a persisted sender (it may not go back).
        Raises ValueError if ``kid`` already has a key.
        """
    def add_receive_key(self, kid: int, base_key: Buffer) -> None:
        """Install (or replace) the decryption key for ``kid``; a replacement resets the replay window."""
    def remove_key(self, kid: int) -> None:
        """Forget ``kid``'s key (either direction); raises UnknownKeyError if absent."""
    def has_key(self, kid: int) -> bool: ...
    def send_kids(self) -> list[int]: ...
    def receive_kids(self) -> list[int]: ...
    def next_counter(self, kid: int) -> int:
        """The counter the next frame encrypted under ``kid`` will use."""
    def encrypt(self, kid: int, frame: Buffer, metadata: Buffer = b"") -> bytes: ...
    def decrypt(self, ciphertext: Buffer, metadata: Buffer = b"") -> bytes: ...
    def decrypt_with_kid(self, ciphertext: Buffer, metadata: Buffer = b"") -> tuple[int, int, bytes]:
        """Like :meth:`decrypt`; returns ``(kid, ctr, plaintext)``."""
    def encrypt_into(self, kid: int, frame: Buffer, out: Buffer, metadata: Buffer = b"") -> int:
        """Encrypt into the writable buffer ``out``; return the number of bytes written."""
    def decrypt_into(self, ciphertext: Buffer, out: Buffer, metadata: Buffer = b"") -> int:
        """Decrypt into ``out``; return the plaintext length.  On failure ``out`` holds no plaintext."""
    def ciphertext_size(self, kid: int, plaintext_len: int) -> int:
        """Exact size of the next ciphertext of ``kid`` for a plaintext of that length."""
    def max_ciphertext_size(self, plaintext_len: int) -> int:
        """Upper bound of any ciphertext size for that plaintext length (17-byte header)."""
    def plaintext_size(self, ciphertext: Buffer) -> int:
        """Exact plaintext size of ``ciphertext`` (parses its header)."""
    def encrypt_batch(
        self, kid: int | Sequence[int], frames: Sequence[Buffer], metadata: Buffer | Sequence[Buffer] = b""
    ) -> list[bytes]:
        """Encrypt many frames in one call, releasing the GIL once.

        ``kid`` is one KID for all frames or one per frame; ``metadata`` likewise.
        All-or-nothing: argument errors, unknown KIDs and exhausted counters are found
        before any counter is used.
        """
    def decrypt_batch(
        self,
        ciphertexts: Sequence[Buffer],
        metadata: Buffer | Sequence[Buffer] = b"",
        *,
        on_error: Literal["raise", "none"] = "raise",
    ) -> list[bytes | None]:
        """Decrypt many frames in one call, releasing the GIL once.

        Every frame is attempted.  With ``on_error="raise"`` a failure raises
        :class:`BatchDecryptError` carrying all results; with ``"none"`` failed frames
        are ``None``.
        """
    def encrypt_packed(
        self,
        kid: int,
        data: npt.NDArray[np.uint8],
        offsets: npt.NDArray[np.int64],
        metadata: Buffer = b"",
        *,
        out: Buffer | npt.NDArray[np.uint8] | None = None,
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
        """Encrypt frames packed in one array: frame i is ``data[offsets[i]:offsets[i+1]]``.

        Returns ``(out, out_offsets)`` in the same packed form.  ``out``, if given,
        is a writable buffer reused for the result (no allocation).
        """
    def decrypt_packed(
        self,
        data: npt.NDArray[np.uint8],
        offsets: npt.NDArray[np.int64],
        metadata: Buffer = b"",
        *,
        out: Buffer | npt.NDArray[np.uint8] | None = None,
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[np.int8]]:
        """Decrypt packed frames; returns ``(out, out_offsets, status)``.

        ``status[i]`` is 0 on success, otherwise one of the ``STATUS_*`` codes;
        the failed frame's slot in ``out`` is empty (``out_offsets[i] == out_offsets[i+1]``).
        """

STATUS_OK: int
STATUS_MALFORMED: int
STATUS_UNKNOWN_KEY: int
STATUS_AUTH: int
STATUS_REPLAY: int
