/* test_chainaddr.c — withdrawal address checks: Keccak-256 against published vectors (and its
 * permutation against OpenSSL's SHA3-256), EIP-55 examples from the EIP, real TRON addresses, and
 * every way an address can be wrong. */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "schema/chainaddr.h"
#include "tests/check.h"

static void s_hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static int s_ok(chainaddr_kind_t kind, const char *a)
{
    char err[128] = "";
    return chainaddr_check(kind, a, err, sizeof err) == 0;
}

/* 1 if a is refused and the reason contains want. */
static int s_refused_with(chainaddr_kind_t kind, const char *a, const char *want)
{
    char err[128] = "";
    if (chainaddr_check(kind, a, err, sizeof err) == 0)
        return 0;
    if (!strstr(err, want)) {
        fprintf(stderr, "  reason \"%s\" lacks \"%s\"\n", err, want);
        return 0;
    }
    return 1;
}

static void test_keccak256_published_vectors(void)
{
    uint8_t h[32];
    char hex[65];
    chainaddr_keccak256("", 0, h);
    s_hex(h, 32, hex);
    CHECK(strcmp(hex, "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470") == 0);
    chainaddr_keccak256("abc", 3, h);
    s_hex(h, 32, hex);
    CHECK(strcmp(hex, "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45") == 0);
    const char *fox = "The quick brown fox jumps over the lazy dog";
    chainaddr_keccak256(fox, strlen(fox), h);
    s_hex(h, 32, hex);
    CHECK(strcmp(hex, "4d741b6f1eb29cb2a9b9911c82f56fa8d73b04959d3d9d222895df6c0b28aa15") == 0);
}

/* The same permutation with SHA3's padding must equal OpenSSL's SHA3-256 at every length around
 * the 136-byte block edges: this proves absorption across blocks, not just one short input. */
static void test_sponge_matches_openssl_sha3_at_every_length(void)
{
    uint8_t msg[420], mine[32], ref[32];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t) (i * 131 + 7);
    int mismatches = 0;
    for (size_t len = 0; len <= sizeof msg; len++) {
        unsigned n = 0;
        chainaddr_sponge256(msg, len, 0x06, mine);
        if (EVP_Digest(msg, len, ref, &n, EVP_sha3_256(), NULL) != 1 || n != 32 || memcmp(mine, ref, 32) != 0)
            mismatches++;
    }
    CHECK_EQ_INT(mismatches, 0);
}

static void test_eip55_examples_from_the_eip_are_accepted(void)
{
    const char *good[] = {
        "0x52908400098527886E0F7030069857D2E4169EE7", "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
        "0xde709f2102306220921060314715629080e2fb77", "0x27b1fdb04752bbc536007a920d24acb045561c26",
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB", "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK(s_ok(CHAINADDR_EVM, good[i]));
}

static void test_evm_single_case_is_accepted_without_checksum(void)
{
    CHECK(s_ok(CHAINADDR_EVM, "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"));
    CHECK(s_ok(CHAINADDR_EVM, "0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED"));
    CHECK(s_ok(CHAINADDR_EVM, "0x0000000000000000000000000000000000000000"));
}

static void test_evm_wrong_mixed_case_checksum_is_refused(void)
{
    /* one letter's case flipped in a valid EIP-55 address */
    CHECK(s_refused_with(CHAINADDR_EVM, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", "EIP-55"));
    CHECK(s_refused_with(CHAINADDR_EVM, "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "EIP-55"));
    CHECK(s_refused_with(CHAINADDR_EVM, "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6Fb", "EIP-55"));
}

static void test_evm_shape_errors_are_refused(void)
{
    CHECK(s_refused_with(CHAINADDR_EVM, "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", "0x"));
    CHECK(s_refused_with(CHAINADDR_EVM, "0X5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", "0x"));
    CHECK(s_refused_with(CHAINADDR_EVM, "0x5aaeb6053f3e94c9b9a09f33669435e7ef1bea", "40 hex"));
    CHECK(s_refused_with(CHAINADDR_EVM, "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed00", "40 hex"));
    CHECK(s_refused_with(CHAINADDR_EVM, "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaeg", "hex digit"));
    CHECK(s_refused_with(CHAINADDR_EVM, " 0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", "0x"));
    CHECK(s_refused_with(CHAINADDR_EVM, "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beae ", "hex digit"));
    CHECK(s_refused_with(CHAINADDR_EVM, "", "empty"));
    CHECK(s_refused_with(CHAINADDR_EVM, NULL, "empty"));
}

static void test_tron_real_addresses_are_accepted(void)
{
    CHECK(s_ok(CHAINADDR_TRON, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"));  /* the USDT TRC-20 contract */
    CHECK(s_ok(CHAINADDR_TRON, "T9yD14Nj9j7xAB4dbGeiX9h8unkKHxuWwb"));  /* the all-zero account */
}

static void test_tron_wrong_checksum_is_refused(void)
{
    CHECK(s_refused_with(CHAINADDR_TRON, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6u", "checksum"));
    CHECK(s_refused_with(CHAINADDR_TRON, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLJ6t", "checksum"));
    CHECK(s_refused_with(CHAINADDR_TRON, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjL6jt", "checksum"));
}

static void test_tron_wrong_version_is_refused(void)
{
    /* a valid base58check of 25 bytes with version 0x00 (Bitcoin's genesis address) */
    CHECK(s_refused_with(CHAINADDR_TRON, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "version"));
}

static void test_tron_wrong_length_is_refused(void)
{
    CHECK(s_refused_with(CHAINADDR_TRON, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6", "length"));
    CHECK(s_refused_with(CHAINADDR_TRON, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6tt", "length"));
    CHECK(s_refused_with(CHAINADDR_TRON, "TR7NHq", "34 base58"));
    CHECK(s_refused_with(CHAINADDR_TRON, "T", "34 base58"));
    CHECK(s_refused_with(CHAINADDR_TRON,
                         "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6tTR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6tTR7NHqjeK", "34 base58"));
}

static void test_tron_non_base58_characters_are_refused(void)
{
    CHECK(s_refused_with(CHAINADDR_TRON, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj60", "base58"));
    CHECK(s_refused_with(CHAINADDR_TRON, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLjOt", "base58"));
    CHECK(s_refused_with(CHAINADDR_TRON, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLIt6", "base58"));
    CHECK(s_refused_with(CHAINADDR_TRON, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLl6t", "base58"));
    CHECK(s_refused_with(CHAINADDR_TRON, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgj j6t", "base58"));
}

static void test_tokens_map_to_their_chain(void)
{
    CHECK_EQ_INT(chainaddr_kind_of_token("TRON_USDT"), CHAINADDR_TRON);
    CHECK_EQ_INT(chainaddr_kind_of_token("TRON"), CHAINADDR_TRON);
    CHECK_EQ_INT(chainaddr_kind_of_token("ETH_USDT"), CHAINADDR_EVM);
    CHECK_EQ_INT(chainaddr_kind_of_token("ETH"), CHAINADDR_EVM);
    CHECK_EQ_INT(chainaddr_kind_of_token("BSC_USDT"), CHAINADDR_EVM);
    CHECK_EQ_INT(chainaddr_kind_of_token("SOL_USDT"), CHAINADDR_NONE);
    CHECK_EQ_INT(chainaddr_kind_of_token(NULL), CHAINADDR_NONE);
    char err[96];
    CHECK(chainaddr_check_for_token("TRON_USDT", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", err, sizeof err) == 0);
    CHECK(chainaddr_check_for_token("ETH_USDT", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", err, sizeof err) == -1);
    CHECK(chainaddr_check_for_token("TRON", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", err, sizeof err) == -1);
    CHECK(chainaddr_check_for_token("SOL", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", err, sizeof err) == -1);
    CHECK(strstr(err, "no address check") != NULL);
}

static void test_same_account_ignores_evm_case_only(void)
{
    CHECK(chainaddr_same(CHAINADDR_EVM, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
                         "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"));
    CHECK(!chainaddr_same(CHAINADDR_TRON, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", "tr7nhqjekqxgtci8q8zy4pl8otszgjlj6t"));
    CHECK(chainaddr_same(CHAINADDR_TRON, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"));
    CHECK(!chainaddr_same(CHAINADDR_EVM, NULL, "0x00"));
}

int main(void)
{
    RUN(test_keccak256_published_vectors);
    RUN(test_sponge_matches_openssl_sha3_at_every_length);
    RUN(test_eip55_examples_from_the_eip_are_accepted);
    RUN(test_evm_single_case_is_accepted_without_checksum);
    RUN(test_evm_wrong_mixed_case_checksum_is_refused);
    RUN(test_evm_shape_errors_are_refused);
    RUN(test_tron_real_addresses_are_accepted);
    RUN(test_tron_wrong_checksum_is_refused);
    RUN(test_tron_wrong_version_is_refused);
    RUN(test_tron_wrong_length_is_refused);
    RUN(test_tron_non_base58_characters_are_refused);
    RUN(test_tokens_map_to_their_chain);
    RUN(test_same_account_ignores_evm_case_only);
    return check_done();
}
