/* chainaddr.c — see chainaddr.h. Keccak-f[1600] is written out here because the OpenSSL of the
 * target systems offers SHA3-256 but not Ethereum's Keccak-256 (same permutation, other padding). */
#include "schema/chainaddr.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define S_TRON_RAW 25         /* version + 20-byte account + 4-byte checksum */
#define S_TRON_VERSION 0x41
#define S_RATE 136            /* Keccak-256 / SHA3-256 rate in bytes (capacity 512 bits) */

/* ---- Keccak-f[1600] ---------------------------------------------------------------------------- */

static const uint64_t s_rc[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808AULL, 0x8000000080008000ULL,
    0x000000000000808BULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008AULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000AULL,
    0x000000008000808BULL, 0x800000000000008BULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800AULL, 0x800000008000000AULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};
/* rho offsets, in the order the pi step visits the lanes (starting from lane 1) */
static const int s_rotc[24] = { 1, 3, 6, 10, 15, 21, 28, 36, 45, 55, 2, 14, 27, 41, 56, 8, 25, 43, 62, 18, 39, 61, 20, 44 };
static const int s_piln[24] = { 10, 7, 11, 17, 18, 3, 5, 16, 8, 21, 24, 4, 15, 23, 19, 13, 12, 2, 20, 14, 22, 9, 6, 1 };

static uint64_t s_rotl(uint64_t x, int n)
{
    return (x << n) | (x >> (64 - n));
}

static void s_keccak_f(uint64_t st[25])
{
    uint64_t bc[5], t;
    for (int round = 0; round < 24; round++) {
        for (int i = 0; i < 5; i++)  /* theta */
            bc[i] = st[i] ^ st[i + 5] ^ st[i + 10] ^ st[i + 15] ^ st[i + 20];
        for (int i = 0; i < 5; i++) {
            t = bc[(i + 4) % 5] ^ s_rotl(bc[(i + 1) % 5], 1);
            for (int j = 0; j < 25; j += 5)
                st[j + i] ^= t;
        }
        t = st[1];  /* rho and pi */
        for (int i = 0; i < 24; i++) {
            int j = s_piln[i];
            bc[0] = st[j];
            st[j] = s_rotl(t, s_rotc[i]);
            t = bc[0];
        }
        for (int j = 0; j < 25; j += 5) {  /* chi */
            for (int i = 0; i < 5; i++)
                bc[i] = st[j + i];
            for (int i = 0; i < 5; i++)
                st[j + i] ^= ~bc[(i + 1) % 5] & bc[(i + 2) % 5];
        }
        st[0] ^= s_rc[round];  /* iota */
    }
}

/* XORs one rate-sized block (little-endian lanes) into the state. */
static void s_absorb(uint64_t st[25], const uint8_t *block)
{
    for (int i = 0; i < S_RATE / 8; i++) {
        uint64_t lane = 0;
        for (int k = 7; k >= 0; k--)
            lane = (lane << 8) | block[8 * i + k];
        st[i] ^= lane;
    }
}

void chainaddr_sponge256(const void *data, size_t len, uint8_t pad, uint8_t out[32])
{
    uint64_t st[25] = { 0 };
    const uint8_t *p = data;
    for (; len >= S_RATE; p += S_RATE, len -= S_RATE) {
        s_absorb(st, p);
        s_keccak_f(st);
    }
    uint8_t last[S_RATE] = { 0 };
    if (len)
        memcpy(last, p, len);
    last[len] ^= pad;
    last[S_RATE - 1] ^= 0x80;
    s_absorb(st, last);
    s_keccak_f(st);
    for (int i = 0; i < 32; i++)
        out[i] = (uint8_t) (st[i / 8] >> (8 * (i % 8)));
}

void chainaddr_keccak256(const void *data, size_t len, uint8_t out[32])
{
    chainaddr_sponge256(data, len, 0x01, out);
}

/* ---- tokens ----------------------------------------------------------------------------------- */

chainaddr_kind_t chainaddr_kind_of_token(const char *token_id)
{
    static const struct {
        const char *token;
        chainaddr_kind_t kind;
    } known[] = {
        { "TRON_USDT", CHAINADDR_TRON }, { "TRON", CHAINADDR_TRON }, { "TTRON", CHAINADDR_TRON },
        { "TTRON_USDT", CHAINADDR_TRON }, { "ETH_USDT", CHAINADDR_EVM }, { "ETH", CHAINADDR_EVM },
        { "BSC_USDT", CHAINADDR_EVM }, { "BSC_BNB", CHAINADDR_EVM }, { "SETH", CHAINADDR_EVM },
        { "SETH_USDT", CHAINADDR_EVM },
    };
    if (!token_id)
        return CHAINADDR_NONE;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(known[i].token, token_id) == 0)
            return known[i].kind;
    return CHAINADDR_NONE;
}

const char *chainaddr_kind_name(chainaddr_kind_t kind)
{
    switch (kind) {
    case CHAINADDR_TRON: return "TRON";
    case CHAINADDR_EVM: return "EVM";
    case CHAINADDR_NONE: break;
    }
    return "none";
}

/* ---- TRON ------------------------------------------------------------------------------------- */

/* Decodes base58 (Bitcoin alphabet) into out[cap], right-aligned; *n = the decoded length
 * (leading '1's are leading zero bytes). Returns 0, -1 on a character outside the alphabet, -2
 * when the value does not fit cap bytes. */
static int s_base58_decode(const char *s, uint8_t *out, size_t cap, size_t *n)
{
    static const char alpha[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    memset(out, 0, cap);
    size_t zeros = 0, used = 0;  /* used: significant bytes at the end of out */
    while (s[zeros] == '1')
        zeros++;
    for (const char *p = s; *p; p++) {
        const char *hit = strchr(alpha, *p);
        if (!hit)
            return -1;
        unsigned carry = (unsigned) (hit - alpha);
        for (size_t k = 0; k < used || carry; k++) {
            if (k >= cap)
                return -2;
            carry += 58u * out[cap - 1 - k];
            out[cap - 1 - k] = (uint8_t) (carry & 0xff);
            carry >>= 8;
            if (k + 1 > used)
                used = k + 1;
        }
    }
    if (zeros + used > cap)
        return -2;
    *n = zeros + used;
    return 0;
}

static int s_check_tron(const char *a, char *err, size_t errlen)
{
    size_t len = strlen(a);
    if (len != 34) {  /* version 0x41 + 24 bytes always prints as 34 base58 characters */
        snprintf(err, errlen, "TRON address: wrong length (expected 34 base58 characters starting with T)");
        return -1;
    }
    uint8_t raw[40], h1[32], h2[32];
    size_t n = 0;
    int rc = s_base58_decode(a, raw, sizeof raw, &n);
    if (rc == -1) {
        snprintf(err, errlen, "TRON address: a character outside base58 (0, O, I and l are not used)");
        return -1;
    }
    if (rc != 0 || n != S_TRON_RAW) {
        snprintf(err, errlen, "TRON address: wrong length (not 25 bytes once decoded)");
        return -1;
    }
    const uint8_t *v = raw + sizeof raw - S_TRON_RAW;
    if (v[0] != S_TRON_VERSION) {
        snprintf(err, errlen, "TRON address: wrong version byte (not a TRON mainnet address)");
        return -1;
    }
    crypto_hash_sha256(h1, v, S_TRON_RAW - 4);
    crypto_hash_sha256(h2, h1, sizeof h1);
    if (sodium_memcmp(h2, v + S_TRON_RAW - 4, 4) != 0) {
        snprintf(err, errlen, "TRON address: checksum does not match (a mistyped character?)");
        return -1;
    }
    return 0;
}

/* ---- EVM -------------------------------------------------------------------------------------- */

static int s_check_evm(const char *a, char *err, size_t errlen)
{
    if (strncmp(a, "0x", 2) != 0) {
        snprintf(err, errlen, "EVM address: must start with 0x");
        return -1;
    }
    const char *h = a + 2;
    size_t len = strlen(h);
    if (len != 40) {
        snprintf(err, errlen, "EVM address: expected 0x and 40 hex digits");
        return -1;
    }
    int lower = 0, upper = 0;
    char low[41];
    for (size_t i = 0; i < 40; i++) {
        char c = h[i];
        if (c >= 'a' && c <= 'f')
            lower = 1;
        else if (c >= 'A' && c <= 'F')
            upper = 1;
        else if (!(c >= '0' && c <= '9')) {
            snprintf(err, errlen, "EVM address: a character that is not a hex digit");
            return -1;
        }
        low[i] = (c >= 'A' && c <= 'F') ? (char) (c - 'A' + 'a') : c;
    }
    low[40] = '\0';
    if (!(lower && upper))
        return 0;  /* one case only: no checksum to verify */
    uint8_t hash[32];
    chainaddr_keccak256(low, 40, hash);
    for (size_t i = 0; i < 40; i++) {
        if (!(low[i] >= 'a' && low[i] <= 'f'))
            continue;
        int nibble = (i % 2 == 0) ? hash[i / 2] >> 4 : hash[i / 2] & 0x0f;
        int want_upper = nibble >= 8;
        int is_upper = h[i] >= 'A' && h[i] <= 'F';
        if (want_upper != is_upper) {
            snprintf(err, errlen, "EVM address: mixed-case checksum (EIP-55) does not match");
            return -1;
        }
    }
    return 0;
}

int chainaddr_check(chainaddr_kind_t kind, const char *address, char *err, size_t errlen)
{
    if (!address || !*address) {
        snprintf(err, errlen, "address is empty");
        return -1;
    }
    switch (kind) {
    case CHAINADDR_TRON: return s_check_tron(address, err, errlen);
    case CHAINADDR_EVM: return s_check_evm(address, err, errlen);
    case CHAINADDR_NONE: break;
    }
    snprintf(err, errlen, "no address check for this chain");
    return -1;
}

int chainaddr_check_for_token(const char *token_id, const char *address, char *err, size_t errlen)
{
    chainaddr_kind_t kind = chainaddr_kind_of_token(token_id);
    if (kind == CHAINADDR_NONE) {
        snprintf(err, errlen, "token %.40s: no address check", token_id ? token_id : "(none)");
        return -1;
    }
    return chainaddr_check(kind, address, err, errlen);
}

int chainaddr_same(chainaddr_kind_t kind, const char *a, const char *b)
{
    if (!a || !b)
        return 0;
    if (kind == CHAINADDR_EVM)
        return strcasecmp(a, b) == 0;
    return strcmp(a, b) == 0;
}
