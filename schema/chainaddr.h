/* chainaddr.h — is this string an address a token can be sent to? Pure: no I/O, no allocation.
 *
 * TRON: base58check (Bitcoin alphabet) of 25 bytes = version 0x41, 20-byte account, the first 4
 * bytes of SHA256(SHA256(version+account)); it prints as 34 characters starting with 'T'.
 * EVM (Ethereum, BSC): "0x" + 40 hex digits. All lower or all upper case carries no checksum and is
 * accepted as it is; mixed case is an EIP-55 checksum and must match: the hex digit at position i
 * is upper case exactly when nibble i of Keccak-256(lower-case hex, as ASCII) is >= 8.
 * A token's chain comes from its Cobo token id: TRON_USDT, TRON (TRX), TTRON → TRON; ETH_USDT, ETH,
 * BSC_USDT, BSC_BNB, SETH → EVM; anything else is not a chain kasa can check (refused). */
#ifndef KASA_SCHEMA_CHAINADDR_H
#define KASA_SCHEMA_CHAINADDR_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    CHAINADDR_NONE = 0,   /* a token kasa does not know how to check */
    CHAINADDR_TRON,
    CHAINADDR_EVM,
} chainaddr_kind_t;

/* The kind of address token_id is sent to; CHAINADDR_NONE for NULL or an unknown token. */
chainaddr_kind_t chainaddr_kind_of_token(const char *token_id);

/* "TRON", "EVM" or "none", for logs and messages. */
const char *chainaddr_kind_name(chainaddr_kind_t kind);

/* 0 if address is a well-formed address of kind (checksum included), else -1 with a short reason
 * for a person in err ("TRON address: checksum does not match", ...), never echoing the input.
 * Leading or trailing spaces are not trimmed: they make the address invalid. */
int chainaddr_check(chainaddr_kind_t kind, const char *address, char *err, size_t errlen);

/* chainaddr_check for the chain of token_id; -1 with "token X: no address check" if unknown. */
int chainaddr_check_for_token(const char *token_id, const char *address, char *err, size_t errlen);

/* 1 if a and b name the same account of kind: TRON compares exactly (base58 is case-sensitive),
 * EVM ignores the case of the hex digits. 0 otherwise, or if either is NULL. Does not validate. */
int chainaddr_same(chainaddr_kind_t kind, const char *a, const char *b);

/* Keccak-256 as Ethereum uses it (the original Keccak padding 0x01, not SHA3-256's 0x06). */
void chainaddr_keccak256(const void *data, size_t len, uint8_t out[32]);

/* The Keccak sponge with rate 136 bytes and the given domain padding byte (0x01 Keccak-256,
 * 0x06 SHA3-256): exposed so a test can hold the permutation against an independent SHA3-256. */
void chainaddr_sponge256(const void *data, size_t len, uint8_t pad, uint8_t out[32]);

#endif
