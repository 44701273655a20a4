/* ingress.c — see ingress.h. */
#include "actors/ingress.h"

#include <stdio.h>
#include <string.h>

deposit_event_t ingress_event(const cobo_tx_t *tx)
{
    if (strcmp(tx->sub_status, "ReOrged") == 0 || strcmp(tx->status, "Rejected") == 0 ||
        strcmp(tx->status, "Failed") == 0)
        return DEPOSIT_EV_SEEN_FAILED;
    if (strcmp(tx->status, "Completed") == 0)
        return DEPOSIT_EV_SEEN_COMPLETED;
    return DEPOSIT_EV_SEEN_PENDING;
}

/* Copies src into dst[cap]; -1 if it does not fit (never cut silently). */
static int s_put(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap);
    if (n >= cap)
        return -1;
    memcpy(dst, src, n + 1);
    return 0;
}
#define S_PUT(dst, src) s_put((dst), sizeof(dst), (src))

int ingress_record(const cobo_tx_t *tx, uint64_t login, record_t *r, char *err, size_t errlen)
{
    record_init(r, RECORD_DEPOSIT);
    if (!tx->tx_id[0]) {
        snprintf(err, errlen, "no transaction_id");
        return -1;
    }
    if (strcmp(tx->type, "Deposit") != 0) {
        snprintf(err, errlen, "not a deposit (type %.24s)", tx->type);
        return -1;
    }
    if (S_PUT(r->tx_id, tx->tx_id) || S_PUT(r->status, tx->status) || S_PUT(r->token_id, tx->token_id) ||
        S_PUT(r->chain_id, tx->chain_id) || S_PUT(r->address, tx->address) || S_PUT(r->amount, tx->amount) ||
        S_PUT(r->tx_hash, tx->tx_hash)) {
        snprintf(err, errlen, "a field is too long");
        return -1;
    }
    r->event = ingress_event(tx);
    r->confirmations = tx->confirmations;
    r->threshold = tx->threshold;
    r->login = login;
    if (r->event == DEPOSIT_EV_SEEN_FAILED)
        snprintf(r->reason, sizeof r->reason, "Cobo says %.32s%s%.48s", tx->status, tx->sub_status[0] ? "/" : "",
                 tx->sub_status);
    return 0;
}
