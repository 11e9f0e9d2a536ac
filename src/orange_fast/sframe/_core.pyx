# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
# cython: cdivision=True, embedsignature=True
"""The SFrame (RFC 9605) hot path: keyed OpenSSL contexts per KID, header codec,
encrypt/decrypt of single frames and batches, replay windows.

The per-frame crypto lives in ``sframe_c.h``; this module handles arguments, keys,
counters, locks and errors.  Arguments are plain objects read through the buffer
protocol (bytes are read directly), never typed memoryviews: see
``shared/specs/PERFORMANCE.md`` for why.
"""

from libc.stdint cimport uint64_t, uint32_t, int64_t, UINT64_MAX
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memset, memmove
from cpython.bytes cimport (
    PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_CheckExact,
)
from cpython.buffer cimport PyBuffer_Release, PyBUF_SIMPLE, PyBUF_WRITABLE
from cpython.long cimport PyLong_CheckExact, PyLong_FromUnsignedLongLong
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.list cimport PyList_New, PyList_SET_ITEM

from .sframe_c cimport *

import operator as _operator

from .errors import (
    AuthenticationError,
    BatchDecryptError,
    BufferTooSmallError,
    CounterExhaustedError,
    MalformedHeaderError,
    ReplayError,
    SFrameError,
    UnknownKeyError,
)
from .suites import CipherSuite

cdef extern from "Python.h":
    # Declared without Cython's exception check: the caller turns failures into TypeError.
    int _get_buffer "PyObject_GetBuffer"(object obj, Py_buffer *view, int flags)
    void PyErr_Clear()
    PyObject *PyErr_Occurred()
    # Without Cython's exception check: the caller tests PyErr_Occurred itself.
    unsigned long long _as_u64 "PyLong_AsUnsignedLongLong"(object obj)
    PyObject *PyDict_GetItemWithError(object d, object key) except? NULL

MAX_HEADER_SIZE = 17
cdef enum:
    STATUS_OK_C = 0
    STATUS_MALFORMED_C = 1
    STATUS_UNKNOWN_KEY_C = 2
    STATUS_AUTH_C = 3
    STATUS_REPLAY_C = 4

STATUS_OK = STATUS_OK_C
STATUS_MALFORMED = STATUS_MALFORMED_C
STATUS_UNKNOWN_KEY = STATUS_UNKNOWN_KEY_C
STATUS_AUTH = STATUS_AUTH_C
STATUS_REPLAY = STATUS_REPLAY_C

# Single frames at least this large are processed without the GIL (below it the
# 40-50 ns of releasing it cost more than they free).
cdef Py_ssize_t NOGIL_THRESHOLD = 32768
cdef uint32_t MAX_REPLAY_WINDOW = 1 << 20

# ------------------------------------------------------------------ OpenSSL ciphers

cdef const EVP_CIPHER *_AES128_GCM = EVP_CIPHER_fetch(NULL, b"AES-128-GCM", NULL)
cdef const EVP_CIPHER *_AES256_GCM = EVP_CIPHER_fetch(NULL, b"AES-256-GCM", NULL)
cdef const EVP_CIPHER *_AES128_CTR = EVP_CIPHER_fetch(NULL, b"AES-128-CTR", NULL)
cdef const EVP_CIPHER *_AES256_CTR = EVP_CIPHER_fetch(NULL, b"AES-256-CTR", NULL)
if _AES128_GCM == NULL or _AES256_GCM == NULL or _AES128_CTR == NULL or _AES256_CTR == NULL:
    raise ImportError("orange_fast.sframe: the linked OpenSSL lacks AES-GCM or AES-CTR")


def openssl_version() -> str:
    """Version text of the OpenSSL linked into the core, e.g. ``"OpenSSL 3.5.9 29 Sep 2026"``."""
    return OpenSSL_version(OPENSSL_VERSION_CONST).decode("ascii", "replace")


def openssl_version_number() -> int:
    """``OPENSSL_VERSION_NUMBER`` of the linked OpenSSL (``0xMNN00PP0``)."""
    return OpenSSL_version_num()


def openssl_static() -> bool:
    """True when libcrypto is linked statically into the extension (the fast, intended build)."""
    return bool(OF_OPENSSL_STATIC)


def openssl_cpu_info() -> str:
    """The CPU capability string OpenSSL detected (which AES/GCM code paths it can use)."""
    return OpenSSL_version(OPENSSL_CPU_INFO).decode("ascii", "replace")


# ------------------------------------------------------------------ buffers

cdef struct InBuf:
    const unsigned char *ptr
    Py_ssize_t len
    Py_buffer view
    bint has_view


cdef int _buffer_error(object obj, str what, bint writable) except -1:
    PyErr_Clear()
    kind = "a writable" if writable else "a"
    raise TypeError(
        f"{what} must be {kind} C-contiguous bytes-like object, not {type(obj).__name__}"
    )


cdef inline int in_get(object obj, InBuf *b, str what) except -1:
    """Read ``obj`` without copying: bytes directly, anything else through the buffer protocol."""
    if PyBytes_CheckExact(obj):
        b.ptr = <const unsigned char *>PyBytes_AS_STRING(obj)
        b.len = PyBytes_GET_SIZE(obj)
        b.has_view = 0
        return 0
    if _get_buffer(obj, &b.view, PyBUF_SIMPLE) < 0:
        b.has_view = 0
        _buffer_error(obj, what, False)
    b.has_view = 1
    b.ptr = <const unsigned char *>b.view.buf
    b.len = b.view.len
    return 0


cdef inline int out_get(object obj, Py_buffer *view) except -1:
    if _get_buffer(obj, view, PyBUF_SIMPLE | PyBUF_WRITABLE) < 0:
        _buffer_error(obj, "out", True)
    return 0


cdef inline void in_release(InBuf *b) noexcept:
    if b.has_view:
        PyBuffer_Release(&b.view)
        b.has_view = 0


cdef struct Args:
    InBuf data
    InBuf meta
    Py_buffer out
    bint has_out


cdef int args_get(Args *a, object data, str what, object metadata, object out, bint want_out) except -1:
    """Acquire the buffers of a single-frame call (``out`` only if ``want_out``); on any error
    release what was acquired.  Checks sizes and that ``out`` overlaps no input."""
    a.has_out = 0
    in_get(data, &a.data, what)
    try:
        in_get(metadata, &a.meta, "metadata")
    except BaseException:
        in_release(&a.data)
        raise
    if want_out:
        try:
            out_get(out, &a.out)
        except BaseException:
            in_release(&a.meta)
            in_release(&a.data)
            raise
        a.has_out = 1
    try:
        if <size_t>a.data.len > OF_MAX_FRAME or <size_t>a.meta.len > OF_MAX_FRAME:
            raise ValueError(f"{what} or metadata too large")
        if a.has_out:
            if overlaps(a.data.ptr, a.data.len, <unsigned char *>a.out.buf, a.out.len):
                raise ValueError(f"out must not overlap {what}")
            if overlaps(a.meta.ptr, a.meta.len, <unsigned char *>a.out.buf, a.out.len):
                raise ValueError("out must not overlap metadata")
    except BaseException:
        args_release(a)
        raise
    return 0


cdef inline void args_release(Args *a) noexcept:
    if a.has_out:
        PyBuffer_Release(&a.out)
        a.has_out = 0
    in_release(&a.meta)
    in_release(&a.data)


cdef inline bint overlaps(const unsigned char *a, Py_ssize_t alen,
                          const unsigned char *b, Py_ssize_t blen) noexcept:
    return alen > 0 and blen > 0 and a < b + blen and b < a + alen


cdef inline bint is_buffer(object obj):
    cdef Py_buffer view
    if PyBytes_CheckExact(obj):
        return True
    if _get_buffer(obj, &view, PyBUF_SIMPLE) < 0:
        PyErr_Clear()
        return False
    PyBuffer_Release(&view)
    return True


# ------------------------------------------------------------------ KIDs and headers

cdef object _as_kid(object kid, str what="kid"):
    """Validate a KID/CTR argument: an int in [0, 2**64)."""
    if not PyLong_CheckExact(kid):
        try:
            kid = _operator.index(kid)
        except TypeError:
            raise TypeError(f"{what} must be an int, not {type(kid).__name__}") from None
    if kid < 0 or kid > 0xFFFFFFFFFFFFFFFF:
        raise ValueError(f"{what} must be in [0, 2**64), got {kid}")
    return kid


def encode_header(kid, ctr) -> bytes:
    """Encode an SFrame header (RFC 9605 §4.3) with the minimal encoding (1-17 bytes)."""
    cdef unsigned char buf[17]
    cdef uint64_t k = _as_kid(kid, "kid")
    cdef uint64_t c = _as_kid(ctr, "ctr")
    cdef size_t n = of_hdr_encode(k, c, buf)
    return PyBytes_FromStringAndSize(<char *>buf, n)


def decode_header(buf) -> tuple:
    """Decode an SFrame header strictly; return ``(kid, ctr, header_len)``.

    Trailing bytes (the ciphertext) are ignored.  Raises
    :class:`MalformedHeaderError` on empty or truncated input and on non-minimal
    encodings (an extended field with a leading zero byte or a value below 8).
    """
    cdef InBuf b
    cdef uint64_t kid = 0, ctr = 0
    cdef size_t hlen = 0
    cdef int rc
    in_get(buf, &b, "buf")
    rc = of_hdr_decode(b.ptr, <size_t>b.len, &kid, &ctr, &hlen)
    in_release(&b)
    if rc != OF_OK:
        raise MalformedHeaderError(_malformed_reason(b.len))
    return (kid, ctr, hlen)


cdef str _malformed_reason(Py_ssize_t length):
    if length == 0:
        return "empty SFrame header"
    return "truncated or non-minimal SFrame header"


# ------------------------------------------------------------------ keys

cdef class _Key:
    """One KID's key: keyed OpenSSL state, direction, counter or replay window, lock."""

    cdef of_key k
    cdef of_window w
    cdef of_mutex lock
    cdef bint has_lock
    cdef uint64_t kid
    cdef uint64_t next_ctr
    cdef uint64_t pending   # frames of the batch being reserved (batch reservation scratch)
    cdef bint exhausted
    cdef bint send
    cdef bint ready
    cdef bint dead          # removed from its Context: it may never hand out a counter again

    def __cinit__(self):
        if of_mutex_init(&self.lock) != 0:
            raise MemoryError()
        self.has_lock = True

    def __dealloc__(self):
        if self.ready:
            of_key_free(&self.k)
        if self.w.bits != NULL:
            free(self.w.bits)
        if self.has_lock:
            of_mutex_destroy(&self.lock)

    def __repr__(self):
        return f"<sframe key kid={self.kid} {'send' if self.send else 'receive'}>"


cdef inline void key_lock(_Key key):
    """Take the key's lock; wait without the GIL if another thread holds it."""
    if not of_mutex_trylock(&key.lock):
        with nogil:
            of_mutex_lock(&key.lock)


cdef inline void key_unlock(_Key key) noexcept nogil:
    of_mutex_unlock(&key.lock)


cdef inline int reserve_ctr(_Key key, uint64_t count, uint64_t *first) except -1:
    """Reserve ``count`` consecutive counters.

    Runs with the GIL and calls no Python code, so reservations never interleave; a
    key removed from its Context (``dead``) refuses, because ``remove_key`` recorded
    its counter floor for a later re-add of the KID.
    """
    if key.dead:
        raise UnknownKeyError(f"the send key of KID {key.kid} was removed")
    if count == 0:
        first[0] = key.next_ctr
        return 0
    if key.exhausted or UINT64_MAX - key.next_ctr < count - 1:
        raise CounterExhaustedError(
            f"send counter of KID {key.kid} is exhausted; install a new key"
        )
    first[0] = key.next_ctr
    if UINT64_MAX - key.next_ctr == count - 1:
        key.exhausted = True
    else:
        key.next_ctr += count
    return 0


cdef object _replay_error(int rc, uint64_t kid, uint64_t ctr):
    if rc == OF_ERR_TOO_OLD:
        return ReplayError(f"counter {ctr} of KID {kid} is below the replay window")
    return ReplayError(f"counter {ctr} of KID {kid} was already accepted")


cdef object _open_error(int rc, uint64_t kid, uint64_t ctr):
    if rc == OF_ERR_AUTH:
        return AuthenticationError(f"authentication failed for KID {kid}, counter {ctr}")
    if rc == OF_ERR_REPLAY or rc == OF_ERR_TOO_OLD:
        return _replay_error(rc, kid, ctr)
    if rc == OF_ERR_SHORT:
        return MalformedHeaderError("ciphertext is shorter than the authentication tag")
    if rc == OF_ERR_TOO_LARGE:
        return ValueError("frame too large")
    return SFrameError(f"OpenSSL failure while decrypting (KID {kid}, counter {ctr})")


# ------------------------------------------------------------------ Context

cdef class Context:
    """An SFrame context (RFC 9605 §4.4): one cipher suite and a map KID -> key.

    Every key is either a send key (encrypt only; its counter starts at 0 and is
    never reused) or a receive key (decrypt only; with a sliding replay window of
    ``replay_window`` counters, 0 disables it).  One Context may be used from
    several threads at once.
    """

    cdef of_suite s
    cdef const EVP_CIPHER *cipher
    cdef dict _keys
    cdef dict _retired
    cdef readonly object suite
    cdef readonly uint32_t replay_window
    cdef int nt
    cdef uint64_t _rcache_kid[64]
    cdef PyObject *_rcache_key[64]   # borrowed from _keys; cleared on every key change
    cdef PyObject *_last_send        # borrowed from _keys; cleared on every key change
    cdef uint64_t _last_send_kid
    cdef bint _initialized          # __init__ ran: a second run is refused

    # All set-up happens in __cinit__, which Python runs exactly once per object:
    # re-running __init__ must not swap the key dicts under the borrowed pointers
    # above (use after free) nor forget the retired counters (nonce reuse).
    def __cinit__(self, suite, *, replay_window=128):
        if isinstance(suite, bool) or not hasattr(type(suite), "__index__"):
            raise TypeError(f"suite must be a CipherSuite or int, not {type(suite).__name__}")
        try:
            suite = CipherSuite(_operator.index(suite))
        except ValueError:
            raise ValueError(f"unknown SFrame cipher suite {int(suite)}") from None
        if not isinstance(replay_window, int) or isinstance(replay_window, bool):
            raise TypeError(f"replay_window must be an int, not {type(replay_window).__name__}")
        if replay_window < 0 or replay_window > MAX_REPLAY_WINDOW:
            raise ValueError(f"replay_window must be in [0, {MAX_REPLAY_WINDOW}]")
        self.suite = suite
        self.replay_window = replay_window
        of_suite_params(int(suite), &self.s)
        self.nt = self.s.nt
        if self.s.gcm:
            self.cipher = _AES128_GCM if self.s.nk == 16 else _AES256_GCM
        else:
            self.cipher = _AES128_CTR if self.s.nka == 16 else _AES256_CTR
        self._keys = {}
        self._retired = {}

    def __init__(self, suite, *, replay_window=128):
        if self._initialized:
            raise TypeError("Context.__init__ may run only once; create a new Context instead")
        self._initialized = True

    def __repr__(self):
        nsend = sum(1 for k in self._keys.values() if (<_Key>k).send)
        return (
            f"Context(suite={self.suite.name}, send_keys={nsend}, "
            f"receive_keys={len(self._keys) - nsend}, replay_window={self.replay_window})"
        )

    def __reduce__(self):
        raise TypeError("an SFrame Context holds keys and cannot be pickled")

    # -------------------------------------------------------------- key management

    cdef _Key _make_key(self, object kid, object base_key, bint send):
        cdef InBuf b
        cdef _Key key = _Key.__new__(_Key)
        cdef int rc
        key.kid = kid
        key.send = send
        in_get(base_key, &b, "base_key")
        try:
            if b.len == 0:
                raise ValueError("base_key must not be empty")
            rc = of_key_init(&key.k, &self.s, self.cipher, key.kid, b.ptr, <size_t>b.len, 1 if send else 0)
        finally:
            in_release(&b)
        if rc != OF_OK:
            raise SFrameError("OpenSSL failed to set up the key")
        key.ready = True
        if not send and self.replay_window:
            key.w.size = self.replay_window
            key.w.nwords = (self.replay_window + 63) // 64
            key.w.bits = <uint64_t *>calloc(key.w.nwords, 8)
            if key.w.bits == NULL:
                raise MemoryError()
        return key

    def add_send_key(self, kid, base_key, *, start_counter=None) -> None:
        """Install the encryption key for ``kid`` (derived from ``base_key`` per RFC 9605 §4.4.2).

        The KID's counter starts at 0, or where it stopped if this Context used the
        KID before (so no (KID, CTR) pair is ever used twice within one Context), or
        at ``start_counter`` when resuming a persisted sender (it may not go back).
        Raises ValueError if ``kid`` already has a key.
        """
        kid = _as_kid(kid)
        if kid in self._keys:
            raise ValueError(f"KID {kid} already has a key; remove it first")
        key = self._make_key(kid, base_key, True)
        floor = self._retired.get(kid, 0)
        if start_counter is not None:
            start = _as_kid(start_counter, "start_counter")
            if start < floor:
                raise ValueError(f"start_counter {start} would reuse counters of KID {kid}")
            floor = start
        if floor > 0xFFFFFFFFFFFFFFFF:
            key.exhausted = True
            key.next_ctr = UINT64_MAX
        else:
            key.next_ctr = floor
        self._keys[kid] = key

    def add_receive_key(self, kid, base_key) -> None:
        """Install (or replace) the decryption key for ``kid``.

        A replacement starts a fresh replay window (a new key restarts its sender's
        counters).  Raises ValueError if ``kid`` is a send key of this Context.
        """
        kid = _as_kid(kid)
        old = self._keys.get(kid)
        if old is not None and (<_Key>old).send:
            raise ValueError(f"KID {kid} is a send key of this Context")
        new = self._make_key(kid, base_key, False)
        self._clear_cache()
        self._keys[kid] = new

    def remove_key(self, kid) -> None:
        """Forget ``kid``'s key (either direction); raises UnknownKeyError if absent."""
        kid = _as_kid(kid)
        key = self._keys.pop(kid, None)
        self._clear_cache()
        if key is None:
            raise UnknownKeyError(f"no key for KID {kid}")
        (<_Key>key).dead = True
        if (<_Key>key).send:
            self._retired[kid] = (
                0x10000000000000000 if (<_Key>key).exhausted else (<_Key>key).next_ctr
            )

    def has_key(self, kid) -> bool:
        """True if ``kid`` has a key of either direction."""
        return _as_kid(kid) in self._keys

    def send_kids(self) -> list:
        """The KIDs with a send key."""
        return sorted(k for k, v in self._keys.items() if (<_Key>v).send)

    def receive_kids(self) -> list:
        """The KIDs with a receive key."""
        return sorted(k for k, v in self._keys.items() if not (<_Key>v).send)

    def next_counter(self, kid) -> int:
        """The counter the next frame encrypted under ``kid`` will use."""
        cdef _Key key = self._send_key(kid)
        if key.exhausted:
            raise CounterExhaustedError(f"send counter of KID {key.kid} is exhausted")
        return key.next_ctr

    cdef inline _Key _send_key(self, object kid):
        cdef PyObject *p = NULL
        cdef uint64_t k
        if PyLong_CheckExact(kid):
            if self._last_send != NULL:
                k = _as_u64(kid)
                if k == UINT64_MAX and PyErr_Occurred() != NULL:
                    PyErr_Clear()
                elif k == self._last_send_kid:
                    return <_Key>self._last_send
            p = PyDict_GetItemWithError(self._keys, kid)
        if p == NULL:
            kid = _as_kid(kid)
            p = PyDict_GetItemWithError(self._keys, kid)
            if p == NULL:
                raise UnknownKeyError(f"no send key for KID {kid}")
        if not (<_Key>p).send:
            raise UnknownKeyError(f"KID {kid} is a receive key, not a send key")
        self._last_send = p
        self._last_send_kid = (<_Key>p).kid
        return <_Key>p

    cdef inline _Key _recv_key(self, uint64_t kid):
        """The receive key for ``kid``, or None.

        A small direct-mapped cache in front of the dict spares the int allocation
        and hash lookup per frame; every key change clears it.
        """
        cdef unsigned slot = <unsigned>((kid * <uint64_t>0x9E3779B97F4A7C15) >> 58)
        cdef PyObject *p
        if self._rcache_key[slot] != NULL and self._rcache_kid[slot] == kid:
            return <_Key>self._rcache_key[slot]
        p = PyDict_GetItemWithError(self._keys, PyLong_FromUnsignedLongLong(kid))
        if p == NULL or (<_Key>p).send:
            return None
        self._rcache_kid[slot] = kid
        self._rcache_key[slot] = p
        return <_Key>p

    cdef void _clear_cache(self):
        cdef int i
        for i in range(64):
            self._rcache_key[i] = NULL
        self._last_send = NULL

    # -------------------------------------------------------------- sizes

    def ciphertext_size(self, kid, plaintext_len) -> int:
        """Exact size of the next ciphertext of ``kid`` for a plaintext of that length.

        Exact when no other thread encrypts under ``kid`` meanwhile; otherwise use
        :meth:`max_ciphertext_size`.
        """
        cdef _Key key = self._send_key(kid)
        plaintext_len = _length(plaintext_len)
        return of_hdr_len(key.kid, key.next_ctr) + plaintext_len + self.nt

    def max_ciphertext_size(self, plaintext_len) -> int:
        """Upper bound of any ciphertext size for that plaintext length (17-byte header)."""
        plaintext_len = _length(plaintext_len)
        return OF_MAX_HDR + plaintext_len + self.nt

    def plaintext_size(self, ciphertext) -> int:
        """Exact plaintext size of ``ciphertext`` (parses its header)."""
        cdef InBuf b
        cdef uint64_t kid, ctr
        cdef size_t hlen
        cdef int rc
        in_get(ciphertext, &b, "ciphertext")
        rc = of_hdr_decode(b.ptr, <size_t>b.len, &kid, &ctr, &hlen)
        n = b.len
        in_release(&b)
        if rc != OF_OK:
            raise MalformedHeaderError(_malformed_reason(n))
        if n - <Py_ssize_t>hlen < self.nt:
            raise MalformedHeaderError("ciphertext is shorter than the authentication tag")
        return n - <Py_ssize_t>hlen - self.nt

    # -------------------------------------------------------------- single frames

    cdef Py_ssize_t _seal(self, _Key key, InBuf *f, InBuf *m, unsigned char *out,
                          Py_ssize_t outlen, uint64_t ctr) except -1:
        cdef long n
        key_lock(key)
        if f.len >= NOGIL_THRESHOLD:
            with nogil:
                n = of_seal(&key.k, key.kid, ctr, m.ptr, <size_t>m.len, f.ptr, <size_t>f.len, out)
        else:
            n = of_seal(&key.k, key.kid, ctr, m.ptr, <size_t>m.len, f.ptr, <size_t>f.len, out)
        key_unlock(key)
        if n < 0:
            raise SFrameError(f"OpenSSL failure while encrypting (KID {key.kid})")
        return n

    def encrypt(self, kid, frame, metadata=b"") -> bytes:
        """Encrypt one frame under ``kid``'s send key; return header || ciphertext || tag.

        ``metadata`` is authenticated (bound into the AAD) but not transmitted; the
        receiver must pass the same bytes.
        """
        cdef _Key key = self._send_key(kid)
        cdef Args a
        cdef uint64_t ctr
        cdef Py_ssize_t size
        args_get(&a, frame, "frame", metadata, None, False)
        try:
            reserve_ctr(key, 1, &ctr)
            size = of_hdr_len(key.kid, ctr) + a.data.len + self.nt
            out = PyBytes_FromStringAndSize(NULL, size)
            self._seal(key, &a.data, &a.meta, <unsigned char *>PyBytes_AS_STRING(out), size, ctr)
            return out
        finally:
            args_release(&a)

    def encrypt_into(self, kid, frame, out, metadata=b"") -> int:
        """Encrypt into the writable buffer ``out``; return the number of bytes written.

        Raises BufferTooSmallError (before any counter is used) if ``out`` is too
        small: :meth:`max_ciphertext_size` is always enough.
        """
        cdef _Key key = self._send_key(kid)
        cdef Args a
        cdef uint64_t ctr
        cdef Py_ssize_t size
        args_get(&a, frame, "frame", metadata, out, True)
        try:
            if key.exhausted:
                raise CounterExhaustedError(f"send counter of KID {key.kid} is exhausted")
            size = of_hdr_len(key.kid, key.next_ctr) + a.data.len + self.nt
            if a.out.len < size:
                raise BufferTooSmallError(f"out holds {a.out.len} bytes, {size} needed")
            reserve_ctr(key, 1, &ctr)
            return self._seal(key, &a.data, &a.meta, <unsigned char *>a.out.buf, a.out.len, ctr)
        finally:
            args_release(&a)

    cdef Py_ssize_t _parse(self, InBuf *c, uint64_t *kid, uint64_t *ctr, size_t *hlen) except -1:
        """Parse the header of a ciphertext strictly; return the plaintext length."""
        if of_hdr_decode(c.ptr, <size_t>c.len, kid, ctr, hlen) != OF_OK:
            raise MalformedHeaderError(_malformed_reason(c.len))
        cdef Py_ssize_t ptlen = c.len - <Py_ssize_t>hlen[0] - self.nt
        if ptlen < 0:
            raise MalformedHeaderError("ciphertext is shorter than the authentication tag")
        return ptlen

    cdef _Key _recv_key_or_raise(self, uint64_t kid):
        cdef _Key key = self._recv_key(kid)
        if key is None:
            raise UnknownKeyError(f"no receive key for KID {kid}")
        return key

    cdef int _open(self, _Key key, InBuf *c, InBuf *m, size_t hlen, uint64_t kid, uint64_t ctr,
                   unsigned char *out) except -1:
        """Replay-check, decrypt, advance the window (under the key's lock); raise on failure."""
        cdef int rc
        key_lock(key)
        rc = of_window_check(&key.w, ctr)
        if rc == OF_OK:
            if c.len >= NOGIL_THRESHOLD:
                with nogil:
                    rc = of_open(&key.k, ctr, c.ptr, hlen, m.ptr, <size_t>m.len,
                                 c.ptr + hlen, <size_t>(c.len - <Py_ssize_t>hlen), out)
            else:
                rc = of_open(&key.k, ctr, c.ptr, hlen, m.ptr, <size_t>m.len,
                             c.ptr + hlen, <size_t>(c.len - <Py_ssize_t>hlen), out)
            if rc == OF_OK:
                of_window_update(&key.w, ctr)
        key_unlock(key)
        if rc != OF_OK:
            raise _open_error(rc, kid, ctr)
        return 0

    cdef object _decrypt(self, object ciphertext, object metadata, uint64_t *kid, uint64_t *ctr):
        cdef Args a
        cdef size_t hlen
        cdef Py_ssize_t ptlen
        cdef _Key key
        args_get(&a, ciphertext, "ciphertext", metadata, None, False)
        try:
            ptlen = self._parse(&a.data, kid, ctr, &hlen)
            key = self._recv_key_or_raise(kid[0])
            out = PyBytes_FromStringAndSize(NULL, ptlen)
            self._open(key, &a.data, &a.meta, hlen, kid[0], ctr[0], <unsigned char *>PyBytes_AS_STRING(out))
            return out
        finally:
            args_release(&a)

    def decrypt(self, ciphertext, metadata=b"") -> bytes:
        """Decrypt one SFrame ciphertext (the KID is read from its header).

        Raises MalformedHeaderError, UnknownKeyError, ReplayError or
        AuthenticationError; a failed decrypt changes no state.
        """
        cdef uint64_t kid, ctr
        return self._decrypt(ciphertext, metadata, &kid, &ctr)

    def decrypt_with_kid(self, ciphertext, metadata=b"") -> tuple:
        """Like :meth:`decrypt`; returns ``(kid, ctr, plaintext)``."""
        cdef uint64_t kid, ctr
        out = self._decrypt(ciphertext, metadata, &kid, &ctr)
        return (kid, ctr, out)

    def decrypt_into(self, ciphertext, out, metadata=b"") -> int:
        """Decrypt into the writable buffer ``out``; return the plaintext length.

        On any failure ``out`` holds no plaintext and no state changes.
        """
        cdef Args a
        cdef uint64_t kid, ctr
        cdef size_t hlen
        cdef Py_ssize_t ptlen
        cdef _Key key
        args_get(&a, ciphertext, "ciphertext", metadata, out, True)
        try:
            ptlen = self._parse(&a.data, &kid, &ctr, &hlen)
            key = self._recv_key_or_raise(kid)
            if a.out.len < ptlen:
                raise BufferTooSmallError(f"out holds {a.out.len} bytes, {ptlen} needed")
            self._open(key, &a.data, &a.meta, hlen, kid, ctr, <unsigned char *>a.out.buf)
            return ptlen
        finally:
            args_release(&a)

    # -------------------------------------------------------------- batches

    def encrypt_batch(self, kid, frames, metadata=b"") -> list:
        """Encrypt many frames in one call, releasing the GIL once for the whole batch.

        ``kid`` is one KID for every frame or a sequence with one per frame;
        ``metadata`` is one bytes-like object for every frame or a sequence with one
        per frame.  All-or-nothing: argument errors, unknown KIDs and exhausted
        counters are found before any counter is used.
        """
        frames = _as_list(frames, "frames")
        cdef Py_ssize_t n = len(frames)
        kids = None if _is_kid(kid) else _as_list(kid, "kid")
        metas = None if is_buffer(metadata) else _as_list(metadata, "metadata")
        if kids is not None and len(kids) != n:
            raise ValueError(f"got {len(kids)} KIDs for {n} frames")
        if metas is not None and len(metas) != n:
            raise ValueError(f"got {len(metas)} metadata entries for {n} frames")
        cdef _Batch b = _Batch(n)
        cdef Py_ssize_t i
        cdef _Key key
        cdef InBuf m0
        m0.has_view = 0
        try:
            if metas is None:
                in_get(metadata, &m0, "metadata")
            # keys (this may run Python code: __index__ of a KID)
            if kids is None:
                key = self._send_key(kid)
                b.refs.append(key)
                for i in range(n):
                    b.set_key(i, key)
                    b.kobjs[i] = <PyObject *>key
            else:
                for i in range(n):
                    key = self._send_key(kids[i])
                    b.refs.append(key)
                    b.set_key(i, key)
                    b.kobjs[i] = <PyObject *>key
            # buffers (this may run Python code too)
            b.acquire_all(frames, "frame", metas, &m0, True)
            # counters: checked and reserved for every frame with no Python code in between
            b.reserve_all()
            # outputs (allocation may run finalizers: the counters are already taken)
            result = PyList_New(n)
            for i in range(n):
                o = PyBytes_FromStringAndSize(NULL, of_hdr_len(b.kids[i], b.ctrs[i]) + b.il[i] + self.nt)
                Py_INCREF(o)
                PyList_SET_ITEM(result, i, o)
                b.outs[i] = <unsigned char *>PyBytes_AS_STRING(o)
            with nogil:
                b.seal_all()
            if b.failed >= 0:
                raise SFrameError("OpenSSL failure while encrypting a batch")
            return result
        finally:
            in_release(&m0)

    def decrypt_batch(self, ciphertexts, metadata=b"", *, on_error="raise") -> list:
        """Decrypt many frames in one call, releasing the GIL once for the whole batch.

        Every frame is attempted, in order (a duplicate within the batch is a replay).
        With ``on_error="raise"`` any failure raises :class:`BatchDecryptError`, which
        carries every result and every error; with ``"none"`` failed frames are None.
        """
        if on_error not in ("raise", "none"):
            raise ValueError("on_error must be 'raise' or 'none'")
        cts = _as_list(ciphertexts, "ciphertexts")
        cdef Py_ssize_t n = len(cts)
        metas = None if is_buffer(metadata) else _as_list(metadata, "metadata")
        if metas is not None and len(metas) != n:
            raise ValueError(f"got {len(metas)} metadata entries for {n} frames")
        cdef _Batch b = _Batch(n)
        cdef Py_ssize_t i, ptlen
        cdef InBuf m0
        cdef _Key key
        m0.has_view = 0
        try:
            if metas is None:
                in_get(metadata, &m0, "metadata")
            b.acquire_all(cts, "ciphertext", metas, &m0, False)
            result = PyList_New(n)
            for i in range(n):
                o = None
                b.status[i] = b.parse(i, self.nt)
                if b.status[i] == OF_OK:
                    key = self._recv_key(b.kids[i])
                    if key is None:
                        b.status[i] = OF_ERR_UNKNOWN_KEY
                    else:
                        b.set_key(i, key)
                        b.refs.append(key)
                        ptlen = b.il[i] - <Py_ssize_t>b.hlens[i] - self.nt
                        o = PyBytes_FromStringAndSize(NULL, ptlen)
                        b.outs[i] = <unsigned char *>PyBytes_AS_STRING(o)
                Py_INCREF(o)
                PyList_SET_ITEM(result, i, o)
            with nogil:
                b.open_all()
            errors = {}
            for i in range(n):
                if b.status[i] != OF_OK:
                    errors[i] = _status_error(b.status[i], b.kids[i], b.ctrs[i], b.il[i])
                    result[i] = None
            if errors and on_error == "raise":
                raise BatchDecryptError(result, errors)
            return result
        finally:
            in_release(&m0)

    def encrypt_packed(self, kid, data, offsets, metadata=b"", *, out=None):
        """Encrypt frames packed in one array: frame i is ``data[offsets[i]:offsets[i+1]]``.

        ``data`` is any C-contiguous buffer (typically a uint8 numpy array) and
        ``offsets`` n+1 non-decreasing integer offsets.  Returns ``(out, out_offsets)``
        in the same packed form.  ``out``, if given, is a writable buffer reused for
        the result (no allocation; BufferTooSmallError, with no counter used, if it
        cannot hold ``sum(len) + n * (17 + Nt)`` bytes -- :meth:`max_ciphertext_size`
        per frame is always enough).  One KID and one metadata for all frames;
        all-or-nothing like :meth:`encrypt_batch`.
        """
        import numpy as np
        cdef _Key key = self._send_key(kid)
        offs = _check_offsets(offsets, data)
        cdef Py_ssize_t n = len(offs) - 1
        cdef _Batch b = _Batch(n)
        cdef Packed pk
        cdef Py_ssize_t i, total = 0
        cdef uint64_t first
        out_offs = np.empty(n + 1, dtype=np.int64)
        packed_get(&pk, data, offs, metadata, out_offs, out)
        try:
            # sizes from the counters about to be reserved (no Python code runs until reserve_ctr)
            first = key.next_ctr
            pk.oo[0] = 0
            for i in range(n):
                total += of_hdr_len(key.kid, first + <uint64_t>i) + (pk.io[i + 1] - pk.io[i]) + self.nt
                pk.oo[i + 1] = total
            if pk.has_out and pk.out.len < total:
                raise BufferTooSmallError(f"out holds {pk.out.len} bytes, {total} needed")
            reserve_ctr(key, n, &first)
            if not pk.has_out:
                result = _new_u8(total, &pk.out)
                pk.has_out = 1
            else:
                result = np.frombuffer(out, dtype=np.uint8, count=total) if total else np.empty(0, np.uint8)
            b.refs.append(key)
            for i in range(n):
                b.set_key(i, key)
                b.ctrs[i] = first + <uint64_t>i
                b.ip[i] = pk.data.ptr + pk.io[i]
                b.il[i] = pk.io[i + 1] - pk.io[i]
                b.mp[i] = pk.meta.ptr
                b.ml[i] = pk.meta.len
                b.outs[i] = <unsigned char *>pk.out.buf + pk.oo[i]
            with nogil:
                b.seal_all()
        finally:
            packed_release(&pk)
        if b.failed >= 0:
            raise SFrameError("OpenSSL failure while encrypting a batch")
        return result, out_offs

    def decrypt_packed(self, data, offsets, metadata=b"", *, out=None):
        """Decrypt packed frames; returns ``(out, out_offsets, status)``.

        ``status[i]`` is STATUS_OK (0) or one of STATUS_MALFORMED, STATUS_UNKNOWN_KEY,
        STATUS_AUTH, STATUS_REPLAY; a failed frame's slot in ``out`` is empty
        (``out_offsets[i] == out_offsets[i+1]``).  ``out``, if given, is a writable
        buffer reused for the result (BufferTooSmallError before any state changes
        if it cannot hold the plaintexts; ``len(data)`` bytes are always enough).
        """
        import numpy as np
        offs = _check_offsets(offsets, data)
        cdef Py_ssize_t n = len(offs) - 1
        cdef _Batch b = _Batch(n)
        cdef Packed pk
        cdef Py_buffer sv
        cdef Py_ssize_t i, total = 0, ptlen
        cdef _Key key = None
        cdef unsigned char *base
        cdef signed char *st
        out_offs = np.empty(n + 1, dtype=np.int64)
        packed_get(&pk, data, offs, metadata, out_offs, out)
        try:
            pk.oo[0] = 0
            for i in range(n):
                b.ip[i] = pk.data.ptr + pk.io[i]
                b.il[i] = pk.io[i + 1] - pk.io[i]
                b.mp[i] = pk.meta.ptr
                b.ml[i] = pk.meta.len
                b.status[i] = b.parse(i, self.nt)
                if b.status[i] == OF_OK:
                    if key is None or key.kid != b.kids[i]:
                        key = self._recv_key(b.kids[i])
                        if key is not None:
                            b.refs.append(key)
                    if key is None:
                        b.status[i] = OF_ERR_UNKNOWN_KEY
                    else:
                        b.set_key(i, key)
                        total += b.il[i] - <Py_ssize_t>b.hlens[i] - self.nt
                pk.oo[i + 1] = total
            if pk.has_out and pk.out.len < total:
                raise BufferTooSmallError(f"out holds {pk.out.len} bytes, {total} needed")
            if not pk.has_out:
                result = _new_u8(total, &pk.out)
                pk.has_out = 1
            else:
                result = np.frombuffer(out, dtype=np.uint8, count=total) if total else np.empty(0, np.uint8)
            base = <unsigned char *>pk.out.buf
            for i in range(n):
                b.outs[i] = base + pk.oo[i]
            with nogil:
                b.open_all()
                # failed frames leave an empty slot: close the gaps they left
                total = 0
                for i in range(n):
                    ptlen = pk.oo[i + 1] - pk.oo[i]
                    if b.status[i] == OF_OK:
                        if total != pk.oo[i]:
                            memmove(base + total, base + pk.oo[i], <size_t>ptlen)
                        total += ptlen
                    elif ptlen:
                        memset(base + pk.oo[i], 0, <size_t>ptlen)
                    pk.oo[i] = total - (ptlen if b.status[i] == OF_OK else 0)
                pk.oo[n] = total
        finally:
            packed_release(&pk)
        result = result[:total]
        status = _new_u8(n, &sv)
        st = <signed char *>sv.buf
        for i in range(n):
            st[i] = _status_code(b.status[i])
        PyBuffer_Release(&sv)
        return result, out_offs, status.view(np.int8)


cdef struct Packed:
    InBuf data
    InBuf meta
    Py_buffer offs
    Py_buffer out_offs
    Py_buffer out
    bint has_out
    const int64_t *io
    int64_t *oo
    int stage


cdef int packed_get(Packed *pk, object data, object offs, object metadata, object out_offs,
                    object out) except -1:
    """Acquire the buffers of a packed call; on any error release what was acquired."""
    pk.stage = 0
    pk.has_out = 0
    try:
        in_get(data, &pk.data, "data")
        pk.stage = 1
        in_get(metadata, &pk.meta, "metadata")
        pk.stage = 2
        _get_int64(offs, &pk.offs)
        pk.stage = 3
        _get_int64(out_offs, &pk.out_offs)
        pk.stage = 4
        if out is not None:
            out_get(out, &pk.out)
            pk.has_out = 1
            if overlaps(pk.data.ptr, pk.data.len, <unsigned char *>pk.out.buf, pk.out.len) or \
                    overlaps(pk.meta.ptr, pk.meta.len, <unsigned char *>pk.out.buf, pk.out.len):
                raise ValueError("out must not overlap data or metadata")
    except BaseException:
        packed_release(pk)
        raise
    pk.io = <const int64_t *>pk.offs.buf
    pk.oo = <int64_t *>pk.out_offs.buf
    return 0


cdef void packed_release(Packed *pk) noexcept:
    if pk.has_out:
        PyBuffer_Release(&pk.out)
        pk.has_out = 0
    if pk.stage >= 4:
        PyBuffer_Release(&pk.out_offs)
    if pk.stage >= 3:
        PyBuffer_Release(&pk.offs)
    if pk.stage >= 2:
        in_release(&pk.meta)
    if pk.stage >= 1:
        in_release(&pk.data)
    pk.stage = 0


cdef object _status_error(int rc, uint64_t kid, uint64_t ctr, Py_ssize_t length):
    if rc == OF_ERR_MALFORMED:
        return MalformedHeaderError(_malformed_reason(length))
    if rc == OF_ERR_UNKNOWN_KEY:
        return UnknownKeyError(f"no receive key for KID {kid}")
    return _open_error(rc, kid, ctr)


cdef object _length(object n):
    if isinstance(n, bool) or not hasattr(n, "__index__"):
        raise TypeError(f"plaintext_len must be an int, not {type(n).__name__}")
    n = _operator.index(n)
    if n < 0:
        raise ValueError("plaintext_len must be >= 0")
    return n


cdef bint _is_kid(object kid):
    """One KID (an int or an integer scalar), as opposed to a sequence of KIDs."""
    if PyLong_CheckExact(kid) or isinstance(kid, int):
        return True
    return hasattr(kid, "__index__") and getattr(kid, "ndim", 0) == 0


cdef list _as_list(object seq, str what):
    if type(seq) is list:
        return list(<list>seq)
    if isinstance(seq, str) or is_buffer(seq):
        raise TypeError(f"{what} must be a sequence of items, not a single {type(seq).__name__}")
    try:
        return list(seq)
    except TypeError:
        raise TypeError(f"{what} must be a sequence, not {type(seq).__name__}") from None


cdef object _check_offsets(object offsets, object data):
    """Offsets as a C-contiguous int64 array of n+1 non-decreasing values within data."""
    import numpy as np
    cdef Py_buffer view
    cdef const int64_t *o
    cdef Py_ssize_t i, n
    try:
        raw = np.asarray(offsets)
    except (TypeError, ValueError):
        raise TypeError("offsets must be a sequence of integers") from None
    if raw.size and raw.dtype.kind not in "iu":
        raise TypeError(f"offsets must be integers, not {raw.dtype}")
    try:
        offs = np.ascontiguousarray(raw, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise TypeError("offsets must be a sequence of int64") from None
    if offs.ndim != 1 or offs.shape[0] < 1:
        raise ValueError("offsets must be a 1-d array of n+1 offsets")
    try:
        size = memoryview(data).nbytes
    except TypeError:
        raise TypeError(f"data must be a bytes-like object, not {type(data).__name__}") from None
    _get_int64(offs, &view)
    o = <const int64_t *>view.buf
    n = view.len // 8
    bad = o[0] < 0 or o[n - 1] > size
    for i in range(1, n):
        if o[i] < o[i - 1]:
            bad = True
            break
    PyBuffer_Release(&view)
    if bad:
        raise ValueError("offsets must be non-decreasing and within data")
    return offs


cdef int _get_int64(object arr, Py_buffer *view) except -1:
    if _get_buffer(arr, view, PyBUF_SIMPLE | PyBUF_WRITABLE) < 0:
        if _get_buffer(arr, view, PyBUF_SIMPLE) < 0:
            _buffer_error(arr, "offsets", False)
    return 0


cdef object _new_u8(Py_ssize_t size, Py_buffer *view):
    """A new uint8 array of ``size`` bytes and a writable view of it (released by the caller)."""
    import numpy as np
    full = np.empty(size if size > 0 else 1, dtype=np.uint8)
    if _get_buffer(full, view, PyBUF_SIMPLE | PyBUF_WRITABLE) < 0:
        _buffer_error(full, "out", True)
    return full[:size]


cdef inline signed char _status_code(int rc) noexcept nogil:
    if rc == OF_OK:
        return STATUS_OK_C
    if rc == OF_ERR_UNKNOWN_KEY:
        return STATUS_UNKNOWN_KEY_C
    if rc == OF_ERR_REPLAY or rc == OF_ERR_TOO_OLD:
        return STATUS_REPLAY_C
    if rc == OF_ERR_AUTH or rc == OF_ERR_INTERNAL:
        return STATUS_AUTH_C
    return STATUS_MALFORMED_C


cdef class _Batch:
    """Per-frame scratch arrays of one batch call; frees everything on deallocation.

    The nogil loops see only C pointers (inputs, key state, window, lock); the key
    objects are kept alive by ``refs`` and buffer views are released at the end.
    """

    cdef Py_ssize_t n, nviews
    cdef const unsigned char **ip   # input frame (or ciphertext) pointers and lengths
    cdef Py_ssize_t *il
    cdef const unsigned char **mp   # metadata pointers and lengths
    cdef Py_ssize_t *ml
    cdef Py_buffer *views           # buffer views to release (allocated on first use)
    cdef of_key **ks
    cdef of_window **ws
    cdef of_mutex **locks
    cdef PyObject **kobjs    # borrowed: the keys are kept alive by ``refs``
    cdef uint64_t *kids
    cdef uint64_t *ctrs
    cdef size_t *hlens
    cdef int *status
    cdef unsigned char **outs
    cdef list refs
    cdef Py_ssize_t failed

    def __cinit__(self, Py_ssize_t n):
        self.n = n
        self.failed = -1
        self.refs = []
        cdef size_t m = <size_t>(n if n > 0 else 1)
        self.ip = <const unsigned char **>malloc(m * sizeof(void *))
        self.il = <Py_ssize_t *>malloc(m * sizeof(Py_ssize_t))
        self.mp = <const unsigned char **>malloc(m * sizeof(void *))
        self.ml = <Py_ssize_t *>malloc(m * sizeof(Py_ssize_t))
        self.ks = <of_key **>malloc(m * sizeof(of_key *))
        self.ws = <of_window **>malloc(m * sizeof(of_window *))
        self.locks = <of_mutex **>malloc(m * sizeof(of_mutex *))
        self.kobjs = <PyObject **>malloc(m * sizeof(PyObject *))
        self.kids = <uint64_t *>malloc(m * sizeof(uint64_t))
        self.ctrs = <uint64_t *>malloc(m * sizeof(uint64_t))
        self.hlens = <size_t *>malloc(m * sizeof(size_t))
        self.status = <int *>malloc(m * sizeof(int))
        self.outs = <unsigned char **>malloc(m * sizeof(unsigned char *))
        if (self.ip == NULL or self.il == NULL or self.mp == NULL or self.ml == NULL
                or self.ks == NULL or self.ws == NULL or self.locks == NULL or self.kobjs == NULL
                or self.kids == NULL or self.ctrs == NULL or self.hlens == NULL
                or self.status == NULL or self.outs == NULL):
            raise MemoryError()

    def __dealloc__(self):
        cdef Py_ssize_t i
        for i in range(self.nviews):
            PyBuffer_Release(&self.views[i])
        free(self.views)
        free(self.ip)
        free(self.il)
        free(self.mp)
        free(self.ml)
        free(self.ks)
        free(self.ws)
        free(self.locks)
        free(self.kobjs)
        free(self.kids)
        free(self.ctrs)
        free(self.hlens)
        free(self.status)
        free(self.outs)

    cdef int acquire_all(self, list items, str what, list metas, InBuf *m0, bint check_size) except -1:
        """Point every frame at its input and metadata (``metas`` None: ``m0`` for all);
        with ``check_size``, refuse sizes OpenSSL's int lengths cannot take (decryption
        reports those per frame instead)."""
        cdef Py_ssize_t i
        for i in range(self.n):
            self.acquire(i, items[i], what, False)
            if metas is None:
                self.mp[i] = m0.ptr
                self.ml[i] = m0.len
            else:
                self.acquire(i, metas[i], "metadata", True)
            if check_size and (<size_t>self.il[i] > OF_MAX_FRAME or <size_t>self.ml[i] > OF_MAX_FRAME):
                raise ValueError(f"{what} or metadata too large")
        return 0

    cdef int acquire(self, Py_ssize_t i, object obj, str what, bint meta) except -1:
        """Point frame ``i``'s input (or metadata) at ``obj``'s bytes, without copying."""
        cdef Py_buffer *view
        if PyBytes_CheckExact(obj):
            if meta:
                self.mp[i] = <const unsigned char *>PyBytes_AS_STRING(obj)
                self.ml[i] = PyBytes_GET_SIZE(obj)
            else:
                self.ip[i] = <const unsigned char *>PyBytes_AS_STRING(obj)
                self.il[i] = PyBytes_GET_SIZE(obj)
            return 0
        if self.views == NULL:
            self.views = <Py_buffer *>malloc(2 * <size_t>(self.n if self.n > 0 else 1) * sizeof(Py_buffer))
            if self.views == NULL:
                raise MemoryError()
        view = &self.views[self.nviews]
        if _get_buffer(obj, view, PyBUF_SIMPLE) < 0:
            _buffer_error(obj, what, False)
        self.nviews += 1
        if meta:
            self.mp[i] = <const unsigned char *>view.buf
            self.ml[i] = view.len
        else:
            self.ip[i] = <const unsigned char *>view.buf
            self.il[i] = view.len
        return 0

    cdef inline void set_key(self, Py_ssize_t i, _Key key):
        self.ks[i] = &key.k
        self.ws[i] = &key.w
        self.locks[i] = &key.lock
        self.kids[i] = key.kid

    cdef int reserve_all(self) except -1:
        """All-or-nothing counter reservation for every frame of an encrypt batch.

        Pure C under the GIL: count the frames per key, check every key (removed or
        without enough counters left), then hand out consecutive counters.
        """
        cdef Py_ssize_t i
        cdef _Key key
        cdef object err = None
        for i in range(self.n):
            (<_Key>self.kobjs[i]).pending += 1
        for i in range(self.n):
            key = <_Key>self.kobjs[i]
            if key.pending == 0:
                continue
            if key.dead:
                err = UnknownKeyError(f"the send key of KID {key.kid} was removed")
            elif key.exhausted or UINT64_MAX - key.next_ctr < key.pending - 1:
                err = CounterExhaustedError(
                    f"send counter of KID {key.kid} cannot provide {key.pending} more counters"
                )
            if err is not None:
                break
        if err is not None:
            for i in range(self.n):
                (<_Key>self.kobjs[i]).pending = 0
            raise err
        for i in range(self.n):
            key = <_Key>self.kobjs[i]
            key.pending = 0
            self.ctrs[i] = key.next_ctr
            if key.next_ctr == UINT64_MAX:
                key.exhausted = True
            else:
                key.next_ctr += 1
        return 0

    cdef inline int parse(self, Py_ssize_t i, int nt) noexcept:
        if of_hdr_decode(self.ip[i], <size_t>self.il[i], &self.kids[i], &self.ctrs[i], &self.hlens[i]) != OF_OK:
            return OF_ERR_MALFORMED
        if self.il[i] - <Py_ssize_t>self.hlens[i] < nt:
            return OF_ERR_SHORT
        return OF_OK

    cdef void seal_all(self) noexcept nogil:
        """Encrypt every frame; hold each key's lock across a run of frames with that key."""
        cdef Py_ssize_t i
        cdef of_mutex *held = NULL
        cdef long r
        for i in range(self.n):
            if self.locks[i] != held:
                if held != NULL:
                    of_mutex_unlock(held)
                held = self.locks[i]
                of_mutex_lock(held)
            r = of_seal(self.ks[i], self.kids[i], self.ctrs[i],
                        self.mp[i], <size_t>self.ml[i],
                        self.ip[i], <size_t>self.il[i], self.outs[i])
            if r < 0 and self.failed < 0:
                self.failed = i
        if held != NULL:
            of_mutex_unlock(held)

    cdef void open_all(self) noexcept nogil:
        """Replay-check, decrypt and advance the window of every parsed frame, in order."""
        cdef Py_ssize_t i
        cdef of_mutex *held = NULL
        cdef int rc
        for i in range(self.n):
            if self.status[i] != OF_OK:
                continue
            if self.locks[i] != held:
                if held != NULL:
                    of_mutex_unlock(held)
                held = self.locks[i]
                of_mutex_lock(held)
            rc = of_window_check(self.ws[i], self.ctrs[i])
            if rc == OF_OK:
                rc = of_open(self.ks[i], self.ctrs[i], self.ip[i], self.hlens[i],
                             self.mp[i], <size_t>self.ml[i],
                             self.ip[i] + self.hlens[i], <size_t>(self.il[i] - <Py_ssize_t>self.hlens[i]),
                             self.outs[i])
                if rc == OF_OK:
                    of_window_update(self.ws[i], self.ctrs[i])
            self.status[i] = rc
        if held != NULL:
            of_mutex_unlock(held)
