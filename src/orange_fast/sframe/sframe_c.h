/*
 * The per-frame SFrame (RFC 9605) work in plain C over OpenSSL's libcrypto.
 *
 * Shared by the Python-facing core (_core.pyx) and the C-loop limit used by the
 * benchmarks (_limit.pyx), so both run exactly the same per-frame EVP sequence:
 *
 *   GCM suites:      one keyed EVP_CIPHER_CTX per KID; per frame a new IV, the AAD
 *                    (header || metadata), the payload, final, tag.
 *   CTR+HMAC suites: one keyed AES-CTR EVP_CIPHER_CTX per KID and a pre-keyed HMAC
 *                    state (inner and outer hash states after the key pads) that is
 *                    copied per frame -- a struct copy, no allocation.
 *
 * No function here allocates, takes a lock or touches Python: callers hold the
 * key's lock and may run without the GIL.
 */
#ifndef ORANGE_FAST_SFRAME_C_H
#define ORANGE_FAST_SFRAME_C_H

/* The low-level SHA256/SHA512 state API is deprecated in OpenSSL 3 but present in
 * every build with deprecated APIs (the default); it is what makes copying a
 * pre-keyed HMAC state free. */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <limits.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/opensslv.h>
#include <openssl/sha.h>

#if defined(_MSC_VER)
#include <intrin.h>
#endif

#define OF_MAX_HDR 17
#define OF_NONCE_LEN 12
#define OF_MAX_FRAME ((size_t)INT_MAX - 64)

enum {
    OF_OK = 0,
    OF_ERR_MALFORMED = 1,   /* header truncated / non-minimal */
    OF_ERR_UNKNOWN_KEY = 2,
    OF_ERR_AUTH = 3,
    OF_ERR_REPLAY = 4,      /* counter already accepted */
    OF_ERR_TOO_OLD = 5,     /* counter below the replay window */
    OF_ERR_SHORT = 6,       /* ciphertext shorter than the tag */
    OF_ERR_INTERNAL = 7,    /* OpenSSL reported an error */
    OF_ERR_TOO_LARGE = 8,   /* frame larger than OpenSSL's int lengths allow */
};

/* ------------------------------------------------------------------ header (§4.3) */

static inline int of_bytes_needed(uint64_t v)
{
    /* minimal big-endian byte count of v (v >= 8 here, so never 0) */
#if defined(_MSC_VER)
    unsigned long idx;
    _BitScanReverse64(&idx, v);
    return (int)((idx + 8) >> 3);
#else
    return (64 - __builtin_clzll(v) + 7) >> 3;
#endif
}

static inline size_t of_hdr_len(uint64_t kid, uint64_t ctr)
{
    size_t n = 1;
    if (kid >= 8) n += (size_t)of_bytes_needed(kid);
    if (ctr >= 8) n += (size_t)of_bytes_needed(ctr);
    return n;
}

static inline void of_put_be(unsigned char *out, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        out[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static inline size_t of_hdr_encode(uint64_t kid, uint64_t ctr, unsigned char *out)
{
    unsigned char cfg;
    size_t pos = 1;
    if (kid < 8) {
        cfg = (unsigned char)(kid << 4);
    } else {
        int n = of_bytes_needed(kid);
        cfg = (unsigned char)((0x8 | (n - 1)) << 4);
        of_put_be(out + pos, kid, n);
        pos += (size_t)n;
    }
    if (ctr < 8) {
        cfg |= (unsigned char)ctr;
    } else {
        int n = of_bytes_needed(ctr);
        cfg |= (unsigned char)(0x8 | (n - 1));
        of_put_be(out + pos, ctr, n);
        pos += (size_t)n;
    }
    out[0] = cfg;
    return pos;
}

/* Strict decode: rejects empty/truncated input and non-minimal encodings
 * (an extended field with a leading zero byte, or holding a value below 8). */
static inline int of_read_field(const unsigned char *p, size_t len, size_t *pos,
                                unsigned nibble, uint64_t *val)
{
    if (!(nibble & 0x8)) {
        *val = nibble & 0x7;
        return OF_OK;
    }
    size_t n = (size_t)(nibble & 0x7) + 1;
    if (len - *pos < n) return OF_ERR_MALFORMED;
    const unsigned char *q = p + *pos;
    if (q[0] == 0) return OF_ERR_MALFORMED;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v = (v << 8) | q[i];
    if (v < 8) return OF_ERR_MALFORMED;
    *pos += n;
    *val = v;
    return OF_OK;
}

static inline int of_hdr_decode(const unsigned char *p, size_t len,
                                uint64_t *kid, uint64_t *ctr, size_t *hlen)
{
    if (len < 1) return OF_ERR_MALFORMED;
    size_t pos = 1;
    unsigned cfg = p[0];
    if (of_read_field(p, len, &pos, cfg >> 4, kid) != OF_OK) return OF_ERR_MALFORMED;
    if (of_read_field(p, len, &pos, cfg & 0xf, ctr) != OF_OK) return OF_ERR_MALFORMED;
    *hlen = pos;
    return OF_OK;
}

/* ------------------------------------------------------------------ keys (§4.4.2) */

typedef struct {
    int suite;      /* IANA id */
    int gcm;        /* 1: AES-GCM, 0: AES-CTR + HMAC */
    int sha512;     /* hash of HKDF and HMAC */
    int nh, nka, nk, nt;
} of_suite;

typedef struct {
    EVP_CIPHER_CTX *ctx;
    unsigned char salt[OF_NONCE_LEN];
    int gcm, nt, sha512, encrypt;
    SHA256_CTX i256, o256;   /* pre-keyed HMAC-SHA256 inner / outer states */
    SHA512_CTX i512, o512;   /* pre-keyed HMAC-SHA512 inner / outer states */
} of_key;

static inline int of_suite_params(int id, of_suite *s)
{
    memset(s, 0, sizeof(*s));
    s->suite = id;
    switch (id) {
    case 1: case 2: case 3:
        s->gcm = 0; s->sha512 = 0; s->nh = 32; s->nka = 16; s->nk = 48;
        s->nt = id == 1 ? 10 : id == 2 ? 8 : 4;
        return OF_OK;
    case 4:
        s->gcm = 1; s->sha512 = 0; s->nh = 32; s->nka = 0; s->nk = 16; s->nt = 16;
        return OF_OK;
    case 5:
        s->gcm = 1; s->sha512 = 1; s->nh = 64; s->nka = 0; s->nk = 32; s->nt = 16;
        return OF_OK;
    case 6: case 7: case 8:
        s->gcm = 0; s->sha512 = 1; s->nh = 64; s->nka = 32; s->nk = 96;
        s->nt = id == 6 ? 10 : id == 7 ? 8 : 4;
        return OF_OK;
    default:
        return OF_ERR_INTERNAL;
    }
}

/* HKDF-Expand (RFC 5869) with HMAC one-shots; info is at most 33 bytes here. */
static int of_hkdf_expand(const EVP_MD *md, int nh, const unsigned char *prk,
                          const unsigned char *info, size_t info_len,
                          unsigned char *out, size_t out_len)
{
    unsigned char buf[64 + 64 + 1];
    unsigned char t[64];
    unsigned int tl = 0;
    size_t done = 0;
    unsigned char i = 1;
    int ok = 1;
    while (done < out_len) {
        size_t n = 0;
        memcpy(buf, t, tl);
        n += tl;
        memcpy(buf + n, info, info_len);
        n += info_len;
        buf[n++] = i++;
        if (HMAC(md, prk, nh, buf, n, t, &tl) == NULL) { ok = 0; break; }
        size_t take = out_len - done < tl ? out_len - done : tl;
        memcpy(out + done, t, take);
        done += take;
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    OPENSSL_cleanse(t, sizeof(t));
    return ok ? OF_OK : OF_ERR_INTERNAL;
}

static int of_derive(const of_suite *s, uint64_t kid, const unsigned char *base, size_t base_len,
                     unsigned char *key, unsigned char *salt)
{
    const EVP_MD *md = s->sha512 ? EVP_sha512() : EVP_sha256();
    static const unsigned char zeros[64] = {0};
    unsigned char secret[64];
    unsigned int sl = 0;
    unsigned char label[64];
    static const char key_prefix[] = "SFrame 1.0 Secret key ";
    static const char salt_prefix[] = "SFrame 1.0 Secret salt ";
    int rc = OF_ERR_INTERNAL;

    if (HMAC(md, zeros, s->nh, base_len ? base : zeros, base_len, secret, &sl) == NULL) goto done;
    size_t n = sizeof(key_prefix) - 1;
    memcpy(label, key_prefix, n);
    of_put_be(label + n, kid, 8);
    of_put_be(label + n + 8, (uint64_t)s->suite, 2);
    if (of_hkdf_expand(md, s->nh, secret, label, n + 10, key, (size_t)s->nk) != OF_OK) goto done;
    n = sizeof(salt_prefix) - 1;
    memcpy(label, salt_prefix, n);
    of_put_be(label + n, kid, 8);
    of_put_be(label + n + 8, (uint64_t)s->suite, 2);
    if (of_hkdf_expand(md, s->nh, secret, label, n + 10, salt, OF_NONCE_LEN) != OF_OK) goto done;
    rc = OF_OK;
done:
    OPENSSL_cleanse(secret, sizeof(secret));
    return rc;
}

static void of_key_free(of_key *k)
{
    if (k->ctx) EVP_CIPHER_CTX_free(k->ctx);
    OPENSSL_cleanse(k, sizeof(*k));
}

/* Derive key and salt for (suite, kid, base_key) and key the contexts once.
 * `cipher` is the fetched AES-GCM or AES-CTR of the suite's key size. */
static int of_key_init(of_key *k, const of_suite *s, const EVP_CIPHER *cipher, uint64_t kid,
                       const unsigned char *base, size_t base_len, int encrypt)
{
    unsigned char key[96];
    int rc = OF_ERR_INTERNAL;
    memset(k, 0, sizeof(*k));
    k->gcm = s->gcm;
    k->nt = s->nt;
    k->sha512 = s->sha512;
    k->encrypt = encrypt;
    if (of_derive(s, kid, base, base_len, key, k->salt) != OF_OK) goto done;
    k->ctx = EVP_CIPHER_CTX_new();
    if (k->ctx == NULL) goto done;
    if (s->gcm) {
        if (EVP_CipherInit_ex(k->ctx, cipher, NULL, key, NULL, encrypt) != 1) goto done;
    } else {
        unsigned char pad[128];
        const unsigned char *auth = key + s->nka;
        int block = s->sha512 ? 128 : 64;
        if (EVP_CipherInit_ex(k->ctx, cipher, NULL, key, NULL, 1) != 1) goto done;
        memset(pad, 0x36, (size_t)block);
        for (int i = 0; i < s->nh; i++) pad[i] ^= auth[i];
        if (s->sha512) { SHA512_Init(&k->i512); SHA512_Update(&k->i512, pad, (size_t)block); }
        else { SHA256_Init(&k->i256); SHA256_Update(&k->i256, pad, (size_t)block); }
        memset(pad, 0x5c, (size_t)block);
        for (int i = 0; i < s->nh; i++) pad[i] ^= auth[i];
        if (s->sha512) { SHA512_Init(&k->o512); SHA512_Update(&k->o512, pad, (size_t)block); }
        else { SHA256_Init(&k->o256); SHA256_Update(&k->o256, pad, (size_t)block); }
        OPENSSL_cleanse(pad, sizeof(pad));
    }
    rc = OF_OK;
done:
    OPENSSL_cleanse(key, sizeof(key));
    if (rc != OF_OK) of_key_free(k);
    return rc;
}

/* ------------------------------------------------------------------ AEADs (§4.4.3, §4.5) */

static inline void of_nonce(const unsigned char *salt, uint64_t ctr, unsigned char *nonce)
{
    memcpy(nonce, salt, OF_NONCE_LEN);
    for (int i = 11; i >= 4; i--) {
        nonce[i] ^= (unsigned char)(ctr & 0xff);
        ctr >>= 8;
    }
}

/* HMAC over u64(len aad) || u64(len ct) || u64(Nt) || nonce || hdr || meta || ct, truncated. */
static inline void of_ctr_tag(of_key *k, const unsigned char *nonce,
                              const unsigned char *hdr, size_t hlen,
                              const unsigned char *meta, size_t mlen,
                              const unsigned char *ct, size_t ctlen, unsigned char *tag)
{
    unsigned char lens[24 + OF_NONCE_LEN];
    unsigned char inner[64], outer[64];
    of_put_be(lens, (uint64_t)(hlen + mlen), 8);
    of_put_be(lens + 8, (uint64_t)ctlen, 8);
    of_put_be(lens + 16, (uint64_t)k->nt, 8);
    memcpy(lens + 24, nonce, OF_NONCE_LEN);
    if (k->sha512) {
        SHA512_CTX c = k->i512;
        SHA512_Update(&c, lens, sizeof(lens));
        SHA512_Update(&c, hdr, hlen);
        if (mlen) SHA512_Update(&c, meta, mlen);
        if (ctlen) SHA512_Update(&c, ct, ctlen);
        SHA512_Final(inner, &c);
        c = k->o512;
        SHA512_Update(&c, inner, 64);
        SHA512_Final(outer, &c);
        OPENSSL_cleanse(&c, sizeof(c));
    } else {
        SHA256_CTX c = k->i256;
        SHA256_Update(&c, lens, sizeof(lens));
        SHA256_Update(&c, hdr, hlen);
        if (mlen) SHA256_Update(&c, meta, mlen);
        if (ctlen) SHA256_Update(&c, ct, ctlen);
        SHA256_Final(inner, &c);
        c = k->o256;
        SHA256_Update(&c, inner, 32);
        SHA256_Final(outer, &c);
        OPENSSL_cleanse(&c, sizeof(c));
    }
    memcpy(tag, outer, (size_t)k->nt);
}

static inline int of_ctr_xor(of_key *k, const unsigned char *nonce,
                             const unsigned char *in, size_t len, unsigned char *out)
{
    unsigned char iv[16];
    int outl = 0;
    memcpy(iv, nonce, OF_NONCE_LEN);
    memset(iv + OF_NONCE_LEN, 0, 4);
    if (EVP_EncryptInit_ex(k->ctx, NULL, NULL, NULL, iv) != 1) return OF_ERR_INTERNAL;
    if (len && EVP_EncryptUpdate(k->ctx, out, &outl, in, (int)len) != 1) return OF_ERR_INTERNAL;
    return OF_OK;
}

/* Encrypt one frame: writes header || ciphertext || tag to `out`, which must hold
 * of_hdr_len(kid, ctr) + ptlen + nt bytes; `out` may not overlap `pt`.
 * Returns the number of bytes written, or a negative OF_ERR_* code. */
static inline long of_seal(of_key *k, uint64_t kid, uint64_t ctr,
                           const unsigned char *meta, size_t mlen,
                           const unsigned char *pt, size_t ptlen, unsigned char *out)
{
    unsigned char nonce[OF_NONCE_LEN];
    int outl = 0, finl = 0;
    if (ptlen > OF_MAX_FRAME || mlen > OF_MAX_FRAME) return -OF_ERR_TOO_LARGE;
    size_t hlen = of_hdr_encode(kid, ctr, out);
    unsigned char *ct = out + hlen;
    of_nonce(k->salt, ctr, nonce);
    if (k->gcm) {
        EVP_CIPHER_CTX *c = k->ctx;
        if (EVP_EncryptInit_ex(c, NULL, NULL, NULL, nonce) != 1) return -OF_ERR_INTERNAL;
        if (EVP_EncryptUpdate(c, NULL, &outl, out, (int)hlen) != 1) return -OF_ERR_INTERNAL;
        if (mlen && EVP_EncryptUpdate(c, NULL, &outl, meta, (int)mlen) != 1) return -OF_ERR_INTERNAL;
        outl = 0;
        if (ptlen && EVP_EncryptUpdate(c, ct, &outl, pt, (int)ptlen) != 1) return -OF_ERR_INTERNAL;
        if (EVP_EncryptFinal_ex(c, ct + outl, &finl) != 1) return -OF_ERR_INTERNAL;
        if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, ct + ptlen) != 1) return -OF_ERR_INTERNAL;
    } else {
        if (of_ctr_xor(k, nonce, pt, ptlen, ct) != OF_OK) return -OF_ERR_INTERNAL;
        of_ctr_tag(k, nonce, out, hlen, meta, mlen, ct, ptlen, ct + ptlen);
    }
    return (long)(hlen + ptlen + (size_t)k->nt);
}

/* Decrypt the body of one frame whose header (`hdr`, `hlen`) is already parsed.
 * `body` is ciphertext || tag (bodylen >= nt); writes bodylen - nt plaintext bytes.
 * On failure no plaintext is left in `out`.  Returns OF_OK or an OF_ERR_* code. */
static inline int of_open(of_key *k, uint64_t ctr, const unsigned char *hdr, size_t hlen,
                          const unsigned char *meta, size_t mlen,
                          const unsigned char *body, size_t bodylen, unsigned char *out)
{
    unsigned char nonce[OF_NONCE_LEN];
    int outl = 0, finl = 0;
    if (bodylen < (size_t)k->nt) return OF_ERR_SHORT;
    if (bodylen > OF_MAX_FRAME || mlen > OF_MAX_FRAME) return OF_ERR_TOO_LARGE;
    size_t ctlen = bodylen - (size_t)k->nt;
    const unsigned char *tag = body + ctlen;
    of_nonce(k->salt, ctr, nonce);
    if (k->gcm) {
        EVP_CIPHER_CTX *c = k->ctx;
        if (EVP_DecryptInit_ex(c, NULL, NULL, NULL, nonce) != 1) return OF_ERR_INTERNAL;
        if (EVP_DecryptUpdate(c, NULL, &outl, hdr, (int)hlen) != 1) return OF_ERR_INTERNAL;
        if (mlen && EVP_DecryptUpdate(c, NULL, &outl, meta, (int)mlen) != 1) return OF_ERR_INTERNAL;
        outl = 0;
        if (ctlen && EVP_DecryptUpdate(c, out, &outl, body, (int)ctlen) != 1) return OF_ERR_INTERNAL;
        if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, 16, (void *)tag) != 1) return OF_ERR_INTERNAL;
        if (EVP_DecryptFinal_ex(c, out + outl, &finl) != 1) {
            /* OpenSSL's GCM decrypts before it verifies: wipe what it wrote. */
            if (ctlen) OPENSSL_cleanse(out, ctlen);
            return OF_ERR_AUTH;
        }
    } else {
        unsigned char want[64];
        of_ctr_tag(k, nonce, hdr, hlen, meta, mlen, body, ctlen, want);
        int bad = CRYPTO_memcmp(want, tag, (size_t)k->nt);
        OPENSSL_cleanse(want, sizeof(want));
        if (bad) return OF_ERR_AUTH;  /* verified before any plaintext is produced */
        if (of_ctr_xor(k, nonce, body, ctlen, out) != OF_OK) return OF_ERR_INTERNAL;
    }
    return OF_OK;
}

/* ------------------------------------------------------------------ replay window (§9.3) */

/* SRTP-style (RFC 3711 §3.3.2) sliding window over the counter, one per receive KID:
 * `size` counters below and including the highest accepted one are tracked in a
 * bit ring of `nwords` 64-bit words (nwords * 64 >= size). */
typedef struct {
    uint64_t top;
    int any;
    uint32_t size;
    uint32_t nwords;
    uint64_t *bits;
} of_window;

static inline int of_window_check(const of_window *w, uint64_t ctr)
{
    if (w->size == 0 || !w->any || ctr > w->top) return OF_OK;
    uint64_t diff = w->top - ctr;
    if (diff >= w->size) return OF_ERR_TOO_OLD;
    uint64_t slot = ctr % ((uint64_t)w->nwords * 64);
    if (w->bits[slot >> 6] & ((uint64_t)1 << (slot & 63))) return OF_ERR_REPLAY;
    return OF_OK;
}

static inline void of_window_update(of_window *w, uint64_t ctr)
{
    if (w->size == 0) return;
    uint64_t nbits = (uint64_t)w->nwords * 64;
    if (!w->any) {
        memset(w->bits, 0, (size_t)w->nwords * 8);
        w->top = ctr;
        w->any = 1;
    } else if (ctr > w->top) {
        if (ctr - w->top >= nbits) {
            memset(w->bits, 0, (size_t)w->nwords * 8);   /* jumped past the whole ring */
        } else {
            for (uint64_t c = w->top + 1; c != ctr; c++) {   /* forget the slots slid over */
                uint64_t s = c % nbits;
                w->bits[s >> 6] &= ~((uint64_t)1 << (s & 63));
            }
        }
        w->top = ctr;
    }
    uint64_t slot = ctr % nbits;
    w->bits[slot >> 6] |= (uint64_t)1 << (slot & 63);
}

/* ------------------------------------------------------------------ locks */

/* A plain mutex per key: uncontended lock+unlock costs a few ns, where CPython's
 * PyThread locks read the monotonic clock on every acquire. */
#if defined(_WIN32)
#include <windows.h>
typedef SRWLOCK of_mutex;
static inline int of_mutex_init(of_mutex *m) { InitializeSRWLock(m); return 0; }
static inline void of_mutex_destroy(of_mutex *m) { (void)m; }
static inline int of_mutex_trylock(of_mutex *m) { return TryAcquireSRWLockExclusive(m) ? 1 : 0; }
static inline void of_mutex_lock(of_mutex *m) { AcquireSRWLockExclusive(m); }
static inline void of_mutex_unlock(of_mutex *m) { ReleaseSRWLockExclusive(m); }
#else
#include <pthread.h>
typedef pthread_mutex_t of_mutex;
static inline int of_mutex_init(of_mutex *m) { return pthread_mutex_init(m, NULL); }
static inline void of_mutex_destroy(of_mutex *m) { pthread_mutex_destroy(m); }
static inline int of_mutex_trylock(of_mutex *m) { return pthread_mutex_trylock(m) == 0; }
static inline void of_mutex_lock(of_mutex *m) { pthread_mutex_lock(m); }
static inline void of_mutex_unlock(of_mutex *m) { pthread_mutex_unlock(m); }
#endif

/* ------------------------------------------------------------------ misc */

#ifdef ORANGE_FAST_STATIC_OPENSSL
#define OF_OPENSSL_STATIC 1
#else
#define OF_OPENSSL_STATIC 0
#endif

#endif /* ORANGE_FAST_SFRAME_C_H */
