/* wallets.c — one Cobo deposit address per (MT5 login, chain), created once (see wallets.h).
 *
 * State, under one mutex:
 *  - pairs: (login, chain) -> entry. An entry is READY (address known and linked) or CREATING (one
 *    request is at Cobo for it; others wait on the condition variable for its outcome). A failed
 *    creation takes its entry out of the table and hands its error to the requests that waited.
 *  - addrs: address -> login, every link made or learned here.
 *  - per chain: how many creations are at Cobo and whether a resolution (listing after an unknown
 *    outcome) runs. A resolution waits until no creation on its chain is in flight and blocks new
 *    ones meanwhile, so an address Cobo has just made for another request — not yet linked —
 *    is never mistaken for an orphan.
 * No lock is held while Cobo or the journal is called. Every wait has a deadline. */
#include "actors/wallets.h"

#include <errno.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/condvar.h"
#include "actors/registry.h"
#include "schema/log.h"

#define S_BUCKETS      8192
#define S_MAX_ENTRIES  (1 << 20)   /* pairs, and as many address links */
#define S_MAX_CLIENTS  16
#define S_MAX_WAITERS  256         /* requests waiting at once, in all */
#define S_CANDIDATES   8
#define S_ADDR_LEN     128

enum { S_CREATING = 1, S_READY = 2, S_FAILED = 3 };

typedef struct s_pair_t {
    uint64_t login;
    char chain[24];
    char address[S_ADDR_LEN];
    int state;
    int waiters;
    int in_table;
    wallets_result_t fail_result;
    char fail_err[200];
    struct s_pair_t *next;
} s_pair_t;

typedef struct s_addr_t {
    char address[S_ADDR_LEN];
    uint64_t login;
    struct s_addr_t *next;
} s_addr_t;

typedef struct {
    char chain[24];
    int active;        /* creations at Cobo on this chain */
    int resolving;     /* a resolution runs */
} s_chain_t;

struct wallets_t {
    wallets_opts_t o;
    char url[256], key[65], secret[65], resp_key[65], wallet_id[80];
    char offered[CONFIG_MAX_CHAINS][24];
    char offered_chain[CONFIG_MAX_CHAINS][24];   /* the chain of each offered token */
    int offered_count;
    s_chain_t chains[CONFIG_MAX_CHAINS];
    int chain_count;

    pthread_mutex_t mu;
    pthread_cond_t cond;
    s_pair_t *pairs[S_BUCKETS];
    s_addr_t *addrs[S_BUCKETS];
    size_t pair_count, addr_count;
    int waiting;
    int inflight;
    cobo_client_t *clients[S_MAX_CLIENTS];
    int client_busy[S_MAX_CLIENTS];
    uint64_t created, adopted;
};

/* ---- token -> chain --------------------------------------------------------------------------- */

static const struct { const char *token, *chain; } s_chain_map[] = {
    {"TRON_USDT", "TRON"}, {"TRON_USDC", "TRON"}, {"TRON", "TRON"},
    {"ETH_USDT", "ETH"}, {"ETH_USDC", "ETH"}, {"ETH", "ETH"},
    {"BSC_USDT", "BSC_BNB"}, {"BSC_USDC", "BSC_BNB"}, {"BSC_BNB", "BSC_BNB"},
    {"SOL_USDT", "SOL"}, {"SOL_USDC", "SOL"}, {"SOL", "SOL"},
    {"TTRON_USDT", "TTRON"}, {"TTRON", "TTRON"},
    {"SETH_USDT", "SETH"}, {"SETH", "SETH"},
};

const char *wallets_chain_of(const char *token_or_chain)
{
    if (!token_or_chain)
        return NULL;
    for (size_t i = 0; i < sizeof s_chain_map / sizeof s_chain_map[0]; i++)
        if (strcmp(s_chain_map[i].token, token_or_chain) == 0)
            return s_chain_map[i].chain;
    return NULL;
}

int wallets_offered_count(const wallets_t *self)
{
    return self->offered_count;
}

const char *wallets_offered(const wallets_t *self, int i)
{
    return (i >= 0 && i < self->offered_count) ? self->offered[i] : NULL;
}

const char *wallets_chain_for(const wallets_t *self, const char *token_or_chain)
{
    if (!token_or_chain)
        return NULL;
    for (int i = 0; i < self->offered_count; i++)
        if (strcmp(self->offered[i], token_or_chain) == 0 || strcmp(self->offered_chain[i], token_or_chain) == 0)
            return self->offered_chain[i];
    return NULL;
}

int wallets_is_offered(const wallets_t *self, const char *token_or_chain)
{
    return wallets_chain_for(self, token_or_chain) != NULL;
}

static s_chain_t *s_chain_slot(wallets_t *self, const char *chain)
{
    for (int i = 0; i < self->chain_count; i++)
        if (strcmp(self->chains[i].chain, chain) == 0)
            return &self->chains[i];
    return NULL;
}

/* ---- tables (under mu) ------------------------------------------------------------------------- */

static unsigned s_hash(const char *s, uint64_t n)
{
    uint64_t h = 1469598103934665603ULL ^ n;
    for (; *s; s++)
        h = (h ^ (unsigned char) *s) * 1099511628211ULL;
    h ^= n * 0x9E3779B97F4A7C15ULL;
    return (unsigned) (h % S_BUCKETS);
}

static s_pair_t *s_pair_find(wallets_t *self, uint64_t login, const char *chain)
{
    for (s_pair_t *p = self->pairs[s_hash(chain, login)]; p; p = p->next)
        if (p->login == login && strcmp(p->chain, chain) == 0)
            return p;
    return NULL;
}

static void s_pair_insert(wallets_t *self, s_pair_t *p)
{
    unsigned b = s_hash(p->chain, p->login);
    p->next = self->pairs[b];
    self->pairs[b] = p;
    p->in_table = 1;
    self->pair_count++;
}

static void s_pair_remove(wallets_t *self, s_pair_t *p)
{
    s_pair_t **pp = &self->pairs[s_hash(p->chain, p->login)];
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = p->next;
        self->pair_count--;
    }
    p->in_table = 0;
    p->next = NULL;
}

static s_addr_t *s_addr_find(wallets_t *self, const char *address)
{
    for (s_addr_t *a = self->addrs[s_hash(address, 0)]; a; a = a->next)
        if (strcmp(a->address, address) == 0)
            return a;
    return NULL;
}

/* Remembers address -> login unless address is known already. 0, or -1 when full. */
static int s_addr_put(wallets_t *self, const char *address, uint64_t login)
{
    if (s_addr_find(self, address))
        return 0;
    if (self->addr_count >= S_MAX_ENTRIES)
        return -1;
    s_addr_t *a = calloc(1, sizeof *a);
    if (!a)
        return -1;
    snprintf(a->address, sizeof a->address, "%s", address);
    a->login = login;
    unsigned b = s_hash(address, 0);
    a->next = self->addrs[b];
    self->addrs[b] = a;
    self->addr_count++;
    return 0;
}

/* ---- life ------------------------------------------------------------------------------------- */

wallets_t *wallets_new(const wallets_opts_t *opts, const char offered[][24], int offered_count,
                       char *err, size_t errlen)
{
    if (!opts || !opts->linker.link || !opts->linker.address_login) {
        snprintf(err, errlen, "wallets: no linker");
        return NULL;
    }
    if (offered_count < 0 || offered_count > CONFIG_MAX_CHAINS) {
        snprintf(err, errlen, "wallets: too many offered tokens");
        return NULL;
    }
    wallets_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "wallets: out of memory");
        return NULL;
    }
    pthread_mutex_init(&self->mu, NULL);
    condvar_init(&self->cond);
    self->o = *opts;
    if (self->o.timeout_ms <= 0) self->o.timeout_ms = 10000;
    if (self->o.max_inflight <= 0) self->o.max_inflight = 4;
    if (self->o.max_inflight > S_MAX_CLIENTS) self->o.max_inflight = S_MAX_CLIENTS;
    snprintf(self->url, sizeof self->url, "%s", opts->cobo_url ? opts->cobo_url : "");
    snprintf(self->key, sizeof self->key, "%s", opts->api_key_hex ? opts->api_key_hex : "");
    snprintf(self->secret, sizeof self->secret, "%s", opts->api_secret_hex ? opts->api_secret_hex : "");
    snprintf(self->resp_key, sizeof self->resp_key, "%s",
             opts->response_pubkey_hex ? opts->response_pubkey_hex : "");
    snprintf(self->wallet_id, sizeof self->wallet_id, "%s", opts->wallet_id ? opts->wallet_id : "");
    self->o.cobo_url = self->o.api_key_hex = self->o.api_secret_hex = NULL;
    self->o.response_pubkey_hex = self->o.wallet_id = NULL;
    for (int i = 0; i < offered_count; i++) {
        /* A token kasa does not list lives on the chain its id starts with ("MATIC_USDT" ->
         * "MATIC"); a native coin's token id is its chain id ("SOL"). */
        char chain[24];
        const char *known = wallets_chain_of(offered[i]);
        snprintf(chain, sizeof chain, "%s", known ? known : offered[i]);
        if (!known && strchr(chain, '_'))
            *strchr(chain, '_') = '\0';
        if (!chain[0]) {
            snprintf(err, errlen, "wallets: KASA_CHAINS names %s, which names no chain", offered[i]);
            wallets_destroy(&self);
            return NULL;
        }
        if (!known)
            log_warn("wallets.chain_guessed", "token=%s chain=%s", offered[i], chain);
        snprintf(self->offered[self->offered_count], 24, "%s", offered[i]);
        snprintf(self->offered_chain[self->offered_count++], 24, "%s", chain);
        if (!s_chain_slot(self, chain))
            snprintf(self->chains[self->chain_count++].chain, 24, "%s", chain);
    }
    /* One client is made now, so a bad key fails the start rather than the first investor. */
    self->clients[0] = cobo_client_new(self->url, self->key, self->secret, self->resp_key,
                                       self->o.timeout_ms, err, errlen);
    if (!self->clients[0]) {
        wallets_destroy(&self);
        return NULL;
    }
    return self;
}

void wallets_destroy(wallets_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    wallets_t *self = *self_p;
    for (int b = 0; b < S_BUCKETS; b++) {
        for (s_pair_t *p = self->pairs[b], *n; p; p = n) { n = p->next; free(p); }
        for (s_addr_t *a = self->addrs[b], *n; a; a = n) { n = a->next; free(a); }
    }
    for (int i = 0; i < S_MAX_CLIENTS; i++)
        cobo_client_destroy(&self->clients[i]);
    explicit_bzero(self->secret, sizeof self->secret);
    pthread_mutex_destroy(&self->mu);
    pthread_cond_destroy(&self->cond);
    free(self);
    *self_p = NULL;
}

/* ---- links -------------------------------------------------------------------------------------- */

void wallets_learn(wallets_t *self, const char *address, const char *chain_id, uint64_t login)
{
    if (!address || !*address || !login || strlen(address) >= S_ADDR_LEN)
        return;
    pthread_mutex_lock(&self->mu);
    if (s_addr_put(self, address, login) != 0)
        log_warn("wallets.full", "what=address_links max=%d", S_MAX_ENTRIES);
    if (chain_id && *chain_id && strlen(chain_id) < 24 && !s_pair_find(self, login, chain_id) &&
        self->pair_count < S_MAX_ENTRIES) {
        s_pair_t *p = calloc(1, sizeof *p);
        if (p) {
            p->login = login;
            snprintf(p->chain, sizeof p->chain, "%s", chain_id);
            snprintf(p->address, sizeof p->address, "%s", address);
            p->state = S_READY;
            s_pair_insert(self, p);
            pthread_cond_broadcast(&self->cond);
        }
    }
    pthread_mutex_unlock(&self->mu);
}

uint64_t wallets_login_of(wallets_t *self, const char *address)
{
    if (!address)
        return 0;
    pthread_mutex_lock(&self->mu);
    s_addr_t *a = s_addr_find(self, address);
    uint64_t login = a ? a->login : 0;
    pthread_mutex_unlock(&self->mu);
    return login;
}

int wallets_lookup(wallets_t *self, uint64_t login, const char *token_or_chain, char *out, size_t outlen)
{
    const char *chain = wallets_chain_for(self, token_or_chain);
    if (!chain)
        return -1;
    int rc = -1, creating = 0;
    pthread_mutex_lock(&self->mu);
    s_pair_t *p = s_pair_find(self, login, chain);
    if (p && p->state == S_READY) {
        snprintf(out, outlen, "%s", p->address);
        rc = 0;
    }
    creating = p && p->state == S_CREATING;
    pthread_mutex_unlock(&self->mu);
    if (rc != 0 && !creating && login && self->o.linker.find) {   /* made on another node? */
        char address[S_ADDR_LEN] = "", why[160];
        if (self->o.linker.find(self->o.linker.arg, login, chain, address, sizeof address, why, sizeof why) == 0) {
            wallets_learn(self, address, chain, login);
            snprintf(out, outlen, "%s", address);
            rc = 0;
        }
    }
    return rc;
}

int wallets_load_registry(wallets_t *self, registry_t *registry, char *err, size_t errlen)
{
    size_t n = registry_link_count(registry);
    if (n > (size_t) INT32_MAX) {
        snprintf(err, errlen, "wallets: %zu address links: more than kasa can list", n);
        return -1;
    }
    registry_link_t *links = n ? malloc(n * sizeof *links) : NULL;
    int got = n ? registry_links(registry, 0, NULL, 0, (int) n, links) : 0;
    if ((n && !links) || got < 0) {
        free(links);
        snprintf(err, errlen, "wallets: no memory for %zu address links", n);
        return -1;
    }
    size_t have = (size_t) got < n ? (size_t) got : n;
    for (size_t i = have; i > 0; i--)   /* newest first: learned oldest first, as they were journaled */
        wallets_learn(self, links[i - 1].address, links[i - 1].chain_id, links[i - 1].login);
    free(links);
    log_info("wallets.loaded", "links=%zu", have);
    return 0;
}

/* ---- creation --------------------------------------------------------------------------------- */

/* Waits on cond until the deadline: 0, or -1 once it passed. Under mu. */
static int s_wait(wallets_t *self, const struct timespec *until)
{
    int rc = pthread_cond_timedwait(&self->cond, &self->mu, until);
    return rc == ETIMEDOUT ? -1 : 0;
}

/* A free Cobo client (made on first use). Under mu; inflight <= max_inflight guarantees one. */
static int s_client_take(wallets_t *self, char *err, size_t errlen)
{
    for (int i = 0; i < self->o.max_inflight; i++) {
        if (self->client_busy[i])
            continue;
        if (!self->clients[i]) {
            self->clients[i] = cobo_client_new(self->url, self->key, self->secret, self->resp_key,
                                               self->o.timeout_ms, err, errlen);
            if (!self->clients[i])
                return -1;
        }
        self->client_busy[i] = 1;
        return i;
    }
    snprintf(err, errlen, "no Cobo client free");
    return -1;
}

typedef struct {
    wallets_t *self;
    char found[S_CANDIDATES][S_ADDR_LEN];
    int count;
} s_orphans_t;

static int s_orphan_fn(void *arg, const char *address, const char *chain_id)
{
    (void) chain_id;
    s_orphans_t *o = arg;
    if (!address || !*address || strlen(address) >= S_ADDR_LEN)
        return 0;
    if (wallets_login_of(o->self, address) != 0)
        return 0;
    if (o->self->o.linker.address_login(o->self->o.linker.arg, address) != 0)
        return 0;
    snprintf(o->found[o->count++], S_ADDR_LEN, "%s", address);
    return o->count >= S_CANDIDATES;   /* enough: stop listing */
}

/* After an unknown outcome: adopts an address of the wallet on chain that nobody is linked to,
 * linking it to login. Runs alone on its chain (see the file comment). */
static wallets_result_t s_resolve(wallets_t *self, cobo_client_t *client, uint64_t login,
                                  const char *chain, char *out, size_t outlen, char *err, size_t errlen)
{
    s_chain_t *slot = s_chain_slot(self, chain);
    struct timespec until;
    condvar_deadline(&until, self->o.timeout_ms * 3);
    pthread_mutex_lock(&self->mu);
    slot->active--;                                    /* our own creation is over */
    while (slot->active > 0 || slot->resolving) {
        if (s_wait(self, &until) != 0) {
            slot->active++;
            pthread_mutex_unlock(&self->mu);
            snprintf(err, errlen, "Cobo did not answer and the check could not start in time; try again");
            return WALLETS_ERR_UNKNOWN;
        }
    }
    slot->resolving = 1;
    pthread_mutex_unlock(&self->mu);

    wallets_result_t result = WALLETS_ERR_UNKNOWN;
    s_orphans_t orphans = {.self = self};
    char why[200] = "";
    cobo_err_t ce = cobo_list_addresses(client, self->wallet_id, chain, s_orphan_fn, &orphans, why, sizeof why);
    if (ce != COBO_OK && orphans.count == 0) {
        snprintf(err, errlen, "Cobo did not answer, and its address list could not be read (%s: %s); try again",
                 cobo_err_name(ce), why);
    } else if (orphans.count == 0) {
        snprintf(err, errlen, "Cobo did not answer and made no address; try again");
    } else {
        for (int i = 0; i < orphans.count; i++) {
            if (self->o.linker.link(self->o.linker.arg, orphans.found[i], chain, login, why, sizeof why) != 0) {
                log_warn("wallets.adopt_refused", "chain=%s login=%llu reason=\"%s\"", chain,
                         (unsigned long long) login, why);
                continue;
            }
            snprintf(out, outlen, "%s", orphans.found[i]);
            log_info("wallets.adopted", "chain=%s login=%llu address=%s", chain,
                     (unsigned long long) login, orphans.found[i]);
            result = WALLETS_OK;
            break;
        }
        if (result != WALLETS_OK)
            snprintf(err, errlen, "an unlinked address was found but could not be linked (%s)", why);
    }
    pthread_mutex_lock(&self->mu);
    slot->resolving = 0;
    slot->active++;                                    /* s_create's epilogue takes it back */
    if (result == WALLETS_OK)
        self->adopted++;
    pthread_cond_broadcast(&self->cond);
    pthread_mutex_unlock(&self->mu);
    return result;
}

/* Asks Cobo for an address on chain for login and links it. Called with entry CREATING and
 * counted in inflight and in the chain's active count; no lock held. */
static wallets_result_t s_create(wallets_t *self, uint64_t login, const char *chain,
                                 char *out, size_t outlen, char *err, size_t errlen)
{
    pthread_mutex_lock(&self->mu);
    int ci = s_client_take(self, err, errlen);
    pthread_mutex_unlock(&self->mu);
    if (ci < 0)
        return WALLETS_ERR_COBO;
    cobo_client_t *client = self->clients[ci];

    char address[S_ADDR_LEN] = "", why[200] = "";
    cobo_err_t ce = cobo_create_address(client, self->wallet_id, chain, address, sizeof address, why, sizeof why);
    pthread_mutex_lock(&self->mu);
    self->created++;
    pthread_mutex_unlock(&self->mu);
    if (self->o.create_hook)
        ce = self->o.create_hook(self->o.hook_arg, ce, address);

    wallets_result_t result;
    if (ce == COBO_OK) {
        if (self->o.linker.link(self->o.linker.arg, address, chain, login, why, sizeof why) == 0) {
            snprintf(out, outlen, "%s", address);
            result = WALLETS_OK;
        } else {
            snprintf(err, errlen, "the new address could not be recorded (%s); try again", why);
            result = WALLETS_ERR_LINK;
        }
    } else if (ce == COBO_ERR_TRANSPORT || ce == COBO_ERR_HTTP_5XX) {
        log_warn("wallets.create_unknown", "chain=%s login=%llu error=%s reason=\"%s\"", chain,
                 (unsigned long long) login, cobo_err_name(ce), why);
        result = s_resolve(self, client, login, chain, out, outlen, err, errlen);
    } else {
        int code = cobo_client_error_code(client);
        if (code)
            snprintf(err, errlen, "Cobo refused to create a %s address (error %d: %s)", chain, code, why);
        else
            snprintf(err, errlen, "Cobo refused to create a %s address (%s: %s)", chain, cobo_err_name(ce), why);
        result = WALLETS_ERR_COBO;
    }
    pthread_mutex_lock(&self->mu);
    self->client_busy[ci] = 0;
    pthread_mutex_unlock(&self->mu);
    return result;
}

wallets_result_t wallets_address(wallets_t *self, uint64_t login, const char *token_or_chain,
                                 char *out, size_t outlen, char *err, size_t errlen)
{
    const char *chain = wallets_chain_for(self, token_or_chain);
    if (!chain || !login) {
        snprintf(err, errlen, "%s is not an offered network", token_or_chain ? token_or_chain : "(none)");
        return WALLETS_ERR_CHAIN;
    }
    if (!self->wallet_id[0]) {
        snprintf(err, errlen, "deposit addresses are not configured (COBO_WALLET_ID is empty)");
        return WALLETS_ERR_COBO;
    }
    s_chain_t *slot = s_chain_slot(self, chain);
    struct timespec until;
    /* A creation can take a create, a listing and a link: wait up to three request timeouts and more. */
    condvar_deadline(&until, self->o.timeout_ms * 4 + 1000);

    pthread_mutex_lock(&self->mu);
    s_pair_t *p;
    for (;;) {
        p = s_pair_find(self, login, chain);
        if (p && p->state == S_READY) {
            snprintf(out, outlen, "%s", p->address);
            pthread_mutex_unlock(&self->mu);
            return WALLETS_OK;
        }
        if (p && p->state == S_CREATING) {
            /* Another request is at Cobo for this pair: wait for its outcome and share it. */
            if (self->waiting >= S_MAX_WAITERS)
                break;
            p->waiters++;
            self->waiting++;
            int late = 0;
            while (p->state == S_CREATING && !late)
                late = s_wait(self, &until) != 0;
            p->waiters--;
            self->waiting--;
            wallets_result_t r = WALLETS_ERR_BUSY;
            if (p->state == S_READY) {
                snprintf(out, outlen, "%s", p->address);
                r = WALLETS_OK;
            } else if (p->state == S_FAILED) {
                snprintf(err, errlen, "%s", p->fail_err);
                r = p->fail_result;
            } else {
                snprintf(err, errlen, "the address is still being made; try again shortly");
            }
            if (!p->in_table && p->waiters == 0 && p->state != S_CREATING)
                free(p);
            pthread_mutex_unlock(&self->mu);
            return r;
        }
        /* Nobody is making it: we will, once a creation slot and the chain are free. */
        if (self->inflight < self->o.max_inflight && !slot->resolving)
            break;
        if (self->waiting >= S_MAX_WAITERS)
            break;
        self->waiting++;
        int late = s_wait(self, &until) != 0;
        self->waiting--;
        p = NULL;
        if (late)
            break;
    }
    if (self->inflight >= self->o.max_inflight || slot->resolving || self->pair_count >= S_MAX_ENTRIES ||
        (p && p->state == S_CREATING)) {
        pthread_mutex_unlock(&self->mu);
        snprintf(err, errlen, "too many address requests at once; try again shortly");
        return WALLETS_ERR_BUSY;
    }
    p = calloc(1, sizeof *p);
    if (!p) {
        pthread_mutex_unlock(&self->mu);
        snprintf(err, errlen, "out of memory");
        return WALLETS_ERR_BUSY;
    }
    p->login = login;
    snprintf(p->chain, sizeof p->chain, "%s", chain);
    p->state = S_CREATING;
    s_pair_insert(self, p);
    self->inflight++;
    slot->active++;
    pthread_mutex_unlock(&self->mu);

    char address[S_ADDR_LEN] = "";
    int elsewhere = self->o.linker.find
                        ? self->o.linker.find(self->o.linker.arg, login, chain, address, sizeof address, err, errlen)
                        : 1;
    wallets_result_t r = elsewhere == 0  ? WALLETS_OK
                         : elsewhere < 0 ? WALLETS_ERR_UNKNOWN
                                         : s_create(self, login, chain, address, sizeof address, err, errlen);

    pthread_mutex_lock(&self->mu);
    self->inflight--;
    slot->active--;
    if (r == WALLETS_OK) {
        snprintf(p->address, sizeof p->address, "%s", address);
        p->state = S_READY;
        s_addr_put(self, address, login);
        snprintf(out, outlen, "%s", address);
    } else {
        p->state = S_FAILED;
        p->fail_result = r;
        snprintf(p->fail_err, sizeof p->fail_err, "%s", err);
        s_pair_remove(self, p);
        if (p->waiters == 0)
            free(p);
    }
    pthread_cond_broadcast(&self->cond);
    pthread_mutex_unlock(&self->mu);
    if (r == WALLETS_OK)
        log_info("wallets.address", "chain=%s login=%llu address=%s", chain, (unsigned long long) login, address);
    else
        log_warn("wallets.address_failed", "chain=%s login=%llu reason=\"%s\"", chain,
                 (unsigned long long) login, err);
    return r;
}

uint64_t wallets_created_count(const wallets_t *self)
{
    wallets_t *w = (wallets_t *) self;   /* the lock is state, not the value */
    pthread_mutex_lock(&w->mu);
    uint64_t n = w->created;
    pthread_mutex_unlock(&w->mu);
    return n;
}

uint64_t wallets_adopted_count(const wallets_t *self)
{
    wallets_t *w = (wallets_t *) self;
    pthread_mutex_lock(&w->mu);
    uint64_t n = w->adopted;
    pthread_mutex_unlock(&w->mu);
    return n;
}

/* ---- production wiring ------------------------------------------------------------------------ */

static int s_pipeline_link(void *arg, const char *address, const char *chain_id, uint64_t login,
                           char *err, size_t errlen)
{
    return pipeline_link((pipeline_t *) arg, address, chain_id, login, "panel", err, errlen);
}

static uint64_t s_pipeline_login(void *arg, const char *address)
{
    return pipeline_address_login((pipeline_t *) arg, address);
}

static int s_pipeline_find(void *arg, uint64_t login, const char *chain_id, char *out, size_t outlen, char *err,
                           size_t errlen)
{
    return pipeline_link_find((pipeline_t *) arg, login, chain_id, out, outlen, err, errlen);
}

wallets_t *wallets_new_for_pipeline(const config_t *cfg, pipeline_t *pipeline, char *err, size_t errlen)
{
    wallets_opts_t o = {
        .cobo_url = cfg->cobo_api_url,
        .api_key_hex = cfg->cobo_api_key,
        .api_secret_hex = cfg->cobo_api_secret,
        .response_pubkey_hex = cfg->cobo_webhook_pubkey,
        .wallet_id = cfg->cobo_wallet_id,
        .timeout_ms = config_cobo_timeout_ms(cfg),
        .max_inflight = 4,
        .linker = {.link = s_pipeline_link, .address_login = s_pipeline_login,
                   .find = cfg->cluster ? s_pipeline_find : NULL, .arg = pipeline},
    };
    wallets_t *self = wallets_new(&o, cfg->chains, cfg->chain_count, err, errlen);
    if (self && wallets_load_registry(self, pipeline_registry(pipeline), err, errlen) != 0)
        wallets_destroy(&self);
    return self;
}
