/* cobo_body.h — a deposit webhook as Cobo sends it, for tests and benchmarks that need a realistic
 * body (every field of a WaaS 2.0 Transaction, nulls where absent), and an editor for variations. */
#ifndef KASA_TESTS_COBO_BODY_H
#define KASA_TESTS_COBO_BODY_H

#include <stdlib.h>
#include <string.h>

#define COBO_DEPOSIT_BODY \
    "{\"event_id\":\"c3d9a2f4-1b6e-4f0a-9d2c-7e8f5a6b4c3d\",\"url\":\"https://kasa.example/cobo/webhook\"," \
    "\"created_timestamp\":1764142800123,\"type\":\"wallets.transaction.succeeded\",\"data\":{" \
    "\"data_type\":\"Transaction\",\"transaction_id\":\"0f6b5a4e-8c1d-4b7e-9a3f-2d5c7e9b1a20\"," \
    "\"cobo_id\":\"20251126073000000123\",\"request_id\":null," \
    "\"wallet_id\":\"6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b\",\"type\":\"Deposit\",\"status\":\"Completed\"," \
    "\"sub_status\":null,\"failed_reason\":null,\"chain_id\":\"TRON\",\"token_id\":\"TRON_USDT\"," \
    "\"asset_id\":\"USDT\",\"source\":{\"source_type\":\"DepositFromAddress\",\"addresses\":" \
    "[\"TJRyWwFs9wTFGZg3JbrVriFbNfCug5tDeC\"]},\"destination\":{\"destination_type\":\"DepositToAddress\"," \
    "\"address\":\"TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf\",\"amount\":\"5970.04\",\"memo\":null," \
    "\"wallet_id\":\"6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b\"},\"result\":null,\"fee\":null," \
    "\"initiator\":null,\"confirmed_num\":20,\"confirming_threshold\":20," \
    "\"transaction_hash\":\"9a4c1e5f7b2d8a6c3e0f1b9d7a5c3e1f0b2d4a6c8e0f1a3b5c7d9e1f3a5b7c9d\"," \
    "\"block_info\":{\"block_number\":67012345,\"block_timestamp\":1764142790000," \
    "\"block_hash\":\"0000000003fe8a1b\"},\"raw_tx_info\":null,\"replacement\":null,\"category\":null," \
    "\"description\":null,\"is_loop\":false,\"created_timestamp\":1764142700000," \
    "\"updated_timestamp\":1764142800000,\"timeline\":[]}}"

/* body with the first occurrence of from replaced by to (malloc'd; the caller frees), or NULL if
 * from is not in body. */
static inline char *cobo_body_edit(const char *body, const char *from, const char *to)
{
    const char *p = strstr(body, from);
    if (!p)
        return NULL;
    size_t a = (size_t) (p - body), fl = strlen(from), tl = strlen(to);
    char *out = malloc(strlen(body) - fl + tl + 1);
    if (!out)
        abort();
    memcpy(out, body, a);
    memcpy(out + a, to, tl);
    strcpy(out + a + tl, p + fl);
    return out;
}

#endif
