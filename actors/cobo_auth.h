/* cobo_auth.h — Cobo WaaS 2.0 Ed25519 signatures ("Cobo Auth").
 *
 * Every message Cobo signs or checks is hashed as digest = SHA256(SHA256(message)) (the inner hash
 * as raw bytes) and the 32-byte digest is signed with Ed25519; signatures travel as 128 hex chars.
 *   our requests:        message = METHOD|PATH|NONCE|PARAMS|BODY   (signed with our API secret)
 *   webhooks, callbacks,
 *   API responses:       message = RAW_BODY|TIMESTAMP              (signed with Cobo's key)
 * Hex input is parsed strictly: exact length, hex digits only, either case.
 * Verification allocates nothing and keeps no state: safe from any number of threads. A signer
 * is read-only after cobo_signer_new(), so signing with one signer is thread-safe too. */
#ifndef KASA_ACTORS_COBO_AUTH_H
#define KASA_ACTORS_COBO_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define COBO_KEY_HEX_LEN 64   /* a public key or a seed, hex */
#define COBO_SIG_HEX_LEN 128  /* a signature, hex */

/* A parsed Ed25519 public key (Cobo's webhook key, or a client's API key in the simulator). */
typedef struct {
    uint8_t bytes[32];
} cobo_pubkey_t;

/* A signing key (our API secret). Opaque; its memory is wiped on destroy. */
typedef struct cobo_signer_t cobo_signer_t;

/* Decodes exactly 2*outlen hex chars (any case) into out. Returns 0, or -1 if hex is NULL, of
 * another length, or holds a non-hex char (out is then zeroed). */
int cobo_hex_decode(const char *hex, uint8_t *out, size_t outlen);
/* Writes 2*n lower-case hex chars and a NUL into out (2*n+1 bytes). */
void cobo_hex_encode(const uint8_t *in, size_t n, char *out);

/* Parses a 64-hex public key. Returns 0, or -1 (bad hex, or not a valid curve point encoding). */
int cobo_pubkey_parse(const char *hex, cobo_pubkey_t *out);

/* Derives the public key (64 lower-case hex + NUL) from a 64-hex seed. Returns 0, or -1 on bad hex. */
int cobo_pubkey_from_seed(const char *seed_hex, char pub_hex[COBO_KEY_HEX_LEN + 1]);

/* A signer from a 64-hex seed (the API secret). NULL on bad hex. The caller should wipe seed_hex. */
cobo_signer_t *cobo_signer_new(const char *seed_hex);
/* Wipes and frees; nulls *self_p; safe on NULL and twice. */
void cobo_signer_destroy(cobo_signer_t **self_p);
/* The signer's public key (64 lower-case hex), valid while the signer lives: this is the API key. */
const char *cobo_signer_pubkey_hex(const cobo_signer_t *self);

/* Signs message (len bytes) the Cobo way: Ed25519 over SHA256(SHA256(message)).
 * Writes 128 lower-case hex + NUL into sig_hex. Never fails for a valid signer; returns 0. */
int cobo_sign(const cobo_signer_t *self, const void *message, size_t len,
              char sig_hex[COBO_SIG_HEX_LEN + 1]);

/* Signs an API request: METHOD|PATH|NONCE|PARAMS|BODY. NULL params/body count as empty; body is
 * body_len raw bytes. path is the full path including /v2; params the query string without '?'. */
int cobo_sign_request(const cobo_signer_t *self, const char *method, const char *path,
                      const char *nonce, const char *params, const char *body, size_t body_len,
                      char sig_hex[COBO_SIG_HEX_LEN + 1]);

/* Signs a response or webhook: RAW_BODY|TIMESTAMP (what the simulator sends as Biz-Resp-Signature). */
int cobo_sign_response(const cobo_signer_t *self, const char *body, size_t body_len,
                       const char *timestamp, char sig_hex[COBO_SIG_HEX_LEN + 1]);

/* Verifies sig_hex over message (len bytes) with key. Returns 0 if it is a valid signature, -1
 * otherwise (wrong signature, malformed hex, NULL). Allocates nothing. */
int cobo_verify(const cobo_pubkey_t *key, const void *message, size_t len, const char *sig_hex);

/* Verifies a webhook, callback or API response: sig_hex over RAW_BODY|TIMESTAMP, the body exactly
 * as received. Returns 0 or -1. Allocates nothing: the ingest hot path. */
int cobo_verify_response(const cobo_pubkey_t *key, const char *body, size_t body_len,
                         const char *timestamp, const char *sig_hex);

/* The same with the key as 64 hex (parsed on each call). Returns 0 or -1 (bad key counts as -1). */
int cobo_verify_response_hex(const char *pubkey_hex, const char *body, size_t body_len,
                             const char *timestamp, const char *sig_hex);

/* Verifies a request signature (METHOD|PATH|NONCE|PARAMS|BODY) — what Cobo (or the simulator)
 * checks. Returns 0 or -1. */
int cobo_verify_request(const cobo_pubkey_t *key, const char *method, const char *path,
                        const char *nonce, const char *params, const char *body, size_t body_len,
                        const char *sig_hex);

/* Compares two byte strings of length n in constant time. 0 if equal, -1 otherwise. */
int cobo_ct_compare(const void *a, const void *b, size_t n);

#endif
