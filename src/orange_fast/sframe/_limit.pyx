# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The C-loop limit for benchmarks: the per-frame EVP sequence of the core
(``sframe_c.h``) run in a plain C loop over packed frames, with no Python, no
argument parsing, no locks and no allocation per frame.  This is the ceiling the
core is measured against, with the same linked OpenSSL."""

from libc.stdint cimport uint64_t, int64_t
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE, PyBUF_WRITABLE

from time import perf_counter_ns

from .sframe_c cimport *

cdef extern from "openssl/evp.h":
    pass

cdef const EVP_CIPHER *_ciphers[9]


cdef const EVP_CIPHER *_cipher(const of_suite *s):
    cdef bytes name
    if _ciphers[s.suite] == NULL:
        if s.gcm:
            name = b"AES-128-GCM" if s.nk == 16 else b"AES-256-GCM"
        else:
            name = b"AES-128-CTR" if s.nka == 16 else b"AES-256-CTR"
        _ciphers[s.suite] = EVP_CIPHER_fetch(NULL, name, NULL)
    return _ciphers[s.suite]


cdef class LimitKey:
    """A bare keyed SFrame key state (no counters, no window, no lock)."""

    cdef of_key k
    cdef of_suite s
    cdef uint64_t kid
    cdef bint ready

    def __init__(self, int suite, base_key, uint64_t kid, bint encrypt):
        cdef const unsigned char[::1] b = base_key
        if of_suite_params(suite, &self.s) != OF_OK:
            raise ValueError("unknown suite")
        if of_key_init(&self.k, &self.s, _cipher(&self.s), kid, &b[0], len(b), encrypt) != OF_OK:
            raise RuntimeError("OpenSSL key setup failed")
        self.kid = kid
        self.ready = True

    def __dealloc__(self):
        if self.ready:
            of_key_free(&self.k)

    def seal_loop(self, data, offsets, out, out_offsets, metadata=b"", uint64_t first_ctr=0,
                  int repeat=1) -> int:
        """Encrypt every packed frame ``repeat`` times; return the elapsed nanoseconds.

        ``out_offsets`` must leave room for each frame's header (sized for the largest
        counter used) and tag.
        """
        cdef const unsigned char[::1] d = data
        cdef const int64_t[::1] io = offsets
        cdef unsigned char[::1] o = out
        cdef const int64_t[::1] oo = out_offsets
        cdef const unsigned char[::1] m = metadata
        cdef Py_ssize_t n = io.shape[0] - 1, i
        cdef int r
        cdef long rc = 0
        cdef uint64_t ctr = first_ctr
        cdef const unsigned char *mp = &m[0] if m.shape[0] else NULL
        t0 = perf_counter_ns()
        with nogil:
            for r in range(repeat):
                for i in range(n):
                    rc = of_seal(&self.k, self.kid, ctr, mp, <size_t>m.shape[0],
                                 &d[0] + io[i], <size_t>(io[i + 1] - io[i]), &o[0] + oo[i])
                    ctr += 1
                    if rc < 0:
                        break
        t1 = perf_counter_ns()
        if rc < 0:
            raise RuntimeError("OpenSSL failure")
        return t1 - t0

    def open_loop(self, data, offsets, out, metadata=b"", int repeat=1) -> int:
        """Decrypt every packed SFrame ciphertext ``repeat`` times (header parse, AEAD
        open; no replay window); return the elapsed nanoseconds."""
        cdef const unsigned char[::1] d = data
        cdef const int64_t[::1] io = offsets
        cdef unsigned char[::1] o = out
        cdef const unsigned char[::1] m = metadata
        cdef Py_ssize_t n = io.shape[0] - 1, i
        cdef int r, rc = 0
        cdef uint64_t kid, ctr
        cdef size_t hlen
        cdef const unsigned char *p
        cdef size_t plen
        cdef const unsigned char *mp = &m[0] if m.shape[0] else NULL
        t0 = perf_counter_ns()
        with nogil:
            for r in range(repeat):
                for i in range(n):
                    p = &d[0] + io[i]
                    plen = <size_t>(io[i + 1] - io[i])
                    rc = of_hdr_decode(p, plen, &kid, &ctr, &hlen)
                    if rc == OF_OK:
                        rc = of_open(&self.k, ctr, p, hlen, mp, <size_t>m.shape[0],
                                     p + hlen, plen - hlen, &o[0])
                    if rc != OF_OK:
                        break
        t1 = perf_counter_ns()
        if rc != OF_OK:
            raise RuntimeError(f"decrypt failed in the limit loop ({rc})")
        return t1 - t0
