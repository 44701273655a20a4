/* support_wallets.h — shared by unit tests and benchmarks: a wallets module that only learns links (as
 * a start's wallets_load_registry teaches it) and never makes one or calls Cobo. */
#ifndef KASA_TESTS_SUPPORT_WALLETS_H
#define KASA_TESTS_SUPPORT_WALLETS_H

#include <stdio.h>
#include <string.h>

#include "actors/cobo_auth.h"
#include "actors/wallets.h"

static inline int support_wallets_no_link(void *arg, const char *address, const char *chain_id, uint64_t login,
                                          char *err, size_t errlen)
{
    (void) arg, (void) address, (void) chain_id, (void) login;
    snprintf(err, errlen, "read-only wallets: no links made here");
    return -1;
}

static inline uint64_t support_wallets_no_login(void *arg, const char *address)
{
    (void) arg, (void) address;
    return 0;
}

/* Wallets offering offered[0..n) whose Cobo (a closed port) is never reached: lookups and learning
 * only. NULL with a reason in err. */
static inline wallets_t *support_wallets_readonly(const char offered[][24], int n, char *err, size_t errlen)
{
    char secret[65], pub[65];
    memset(secret, '7', 64);
    secret[64] = '\0';
    cobo_pubkey_from_seed(secret, pub);
    wallets_opts_t o = {
        .cobo_url = "http://127.0.0.1:9/v2", .api_key_hex = pub, .api_secret_hex = secret, .wallet_id = "w",
        .linker = { .link = support_wallets_no_link, .address_login = support_wallets_no_login },
    };
    return wallets_new(&o, offered, n, err, errlen);
}

#endif
