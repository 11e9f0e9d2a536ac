# Declarations of sframe_c.h (the per-frame C code shared by _core and _limit).
from libc.stdint cimport uint64_t, uint32_t, int64_t

cdef extern from "openssl/evp.h":
    ctypedef struct EVP_CIPHER:
        pass
    ctypedef struct EVP_CIPHER_CTX:
        pass
    EVP_CIPHER *EVP_CIPHER_fetch(void *libctx, const char *algorithm, const char *properties) nogil

cdef extern from "openssl/crypto.h":
    const char *OpenSSL_version(int t) nogil
    unsigned long OpenSSL_version_num() nogil
    int OPENSSL_VERSION_CONST "OPENSSL_VERSION"
    int OPENSSL_CPU_INFO
    void OPENSSL_cleanse(void *ptr, size_t len) nogil

cdef extern from "sframe_c.h" nogil:
    int OF_MAX_HDR
    int OF_OK, OF_ERR_MALFORMED, OF_ERR_UNKNOWN_KEY, OF_ERR_AUTH, OF_ERR_REPLAY
    int OF_ERR_TOO_OLD, OF_ERR_SHORT, OF_ERR_INTERNAL, OF_ERR_TOO_LARGE
    size_t OF_MAX_FRAME
    int OF_OPENSSL_STATIC
    unsigned long OPENSSL_VERSION_NUMBER
    const char *OPENSSL_VERSION_TEXT

    ctypedef struct of_suite:
        int suite
        int gcm
        int sha512
        int nh, nka, nk, nt

    ctypedef struct of_key:
        int gcm, nt, sha512, encrypt

    ctypedef struct of_window:
        uint64_t top
        int any
        uint32_t size
        uint32_t nwords
        uint64_t *bits

    size_t of_hdr_len(uint64_t kid, uint64_t ctr)
    size_t of_hdr_encode(uint64_t kid, uint64_t ctr, unsigned char *out)
    int of_hdr_decode(const unsigned char *p, size_t len, uint64_t *kid, uint64_t *ctr, size_t *hlen)
    int of_suite_params(int id, of_suite *s)
    int of_key_init(of_key *k, const of_suite *s, const EVP_CIPHER *cipher, uint64_t kid,
                    const unsigned char *base, size_t base_len, int encrypt)
    void of_key_free(of_key *k)
    long of_seal(of_key *k, uint64_t kid, uint64_t ctr, const unsigned char *meta, size_t mlen,
                 const unsigned char *pt, size_t ptlen, unsigned char *out)
    int of_open(of_key *k, uint64_t ctr, const unsigned char *hdr, size_t hlen,
                const unsigned char *meta, size_t mlen, const unsigned char *body, size_t bodylen,
                unsigned char *out)
    int of_window_check(const of_window *w, uint64_t ctr)
    void of_window_update(of_window *w, uint64_t ctr)

    ctypedef struct of_mutex:
        pass
    int of_mutex_init(of_mutex *m)
    void of_mutex_destroy(of_mutex *m)
    int of_mutex_trylock(of_mutex *m)
    void of_mutex_lock(of_mutex *m)
    void of_mutex_unlock(of_mutex *m)
