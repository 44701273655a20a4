/* totp.c — see totp.h. HMAC-SHA1 comes from OpenSSL; the rest is RFC 4226 section 5.3 (dynamic
 * truncation) and RFC 6238 section 4 (T = floor(unix / 30)). */
#include "schema/totp.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

int totp_code(const uint8_t *key, size_t keylen, uint64_t step, int digits, char *out)
{
    if (!key || !keylen || keylen > 1024 || digits < 6 || digits > 8 || !out)
        return -1;
    uint8_t msg[8];
    for (int i = 7; i >= 0; i--, step >>= 8)
        msg[i] = (uint8_t) step;
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    if (!HMAC(EVP_sha1(), key, (int) keylen, msg, sizeof msg, mac, &maclen) || maclen != 20)
        return -1;
    int off = mac[19] & 0x0f;
    uint32_t bin = ((uint32_t) (mac[off] & 0x7f) << 24) | ((uint32_t) mac[off + 1] << 16) |
                   ((uint32_t) mac[off + 2] << 8) | mac[off + 3];
    uint32_t mod = 1;
    for (int i = 0; i < digits; i++)
        mod *= 10;
    uint32_t v = bin % mod;
    for (int i = digits - 1; i >= 0; i--, v /= 10)
        out[i] = (char) ('0' + v % 10);
    out[digits] = '\0';
    return 0;
}

int totp_verify(const uint8_t *key, size_t keylen, const char *code, int64_t now_s, uint64_t last_step,
                uint64_t *step_out)
{
    if (!code || strlen(code) != TOTP_DIGITS || now_s < TOTP_PERIOD_S)
        return -1;
    for (int i = 0; i < TOTP_DIGITS; i++)
        if (code[i] < '0' || code[i] > '9')
            return -1;
    uint64_t now = (uint64_t) now_s / TOTP_PERIOD_S;
    int found = 0;
    uint64_t matched = 0;
    for (uint64_t step = now - 1; step <= now + 1; step++) {   /* every step computed: no early exit */
        char want[TOTP_DIGITS + 1];
        if (totp_code(key, keylen, step, TOTP_DIGITS, want) != 0)
            return -1;
        if (CRYPTO_memcmp(want, code, TOTP_DIGITS) == 0 && step > last_step && !found) {
            found = 1;
            matched = step;
        }
    }
    if (!found)
        return -1;
    if (step_out)
        *step_out = matched;
    return 0;
}

static const char s_b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

int totp_base32_encode(const uint8_t *in, size_t n, char *out, size_t outlen)
{
    size_t need = (n * 8 + 4) / 5 + 1;
    if (!out || outlen < need)
        return -1;
    size_t o = 0;
    uint32_t buf = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        buf = (buf << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            out[o++] = s_b32[(buf >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0)
        out[o++] = s_b32[(buf << (5 - bits)) & 31];
    out[o] = '\0';
    return 0;
}

int totp_base32_decode(const char *in, uint8_t *out, size_t cap, size_t *outlen)
{
    uint32_t buf = 0;
    int bits = 0;
    size_t o = 0;
    for (const char *p = in; p && *p; p++) {
        char c = *p;
        if (c == '=' || c == ' ')
            continue;
        if (c >= 'a' && c <= 'z')
            c = (char) (c - 'a' + 'A');
        const char *at = strchr(s_b32, c);
        if (!at || !c)
            return -1;
        buf = (buf << 5) | (uint32_t) (at - s_b32);
        bits += 5;
        if (bits >= 8) {
            if (o >= cap)
                return -1;
            out[o++] = (uint8_t) (buf >> (bits - 8));
            bits -= 8;
        }
    }
    if (outlen)
        *outlen = o;
    return 0;
}

/* Appends s percent-encoded (RFC 3986 unreserved characters kept). */
static size_t s_pct(char *out, size_t at, size_t outlen, const char *s)
{
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        int keep = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
                   *p == '.' || *p == '_' || *p == '~';
        if (at + 4 >= outlen)
            return outlen;
        at += (size_t) snprintf(out + at, outlen - at, keep ? "%c" : "%%%02X", *p);
    }
    return at;
}

int totp_uri(const char *issuer, const char *account, const char *secret_b32, char *out, size_t outlen)
{
    size_t at = (size_t) snprintf(out, outlen, "otpauth://totp/");
    at = s_pct(out, at, outlen, issuer);
    at = at < outlen ? at + (size_t) snprintf(out + at, outlen - at, ":") : at;
    at = s_pct(out, at, outlen, account);
    if (at >= outlen)
        return -1;
    at += (size_t) snprintf(out + at, outlen - at, "?secret=%s&issuer=", secret_b32);
    if (at >= outlen)
        return -1;
    at = s_pct(out, at, outlen, issuer);
    if (at >= outlen)
        return -1;
    at += (size_t) snprintf(out + at, outlen - at, "&algorithm=SHA1&digits=%d&period=%d", TOTP_DIGITS, TOTP_PERIOD_S);
    return at < outlen ? 0 : -1;
}
