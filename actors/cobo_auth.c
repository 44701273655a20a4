/* cobo_auth.c — see cobo_auth.h. Ed25519 from libsodium: in tests/bench/bench_ed25519.c its verify
 * runs about twice as fast as OpenSSL's EVP_DigestVerify (which also allocates a context and a key
 * object per call). SHA-256 from OpenSSL's low-level interface: several times faster than
 * libsodium's portable one (SHA extensions), and its context lives on the stack. That interface is
 * deprecated in OpenSSL 3 but present throughout 3.x; the EVP one would allocate per call. So
 * verification never allocates. */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "actors/cobo_auth.h"

#include <openssl/sha.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct cobo_signer_t {
    uint8_t sk[crypto_sign_SECRETKEYBYTES];  /* seed || public key, libsodium's layout */
    char pub_hex[COBO_KEY_HEX_LEN + 1];
};

static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static int s_sodium_ok;

static void s_init(void)
{
    s_sodium_ok = sodium_init() >= 0;
}

static int s_ready(void)
{
    pthread_once(&s_once, s_init);
    return s_sodium_ok ? 0 : -1;
}

/* 0..15 for a hex digit, -1 otherwise. */
static int s_nibble(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int cobo_hex_decode(const char *hex, uint8_t *out, size_t outlen)
{
    if (!hex || !out)
        return -1;
    /* exact length: the NUL must sit at 2*outlen, and no earlier */
    for (size_t i = 0; i < 2 * outlen; i++)
        if (hex[i] == '\0')
            goto bad;
    if (hex[2 * outlen] != '\0')
        goto bad;
    int badbits = 0;
    for (size_t i = 0; i < outlen; i++) {
        int hi = s_nibble((unsigned char) hex[2 * i]);
        int lo = s_nibble((unsigned char) hex[2 * i + 1]);
        badbits |= (hi | lo) & 0x100;  /* -1 has every bit set */
        out[i] = (uint8_t) (((hi & 0x0f) << 4) | (lo & 0x0f));
    }
    if (badbits)
        goto bad;
    return 0;
bad:
    sodium_memzero(out, outlen);
    return -1;
}

void cobo_hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

int cobo_pubkey_parse(const char *hex, cobo_pubkey_t *out)
{
    if (s_ready() != 0 || cobo_hex_decode(hex, out->bytes, sizeof out->bytes) != 0)
        return -1;
    if (!crypto_core_ed25519_is_valid_point(out->bytes)) {
        sodium_memzero(out->bytes, sizeof out->bytes);
        return -1;
    }
    return 0;
}

int cobo_pubkey_from_seed(const char *seed_hex, char pub_hex[COBO_KEY_HEX_LEN + 1])
{
    cobo_signer_t *s = cobo_signer_new(seed_hex);
    if (!s)
        return -1;
    memcpy(pub_hex, s->pub_hex, COBO_KEY_HEX_LEN + 1);
    cobo_signer_destroy(&s);
    return 0;
}

cobo_signer_t *cobo_signer_new(const char *seed_hex)
{
    if (s_ready() != 0)
        return NULL;
    uint8_t seed[crypto_sign_SEEDBYTES];
    if (cobo_hex_decode(seed_hex, seed, sizeof seed) != 0)
        return NULL;
    cobo_signer_t *self = calloc(1, sizeof *self);
    if (!self) {
        sodium_memzero(seed, sizeof seed);
        return NULL;
    }
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    crypto_sign_seed_keypair(pk, self->sk, seed);
    sodium_memzero(seed, sizeof seed);
    cobo_hex_encode(pk, sizeof pk, self->pub_hex);
    return self;
}

void cobo_signer_destroy(cobo_signer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sodium_memzero(*self_p, sizeof **self_p);
    free(*self_p);
    *self_p = NULL;
}

const char *cobo_signer_pubkey_hex(const cobo_signer_t *self)
{
    return self->pub_hex;
}

/* One piece of a message; the pieces are joined with '|'. */
typedef struct {
    const void *data;
    size_t len;
} s_part_t;

/* digest = SHA256(SHA256(part0 | part1 | ... )) */
static void s_digest(const s_part_t *parts, size_t n, uint8_t digest[32])
{
    SHA256_CTX st;
    uint8_t inner[SHA256_DIGEST_LENGTH];
    SHA256_Init(&st);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            SHA256_Update(&st, "|", 1);
        if (parts[i].len)
            SHA256_Update(&st, parts[i].data, parts[i].len);
    }
    SHA256_Final(inner, &st);
    /* the outer hash on a context too: the one-shot SHA256() looks the algorithm up in OpenSSL's
     * provider table at every call (a few per cent of a webhook's CPU) */
    SHA256_Init(&st);
    SHA256_Update(&st, inner, sizeof inner);
    SHA256_Final(digest, &st);
}

static s_part_t s_str(const char *s)
{
    s_part_t p = { s ? s : "", s ? strlen(s) : 0 };
    return p;
}

static int s_sign_parts(const cobo_signer_t *self, const s_part_t *parts, size_t n,
                        char sig_hex[COBO_SIG_HEX_LEN + 1])
{
    uint8_t digest[32], sig[crypto_sign_BYTES];
    s_digest(parts, n, digest);
    crypto_sign_detached(sig, NULL, digest, sizeof digest, self->sk);
    cobo_hex_encode(sig, sizeof sig, sig_hex);
    return 0;
}

static int s_verify_parts(const cobo_pubkey_t *key, const s_part_t *parts, size_t n,
                          const char *sig_hex)
{
    uint8_t digest[32], sig[crypto_sign_BYTES];
    if (!key || cobo_hex_decode(sig_hex, sig, sizeof sig) != 0)
        return -1;
    s_digest(parts, n, digest);
    return crypto_sign_verify_detached(sig, digest, sizeof digest, key->bytes) == 0 ? 0 : -1;
}

int cobo_sign(const cobo_signer_t *self, const void *message, size_t len,
              char sig_hex[COBO_SIG_HEX_LEN + 1])
{
    s_part_t p = { message, len };
    return s_sign_parts(self, &p, 1, sig_hex);
}

int cobo_sign_request(const cobo_signer_t *self, const char *method, const char *path,
                      const char *nonce, const char *params, const char *body, size_t body_len,
                      char sig_hex[COBO_SIG_HEX_LEN + 1])
{
    s_part_t p[5] = { s_str(method), s_str(path), s_str(nonce), s_str(params),
                      { body ? body : "", body ? body_len : 0 } };
    return s_sign_parts(self, p, 5, sig_hex);
}

int cobo_sign_response(const cobo_signer_t *self, const char *body, size_t body_len,
                       const char *timestamp, char sig_hex[COBO_SIG_HEX_LEN + 1])
{
    s_part_t p[2] = { { body ? body : "", body ? body_len : 0 }, s_str(timestamp) };
    return s_sign_parts(self, p, 2, sig_hex);
}

int cobo_verify(const cobo_pubkey_t *key, const void *message, size_t len, const char *sig_hex)
{
    if (s_ready() != 0 || (!message && len))
        return -1;
    s_part_t p = { message, len };
    return s_verify_parts(key, &p, 1, sig_hex);
}

int cobo_verify_response(const cobo_pubkey_t *key, const char *body, size_t body_len,
                         const char *timestamp, const char *sig_hex)
{
    if (s_ready() != 0 || !timestamp || (!body && body_len))
        return -1;
    s_part_t p[2] = { { body ? body : "", body ? body_len : 0 }, s_str(timestamp) };
    return s_verify_parts(key, p, 2, sig_hex);
}

int cobo_verify_response_hex(const char *pubkey_hex, const char *body, size_t body_len,
                             const char *timestamp, const char *sig_hex)
{
    cobo_pubkey_t key;
    if (cobo_pubkey_parse(pubkey_hex, &key) != 0)
        return -1;
    return cobo_verify_response(&key, body, body_len, timestamp, sig_hex);
}

int cobo_verify_request(const cobo_pubkey_t *key, const char *method, const char *path,
                        const char *nonce, const char *params, const char *body, size_t body_len,
                        const char *sig_hex)
{
    if (s_ready() != 0 || !method || !path || !nonce || (!body && body_len))
        return -1;
    s_part_t p[5] = { s_str(method), s_str(path), s_str(nonce), s_str(params),
                      { body ? body : "", body ? body_len : 0 } };
    return s_verify_parts(key, p, 5, sig_hex);
}

int cobo_ct_compare(const void *a, const void *b, size_t n)
{
    if (s_ready() != 0)
        return -1;
    return sodium_memcmp(a, b, n) == 0 ? 0 : -1;
}
