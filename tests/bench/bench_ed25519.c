/* bench_ed25519.c — Ed25519 as kasa uses it for Cobo (verify SHA256(SHA256(body|timestamp))):
 * libsodium's crypto_sign_verify_detached against OpenSSL's EVP_DigestVerify, single thread, plus
 * signing with each, the two SHA-256s over a webhook-sized body, and kasa's own cobo_verify_response
 * (the whole hot path: double hash + verify). Prints operations per second. */
#include <openssl/evp.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/cobo_auth.h"

#define BODY_LEN 2048

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Runs fn until at least min_s seconds have passed; returns operations per second. */
static double s_rate(int (*fn)(void), double min_s)
{
    long n = 0;
    double t0 = s_now(), t;
    do {
        for (int i = 0; i < 256; i++)
            if (fn() != 0) {
                fprintf(stderr, "operation failed\n");
                exit(1);
            }
        n += 256;
        t = s_now();
    } while (t - t0 < min_s);
    return (double) n / (t - t0);
}

static uint8_t s_seed[32], s_pk[32], s_sk[64], s_digest[32], s_sig[64];
static char s_body[BODY_LEN + 1];
static char s_sig_hex[COBO_SIG_HEX_LEN + 1];
static cobo_pubkey_t s_key;
static EVP_PKEY *s_evp_priv, *s_evp_pub;

static int s_sodium_verify(void)
{
    return crypto_sign_verify_detached(s_sig, s_digest, 32, s_pk);
}

static int s_sodium_sign(void)
{
    uint8_t sig[64];
    crypto_sign_detached(sig, NULL, s_digest, 32, s_sk);
    return 0;
}

static int s_openssl_verify(void)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, s_evp_pub) == 1
             && EVP_DigestVerify(ctx, s_sig, 64, s_digest, 32) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

/* The same, also building the key object from raw bytes each time (as a stateless verify must). */
static int s_openssl_verify_rawkey(void)
{
    EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, s_pk, 32);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = pk && ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) == 1
             && EVP_DigestVerify(ctx, s_sig, 64, s_digest, 32) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pk);
    return ok ? 0 : -1;
}

static int s_openssl_sign(void)
{
    uint8_t sig[64];
    size_t len = sizeof sig;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, s_evp_priv) == 1
             && EVP_DigestSign(ctx, sig, &len, s_digest, 32) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

static int s_sodium_sha256(void)
{
    uint8_t h[32];
    crypto_hash_sha256(h, (const uint8_t *) s_body, BODY_LEN);
    return 0;
}

static int s_openssl_sha256(void)
{
    uint8_t h[32];
    unsigned int n = 0;
    return EVP_Digest(s_body, BODY_LEN, h, &n, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

/* The same hot path with libsodium's SHA-256 instead of OpenSSL's (the alternative not taken). */
static int s_sodium_sha_verify(void)
{
    crypto_hash_sha256_state c;
    uint8_t h1[32], h2[32], sig[64];
    if (cobo_hex_decode(s_sig_hex, sig, sizeof sig) != 0)
        return -1;
    crypto_hash_sha256_init(&c);
    crypto_hash_sha256_update(&c, (const uint8_t *) s_body, BODY_LEN);
    crypto_hash_sha256_update(&c, (const uint8_t *) "|", 1);
    crypto_hash_sha256_update(&c, (const uint8_t *) "1764142800000", 13);
    crypto_hash_sha256_final(&c, h1);
    crypto_hash_sha256(h2, h1, 32);
    return crypto_sign_verify_detached(sig, h2, 32, s_key.bytes);
}

static int s_kasa_verify(void)
{
    return cobo_verify_response(&s_key, s_body, BODY_LEN, "1764142800000", s_sig_hex);
}

static double s_thread_min_s;
static double s_thread_rate[2];

static void *s_verify_thread(void *arg)
{
    int i = *(int *) arg;
    s_thread_rate[i] = s_rate(s_kasa_verify, s_thread_min_s);
    return NULL;
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    double min_s = getenv("KASA_BENCH_QUICK") ? 0.2 : 1.0;
    for (int i = 0; i < 32; i++)
        s_seed[i] = (uint8_t) (i * 7 + 1);
    for (int i = 0; i < BODY_LEN; i++)
        s_body[i] = (char) ('a' + i % 26);
    crypto_sign_seed_keypair(s_pk, s_sk, s_seed);
    crypto_hash_sha256(s_digest, (const uint8_t *) s_body, BODY_LEN);
    crypto_sign_detached(s_sig, NULL, s_digest, 32, s_sk);
    s_evp_priv = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, s_seed, 32);
    s_evp_pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, s_pk, 32);
    if (!s_evp_priv || !s_evp_pub)
        return 1;

    /* the two libraries must agree before their speed means anything */
    uint8_t osig[64];
    size_t olen = sizeof osig;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, s_evp_priv) != 1
        || EVP_DigestSign(ctx, osig, &olen, s_digest, 32) != 1 || memcmp(osig, s_sig, 64) != 0) {
        fprintf(stderr, "libsodium and OpenSSL signatures differ\n");
        return 1;
    }
    EVP_MD_CTX_free(ctx);

    char seed_hex[65];
    cobo_hex_encode(s_seed, 32, seed_hex);
    cobo_signer_t *signer = cobo_signer_new(seed_hex);
    if (!signer || cobo_pubkey_parse(cobo_signer_pubkey_hex(signer), &s_key) != 0)
        return 1;
    cobo_sign_response(signer, s_body, BODY_LEN, "1764142800000", s_sig_hex);
    cobo_signer_destroy(&signer);

    printf("%-44s %14s\n", "operation (single thread)", "per second");
    printf("%-44s %14.0f\n", "libsodium crypto_sign_verify_detached", s_rate(s_sodium_verify, min_s));
    printf("%-44s %14.0f\n", "OpenSSL EVP_DigestVerify (key reused)", s_rate(s_openssl_verify, min_s));
    printf("%-44s %14.0f\n", "OpenSSL EVP_DigestVerify (key from raw)", s_rate(s_openssl_verify_rawkey, min_s));
    printf("%-44s %14.0f\n", "libsodium crypto_sign_detached", s_rate(s_sodium_sign, min_s));
    printf("%-44s %14.0f\n", "OpenSSL EVP_DigestSign", s_rate(s_openssl_sign, min_s));
    printf("%-44s %14.0f\n", "libsodium SHA-256, 2 KiB", s_rate(s_sodium_sha256, min_s));
    printf("%-44s %14.0f\n", "OpenSSL SHA-256, 2 KiB", s_rate(s_openssl_sha256, min_s));
    printf("%-44s %14.0f\n", "kasa cobo_verify_response, 2 KiB body", s_rate(s_kasa_verify, min_s));
    printf("%-44s %14.0f\n", "same with libsodium SHA-256 (not used)", s_rate(s_sodium_sha_verify, min_s));
    /* two threads: the ingest target is 10,000 verified webhooks/s on two cores */
    pthread_t t[2];
    int ids[2] = { 0, 1 };
    s_thread_min_s = min_s;
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, s_verify_thread, &ids[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    printf("%-44s %14.0f\n", "kasa cobo_verify_response, 2 threads", s_thread_rate[0] + s_thread_rate[1]);
    EVP_PKEY_free(s_evp_priv);
    EVP_PKEY_free(s_evp_pub);
    return 0;
}
