/* wallets.h — investors' deposit addresses: one Cobo address per (MT5 login, chain), made on demand.
 *
 * Offered tokens (KASA_CHAINS: TRON_USDT, ETH_USDT, TRON, ...) map to Cobo chains (TRON, ETH, ...);
 * TRON_USDT and TRON share the login's TRON address, and one address is kept per (login, chain_id).
 * (An EVM address serves every EVM chain, but Cobo hands addresses out per chain_id: if Cobo returns
 * the same EVM address for ETH and BSC_BNB, both pairs link the same address to the same login.)
 *
 * Rules this module keeps:
 *  - Asking again returns the same address; concurrent requests for one pair cause exactly one
 *    creation at Cobo (the first request creates, the others wait for its outcome).
 *  - The link address -> login is journaled (pipeline_link, durable) before any caller sees the
 *    address. A failure before that leaves nothing half-done: no address is returned or remembered.
 *  - A creation whose outcome is unknown (transport error, timeout, Cobo 5xx) is never answered by
 *    blindly creating another: the wallet's addresses on that chain are listed and one that Cobo
 *    made but nobody is linked to is adopted. Why this is safe: COBO_WALLET_ID is kasa's alone, an
 *    address is only ever shown after its link is durable, so an unlinked address in that wallet was
 *    made by kasa and never shown to anyone — whichever of them is adopted, no deposit can already
 *    be on its way to it. Resolutions are serialised (one at a time), and pipeline_link refuses an
 *    address already linked to another login, so two resolvers never adopt the same address. When
 *    the listing shows no such address, Cobo did not make one: the caller gets an error and may ask
 *    again (that next request creates).
 *  - Cluster mode (linker.find set): the nodes share their links through MongoDB (actors/shared.h).
 *    A pair this node does not know is asked there first, and an address another node made is
 *    learned (journaled here) and returned, never made again; when MongoDB cannot answer, nothing
 *    is created (the caller is asked to try again). Every link is in MongoDB before it is journaled,
 *    and MongoDB refuses an address linked to another login: an address another node has just made
 *    and not yet linked may be adopted here, and then that node's link is refused — either way one
 *    login, and no address is shown before its link is.
 * Thread-safe: every function may be called from any thread. */
#ifndef KASA_ACTORS_WALLETS_H
#define KASA_ACTORS_WALLETS_H

#include <stddef.h>
#include <stdint.h>

#include "actors/cobo.h"
#include "actors/pipeline.h"
#include "actors/registry.h"
#include "schema/config.h"

typedef struct wallets_t wallets_t;

/* Where links are journaled and looked up; the pipeline in production, a fake in tests. */
typedef struct {
    /* Journals address (on chain_id) -> login; returns 0 once durable (or already so linked), -1 with a reason. */
    int (*link)(void *arg, const char *address, const char *chain_id, uint64_t login, char *err, size_t errlen);
    /* The login linked to address, or 0. */
    uint64_t (*address_login)(void *arg, const char *address);
    /* Cluster mode (NULL on a single node): the address of (login, chain_id) made on another node,
     * journaled here as learned, into out: 0; 1 none anywhere; -1 cannot tell (err says why). */
    int (*find)(void *arg, uint64_t login, const char *chain_id, char *out, size_t outlen, char *err, size_t errlen);
    void *arg;
} wallets_linker_t;

typedef struct {
    const char *cobo_url;            /* COBO_API_URL */
    const char *api_key_hex;         /* COBO_API_KEY */
    const char *api_secret_hex;      /* COBO_API_SECRET (copied into each client's signer only) */
    const char *response_pubkey_hex; /* Cobo's response-signing key; NULL/"" skips (tests only) */
    const char *wallet_id;           /* COBO_WALLET_ID; empty: every creation fails with a clear reason */
    long timeout_ms;                 /* per Cobo request, default 10000 */
    int max_inflight;                /* creations at Cobo at once (one per pair), default 4 */
    wallets_linker_t linker;
    /* Test hook: called after each cobo_create_address with its result; may return another result
     * (e.g. COBO_ERR_TRANSPORT to act as if the reply was lost after Cobo made the address). */
    cobo_err_t (*create_hook)(void *arg, cobo_err_t got, const char *address);
    void *hook_arg;
} wallets_opts_t;

/* Outcome of wallets_address(). */
typedef enum {
    WALLETS_OK = 0,
    WALLETS_ERR_CHAIN,     /* the token/chain is not offered (KASA_CHAINS) or not known */
    WALLETS_ERR_COBO,      /* Cobo refused (4xx, bad signature, malformed): err says why; nothing linked */
    WALLETS_ERR_UNKNOWN,   /* Cobo did not answer and no unlinked address was found: try again later */
    WALLETS_ERR_LINK,      /* the link could not be journaled: the address is not handed out */
    WALLETS_ERR_BUSY,      /* too many waiting requests, or waiting for another request timed out */
} wallets_result_t;

/* A wallets module with its own Cobo clients. offered: the token ids offered (KASA_CHAINS), count
 * of them. Returns NULL with a reason in err. */
wallets_t *wallets_new(const wallets_opts_t *opts, const char offered[][24], int offered_count,
                       char *err, size_t errlen);
/* The production wiring: Cobo settings and KASA_CHAINS from cfg, links journaled through pipeline,
 * and the links the pipeline's registry holds learned (wallets_load_registry). */
wallets_t *wallets_new_for_pipeline(const config_t *cfg, pipeline_t *pipeline, char *err, size_t errlen);
/* Frees (waits for no one: call after the HTTP server stopped). Nulls *self_p; safe twice. */
void wallets_destroy(wallets_t **self_p);

/* The chain id a token id lives on, from kasa's list of Cobo tokens: "TRON_USDT" -> "TRON",
 * "ETH_USDT" -> "ETH", "BSC_USDT" -> "BSC_BNB", "TRON" -> "TRON". NULL if not listed. (An offered
 * token that is not listed is taken to live on the chain its id starts with: "MATIC_USDT" -> "MATIC".) */
const char *wallets_chain_of(const char *token_or_chain);
/* The chain of an offered token, or the chain itself if an offered token lives on it; NULL if
 * token_or_chain is not offered. */
const char *wallets_chain_for(const wallets_t *self, const char *token_or_chain);

/* The number of offered tokens and the i-th token id ("TRON_USDT"). */
int wallets_offered_count(const wallets_t *self);
const char *wallets_offered(const wallets_t *self, int i);
/* 1 if token_or_chain is offered, or is the chain of an offered token; else 0. */
int wallets_is_offered(const wallets_t *self, const char *token_or_chain);

/* The address of (login, chain of token_or_chain), creating it at Cobo if there is none yet.
 * WALLETS_OK with the address copied to out, or an error with a one-line reason in err (never a
 * secret). Blocks while Cobo answers (bounded by timeout_ms and the listing). */
wallets_result_t wallets_address(wallets_t *self, uint64_t login, const char *token_or_chain,
                                 char *out, size_t outlen, char *err, size_t errlen);
/* The existing address of (login, chain), without creating: 0 and out filled, or -1 if none. */
int wallets_lookup(wallets_t *self, uint64_t login, const char *token_or_chain, char *out, size_t outlen);
/* The login an address is known to belong to (from links learned or made here), or 0. */
uint64_t wallets_login_of(wallets_t *self, const char *address);

/* Learns a link made elsewhere (journal replay, an admin's link). The first address learned for a
 * (login, chain) stays that pair's address. chain_id "" links only address -> login. */
void wallets_learn(wallets_t *self, const char *address, const char *chain_id, uint64_t login);
/* Learns every address link registry holds, oldest first (the registry is rebuilt at start from the
 * newest snapshot and the journal after it: no pass over the whole journal). A link the journal
 * later moved to another login is learned for that login only. 0, or -1 with a reason (no memory). */
int wallets_load_registry(wallets_t *self, registry_t *registry, char *err, size_t errlen);

/* Counters for tests and the monitor: creations sent to Cobo, adoptions after an unknown outcome. */
uint64_t wallets_created_count(const wallets_t *self);
uint64_t wallets_adopted_count(const wallets_t *self);

#endif
