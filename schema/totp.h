/* totp.h — time-based one-time passwords (RFC 6238 over RFC 4226's HOTP): HMAC-SHA1, 30-second
 * steps, 6 digits, as every authenticator app reads them from an otpauth:// URI; and the base32
 * text the secret travels in. Pure computation (no clock: the caller passes the time). */
#ifndef KASA_SCHEMA_TOTP_H
#define KASA_SCHEMA_TOTP_H

#include <stddef.h>
#include <stdint.h>

#define TOTP_PERIOD_S 30
#define TOTP_DIGITS 6
#define TOTP_SECRET_BYTES 20   /* 160 bits, as RFC 4226 recommends for HMAC-SHA1 */

/* The code for time step `step` (unix seconds / 30), digits 6..8, written zero-padded into out
 * (at least digits + 1 bytes). 0, or -1 for bad arguments. */
int totp_code(const uint8_t *key, size_t keylen, uint64_t step, int digits, char *out);

/* Checks a 6-digit code against the steps now-1, now, now+1 (one step of clock skew either way),
 * accepting only a step later than last_step, so a code once accepted (and every earlier one) is
 * never accepted again. 0 with *step_out set to the step matched, or -1. Compares in constant time. */
int totp_verify(const uint8_t *key, size_t keylen, const char *code, int64_t now_s, uint64_t last_step,
                uint64_t *step_out);

/* RFC 4648 base32 (A-Z2-7, no padding) of n bytes into out; -1 if out is too small. */
int totp_base32_encode(const uint8_t *in, size_t n, char *out, size_t outlen);
/* Decodes base32 (upper or lower case, '=' padding and spaces ignored); -1 on another character or
 * if out (cap bytes) is too small. *outlen gets the byte count. */
int totp_base32_decode(const char *in, uint8_t *out, size_t cap, size_t *outlen);

/* otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=ISSUER&algorithm=SHA1&digits=6&period=30, with
 * issuer and account percent-encoded. -1 if out is too small. */
int totp_uri(const char *issuer, const char *account, const char *secret_b32, char *out, size_t outlen);

#endif
