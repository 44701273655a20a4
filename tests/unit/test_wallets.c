/* test_wallets.c — deposit addresses against the Cobo simulator: one address per (login, chain)
 * even under 20 concurrent requests (counted in the simulator's own address list), TRON_USDT and
 * TRON share the TRON address, a create whose reply is lost is resolved by listing (no second
 * address), Cobo refusals are clear and link nothing, a failed link hands nothing out, and links are
 * learned back from the journal. Links go to a real journal through a small linker. */
#include "tests/integration/harness.h"

#include "actors/checkpoint.h"
#include "actors/wallets.h"
#include "tests/check.h"

static h_env_t s_env;
static char s_log[512];

/* ---- a linker that journals ADDRESS_LINK records ----------------------------------------------- */

#define L_MAX 256
typedef struct {
    pthread_mutex_t mu;
    journal_t *journal;
    char address[L_MAX][128];
    uint64_t login[L_MAX];
    int count;
    int fail;                 /* refuse every link (as a failed journal would) */
} s_linker_t;

static int s_link(void *arg, const char *address, const char *chain, uint64_t login, char *err, size_t errlen)
{
    s_linker_t *l = arg;
    pthread_mutex_lock(&l->mu);
    if (l->fail) {
        pthread_mutex_unlock(&l->mu);
        snprintf(err, errlen, "journal failed");
        return -1;
    }
    for (int i = 0; i < l->count; i++) {
        if (strcmp(l->address[i], address) == 0) {
            int same = l->login[i] == login;
            pthread_mutex_unlock(&l->mu);
            if (!same)
                snprintf(err, errlen, "address linked to another login");
            return same ? 0 : -1;
        }
    }
    record_t r;
    record_init(&r, RECORD_ADDRESS_LINK);
    r.time_ms = h_wall_ms();
    snprintf(r.address, sizeof r.address, "%s", address);
    snprintf(r.chain_id, sizeof r.chain_id, "%s", chain);
    r.login = login;
    uint8_t *buf;
    size_t len;
    int rc = -1;
    if (record_encode(&r, &buf, &len, err, errlen) == 0) {
        rc = journal_append(l->journal, buf, len) ? 0 : -1;
        free(buf);
    }
    if (rc == 0 && l->count < L_MAX) {
        snprintf(l->address[l->count], 128, "%s", address);
        l->login[l->count++] = login;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

static uint64_t s_login_of(void *arg, const char *address)
{
    s_linker_t *l = arg;
    uint64_t login = 0;
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < l->count; i++)
        if (strcmp(l->address[i], address) == 0)
            login = l->login[i];
    pthread_mutex_unlock(&l->mu);
    return login;
}

static s_linker_t s_linker;
static char s_jdir[600];

/* ADDRESS_LINK records in the journal (reading the files, as a restart would). */
static int s_journal_links(const char *address, uint64_t *login)
{
    char err[200];
    journal_reader_t *rd = journal_reader_open(s_jdir, 1, err, sizeof err);
    if (!rd)
        return -1;
    journal_entry_t e;
    int n = 0;
    while (journal_reader_next(rd, &e) == 1) {
        record_t r;
        if (record_decode(e.payload, e.len, &r, err, sizeof err) == 0 && r.kind == RECORD_ADDRESS_LINK &&
            (!address || strcmp(r.address, address) == 0)) {
            n++;
            if (login)
                *login = r.login;
        }
    }
    journal_reader_destroy(&rd);
    return n;
}

/* ---- the simulator's view -------------------------------------------------------------------- */

typedef struct {
    int count;
    char last[128];
} s_count_t;

static int s_count_fn(void *arg, const char *address, const char *chain)
{
    (void) chain;
    s_count_t *c = arg;
    c->count++;
    snprintf(c->last, sizeof c->last, "%s", address);
    return 0;
}

/* How many addresses the simulator holds for wallet on chain. */
static int s_sim_addresses(const char *wallet, const char *chain)
{
    char err[200], url[128];
    snprintf(url, sizeof url, "%s/v2", s_env.cobo_url);
    cobo_client_t *c = cobo_client_new(url, s_env.client_pub, H_CLIENT_SEED, s_env.webhook_pub,
                                       5000, err, sizeof err);
    if (!c)
        return -1;
    s_count_t n = {0};
    cobo_err_t e = cobo_list_addresses(c, wallet, chain, s_count_fn, &n, err, sizeof err);
    cobo_client_destroy(&c);
    return e == COBO_OK ? n.count : -1;
}

static wallets_t *s_wallets(const char *wallet, const char *secret, long timeout_ms,
                            cobo_err_t (*hook)(void *, cobo_err_t, const char *))
{
    static const char offered[][24] = {"TRON_USDT", "ETH_USDT", "TRON"};
    char url[128], pub[65];
    snprintf(url, sizeof url, "%s/v2", s_env.cobo_url);
    cobo_pubkey_from_seed(secret, pub);
    wallets_opts_t o = {
        .cobo_url = url, .api_key_hex = pub, .api_secret_hex = secret,
        .response_pubkey_hex = s_env.webhook_pub, .wallet_id = wallet, .timeout_ms = timeout_ms,
        .max_inflight = 4,
        .linker = {.link = s_link, .address_login = s_login_of, .arg = &s_linker},
        .create_hook = hook,
    };
    char err[300];
    wallets_t *w = wallets_new(&o, offered, 3, err, sizeof err);
    if (!w)
        h_log("wallets_new: %s", err);
    return w;
}

/* ---- tests ----------------------------------------------------------------------------------- */

typedef struct {
    wallets_t *w;
    uint64_t login;
    const char *token;
    wallets_result_t r;
    char address[128];
    char err[300];
} s_req_t;

static void *s_ask(void *arg)
{
    s_req_t *q = arg;
    q->r = wallets_address(q->w, q->login, q->token, q->address, sizeof q->address, q->err, sizeof q->err);
    return NULL;
}

static void test_wallets_twenty_concurrent_requests_create_one_address(void)
{
    const char *wallet = "wallet-concurrent";
    wallets_t *w = s_wallets(wallet, H_CLIENT_SEED, 5000, NULL);
    CHECK(w != NULL);
    if (!w)
        return;
    /* a little latency at Cobo so the 20 requests really overlap */
    h_sim_post(s_env.cobo_url, "/sim/faults", "{\"delay_ms\":200}");
    enum { N = 20 };
    s_req_t q[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        q[i] = (s_req_t){.w = w, .login = 100001, .token = "TRON_USDT"};
        pthread_create(&th[i], NULL, s_ask, &q[i]);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    h_sim_post(s_env.cobo_url, "/sim/faults", "{\"delay_ms\":0}");
    int ok = 0, same = 0;
    for (int i = 0; i < N; i++) {
        ok += q[i].r == WALLETS_OK;
        same += strcmp(q[i].address, q[0].address) == 0;
        if (q[i].r != WALLETS_OK)
            h_log("request %d: %d %s", i, q[i].r, q[i].err);
    }
    CHECK_EQ_INT(ok, N);
    CHECK_EQ_INT(same, N);
    CHECK(q[0].address[0] == 'T');
    CHECK_EQ_INT(s_sim_addresses(wallet, "TRON"), 1);           /* Cobo made exactly one */
    CHECK_EQ_INT(wallets_created_count(w), 1);
    uint64_t login = 0;
    CHECK_EQ_INT(s_journal_links(q[0].address, &login), 1);      /* journaled once, to the login */
    CHECK_EQ_INT(login, 100001);
    /* asking again returns it without Cobo; TRX on TRON shares it; ETH gets its own */
    char a[128], err[300];
    CHECK_EQ_INT(wallets_address(w, 100001, "TRON_USDT", a, sizeof a, err, sizeof err), WALLETS_OK);
    CHECK_EQ_STR(a, q[0].address);
    CHECK_EQ_INT(wallets_address(w, 100001, "TRON", a, sizeof a, err, sizeof err), WALLETS_OK);
    CHECK_EQ_STR(a, q[0].address);
    CHECK_EQ_INT(wallets_created_count(w), 1);
    CHECK_EQ_INT(wallets_address(w, 100001, "ETH_USDT", a, sizeof a, err, sizeof err), WALLETS_OK);
    CHECK(strncmp(a, "0x", 2) == 0);
    CHECK_EQ_INT(s_sim_addresses(wallet, "ETH"), 1);
    CHECK_EQ_INT(wallets_login_of(w, a), 100001);
    wallets_destroy(&w);
    CHECK(w == NULL);
}

static void test_wallets_many_logins_at_once_get_their_own(void)
{
    const char *wallet = "wallet-many";
    wallets_t *w = s_wallets(wallet, H_CLIENT_SEED, 5000, NULL);
    CHECK(w != NULL);
    if (!w)
        return;
    enum { LOGINS = 8, PER = 3 };
    s_req_t q[LOGINS * PER];
    pthread_t th[LOGINS * PER];
    for (int i = 0; i < LOGINS * PER; i++) {
        q[i] = (s_req_t){.w = w, .login = 200000 + (uint64_t) (i % LOGINS), .token = "TRON_USDT"};
        pthread_create(&th[i], NULL, s_ask, &q[i]);
    }
    for (int i = 0; i < LOGINS * PER; i++)
        pthread_join(th[i], NULL);
    int ok = 0, consistent = 1, distinct = 1;
    for (int i = 0; i < LOGINS * PER; i++) {
        ok += q[i].r == WALLETS_OK;
        consistent &= strcmp(q[i].address, q[i % LOGINS].address) == 0;
        for (int j = 0; j < LOGINS; j++)
            if (j != i % LOGINS && strcmp(q[i].address, q[j].address) == 0)
                distinct = 0;
    }
    CHECK_EQ_INT(ok, LOGINS * PER);
    CHECK(consistent);
    CHECK(distinct);
    CHECK_EQ_INT(s_sim_addresses(wallet, "TRON"), LOGINS);
    wallets_destroy(&w);
}

static void test_wallets_create_timeout_is_resolved_by_listing(void)
{
    const char *wallet = "wallet-timeout";
    /* Cobo makes the address but answers only after 2.5 s; the client gives up after 1 s. */
    wallets_t *w = s_wallets(wallet, H_CLIENT_SEED, 1000, NULL);
    CHECK(w != NULL);
    if (!w)
        return;
    CHECK_EQ_INT(h_sim_post(s_env.cobo_url, "/sim/faults", "{\"create_address_timeout_once\":true,\"hang_ms\":2500}"), 200);
    char a[128] = "", err[300] = "";
    wallets_result_t r = wallets_address(w, 300001, "ETH_USDT", a, sizeof a, err, sizeof err);
    if (r != WALLETS_OK)
        h_log("timeout case: %d %s", r, err);
    CHECK_EQ_INT(r, WALLETS_OK);
    CHECK_EQ_INT(wallets_adopted_count(w), 1);
    CHECK_EQ_INT(wallets_created_count(w), 1);                   /* never a blind second create */
    CHECK_EQ_INT(s_sim_addresses(wallet, "ETH"), 1);
    CHECK_EQ_INT(s_journal_links(a, NULL), 1);
    char again[128];
    CHECK_EQ_INT(wallets_address(w, 300001, "ETH_USDT", again, sizeof again, err, sizeof err), WALLETS_OK);
    CHECK_EQ_STR(again, a);
    h_sim_post(s_env.cobo_url, "/sim/faults", "{\"hang_ms\":0}");
    wallets_destroy(&w);
}

/* The reply is lost after Cobo made the address (as a reset would): resolved the same way. */
static cobo_err_t s_lose_reply_once(void *arg, cobo_err_t got, const char *address)
{
    (void) arg;
    (void) address;
    static int done;
    if (got == COBO_OK && !done) {
        done = 1;
        return COBO_ERR_TRANSPORT;
    }
    return got;
}

static void test_wallets_lost_reply_adopts_the_made_address(void)
{
    const char *wallet = "wallet-lost";
    wallets_t *w = s_wallets(wallet, H_CLIENT_SEED, 5000, s_lose_reply_once);
    CHECK(w != NULL);
    if (!w)
        return;
    char a[128] = "", err[300] = "";
    CHECK_EQ_INT(wallets_address(w, 300002, "TRON_USDT", a, sizeof a, err, sizeof err), WALLETS_OK);
    CHECK_EQ_INT(wallets_adopted_count(w), 1);
    CHECK_EQ_INT(s_sim_addresses(wallet, "TRON"), 1);
    CHECK_EQ_INT(s_journal_links(a, NULL), 1);
    wallets_destroy(&w);
}

static void test_wallets_cobo_refusal_is_clear_and_links_nothing(void)
{
    const char *wallet = "wallet-refused";
    int before = s_journal_links(NULL, NULL);
    /* a key the simulator does not accept: 401, error 2024 */
    wallets_t *w = s_wallets(wallet, H_OTHER_SEED, 5000, NULL);
    CHECK(w != NULL);
    if (!w)
        return;
    char a[128] = "", err[300] = "";
    CHECK_EQ_INT(wallets_address(w, 400001, "TRON_USDT", a, sizeof a, err, sizeof err), WALLETS_ERR_COBO);
    CHECK(strstr(err, "Cobo refused") != NULL);
    CHECK(strstr(err, "2024") != NULL);
    CHECK_EQ_STR(a, "");
    CHECK_EQ_INT(s_journal_links(NULL, NULL), before);
    CHECK_EQ_INT(wallets_lookup(w, 400001, "TRON_USDT", a, sizeof a), -1);
    wallets_destroy(&w);
}

static void test_wallets_cobo_failure_without_address_is_unknown_then_retry_works(void)
{
    const char *wallet = "wallet-503";
    wallets_t *w = s_wallets(wallet, H_CLIENT_SEED, 5000, NULL);
    CHECK(w != NULL);
    if (!w)
        return;
    int before = s_journal_links(NULL, NULL);
    /* the next API call fails with 503 (nothing made); the listing after it succeeds */
    CHECK_EQ_INT(h_sim_post(s_env.cobo_url, "/sim/faults", "{\"fail_next\":1}"), 200);
    char a[128] = "", err[300] = "";
    CHECK_EQ_INT(wallets_address(w, 400002, "TRON_USDT", a, sizeof a, err, sizeof err), WALLETS_ERR_UNKNOWN);
    CHECK(strstr(err, "try again") != NULL);
    CHECK_EQ_INT(s_journal_links(NULL, NULL), before);
    CHECK_EQ_INT(s_sim_addresses(wallet, "TRON"), 0);
    CHECK_EQ_INT(wallets_address(w, 400002, "TRON_USDT", a, sizeof a, err, sizeof err), WALLETS_OK);
    CHECK_EQ_INT(s_sim_addresses(wallet, "TRON"), 1);
    wallets_destroy(&w);
}

static void test_wallets_failed_link_hands_nothing_out(void)
{
    const char *wallet = "wallet-linkfail";
    wallets_t *w = s_wallets(wallet, H_CLIENT_SEED, 5000, NULL);
    CHECK(w != NULL);
    if (!w)
        return;
    pthread_mutex_lock(&s_linker.mu);
    s_linker.fail = 1;
    pthread_mutex_unlock(&s_linker.mu);
    char a[128] = "", err[300] = "";
    CHECK_EQ_INT(wallets_address(w, 500001, "TRON_USDT", a, sizeof a, err, sizeof err), WALLETS_ERR_LINK);
    CHECK_EQ_STR(a, "");
    CHECK(strstr(err, "could not be recorded") != NULL);
    CHECK_EQ_INT(wallets_lookup(w, 500001, "TRON_USDT", a, sizeof a), -1);
    pthread_mutex_lock(&s_linker.mu);
    s_linker.fail = 0;
    pthread_mutex_unlock(&s_linker.mu);
    CHECK_EQ_INT(wallets_address(w, 500001, "TRON_USDT", a, sizeof a, err, sizeof err), WALLETS_OK);
    CHECK_EQ_INT(s_journal_links(a, NULL), 1);
    wallets_destroy(&w);
}

static void test_wallets_unoffered_chain_is_refused_without_cobo(void)
{
    wallets_t *w = s_wallets("wallet-chain", H_CLIENT_SEED, 5000, NULL);
    CHECK(w != NULL);
    if (!w)
        return;
    char a[128], err[300];
    CHECK_EQ_INT(wallets_address(w, 1, "BSC_USDT", a, sizeof a, err, sizeof err), WALLETS_ERR_CHAIN);
    CHECK_EQ_INT(wallets_address(w, 1, "NOPE", a, sizeof a, err, sizeof err), WALLETS_ERR_CHAIN);
    CHECK_EQ_INT(wallets_address(w, 1, "../x", a, sizeof a, err, sizeof err), WALLETS_ERR_CHAIN);
    CHECK_EQ_INT(wallets_created_count(w), 0);
    CHECK_EQ_STR(wallets_chain_of("TRON_USDT"), "TRON");
    CHECK_EQ_STR(wallets_chain_of("ETH_USDT"), "ETH");
    CHECK_EQ_STR(wallets_chain_of("BSC_USDT"), "BSC_BNB");
    CHECK(wallets_chain_of("XYZ") == NULL);
    CHECK(wallets_is_offered(w, "TRON"));
    CHECK(wallets_is_offered(w, "ETH"));
    CHECK(!wallets_is_offered(w, "BSC_USDT"));
    wallets_destroy(&w);
}

static void test_wallets_unlisted_token_and_missing_wallet_id(void)
{
    static const char offered[][24] = {"MATIC_USDT", "TRON_USDT"};
    char url[128];
    snprintf(url, sizeof url, "%s/v2", s_env.cobo_url);
    wallets_opts_t o = {
        .cobo_url = url, .api_key_hex = s_env.client_pub, .api_secret_hex = H_CLIENT_SEED,
        .response_pubkey_hex = s_env.webhook_pub, .wallet_id = "",
        .linker = {.link = s_link, .address_login = s_login_of, .arg = &s_linker},
    };
    char err[300];
    wallets_t *w = wallets_new(&o, offered, 2, err, sizeof err);
    CHECK(w != NULL);
    if (!w)
        return;
    CHECK_EQ_STR(wallets_chain_for(w, "MATIC_USDT"), "MATIC");   /* the chain its id starts with */
    CHECK_EQ_STR(wallets_chain_for(w, "MATIC"), "MATIC");
    CHECK_EQ_STR(wallets_chain_for(w, "TRON_USDT"), "TRON");
    CHECK(wallets_chain_for(w, "ETH_USDT") == NULL);
    char a[128];
    /* no wallet configured: a clear refusal, nothing asked of Cobo */
    CHECK_EQ_INT(wallets_address(w, 1, "TRON_USDT", a, sizeof a, err, sizeof err), WALLETS_ERR_COBO);
    CHECK(strstr(err, "COBO_WALLET_ID") != NULL);
    CHECK_EQ_INT(wallets_created_count(w), 0);
    wallets_destroy(&w);
}

static void test_wallets_learns_links_from_the_journal(void)
{
    wallets_t *w = s_wallets("wallet-concurrent", H_CLIENT_SEED, 5000, NULL);
    CHECK(w != NULL);
    if (!w)
        return;
    char err[300];
    /* as a start does: the registry from the newest snapshot (none here) and the journal after it */
    config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.journal_dir, sizeof cfg.journal_dir, "%.200s", s_jdir);
    registry_t *reg = checkpoint_restore(s_jdir, &checkpoint_registry, &cfg, 0, NULL, err, sizeof err);
    CHECK(reg != NULL);
    if (!reg) {
        wallets_destroy(&w);
        return;
    }
    CHECK_EQ_INT(wallets_load_registry(w, reg, err, sizeof err), 0);
    registry_destroy(&reg);
    char a[128];
    CHECK_EQ_INT(wallets_lookup(w, 100001, "TRON_USDT", a, sizeof a), 0);
    CHECK_EQ_INT(wallets_address(w, 100001, "TRON", a, sizeof a, err, sizeof err), WALLETS_OK);
    CHECK_EQ_INT(wallets_created_count(w), 0);
    CHECK_EQ_INT(wallets_login_of(w, a), 100001);
    wallets_destroy(&w);
}

/* The links a start learns are the registry's: an address the journal later linked to another login
 * is that login's alone (the first login is not shown an address whose deposits now credit someone
 * else); a login's first address on a chain stays its address. */
static void test_wallets_learn_the_links_the_registry_holds(void)
{
    wallets_t *w = s_wallets("wallet-concurrent", H_CLIENT_SEED, 5000, NULL);
    registry_t *reg = registry_new(100);
    CHECK(w != NULL && reg != NULL);
    if (!w || !reg) {
        wallets_destroy(&w);
        registry_destroy(&reg);
        return;
    }
    static const struct { const char *address; uint64_t login; } links[] = {
        { "TAddrOne111111111111111111111111111", 200001 },
        { "TAddrTwo222222222222222222222222222", 200002 },
        { "TAddrOne111111111111111111111111111", 200003 },   /* moved to another login */
        { "TAddrTre333333333333333333333333333", 200002 },   /* a second TRON address of 200002 */
    };
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        record_t r;
        record_init(&r, RECORD_ADDRESS_LINK);
        snprintf(r.address, sizeof r.address, "%s", links[i].address);
        snprintf(r.chain_id, sizeof r.chain_id, "TRON");
        r.login = links[i].login;
        r.time_ms = 1700000000000LL + (int64_t) i;
        CHECK_EQ_INT(registry_apply(reg, &r, 10 + i), 0);
    }
    char err[200], a[128];
    CHECK_EQ_INT(wallets_load_registry(w, reg, err, sizeof err), 0);
    CHECK_EQ_INT(wallets_login_of(w, links[0].address), 200003);
    CHECK_EQ_INT(wallets_lookup(w, 200001, "TRON_USDT", a, sizeof a), -1);
    CHECK_EQ_INT(wallets_lookup(w, 200003, "TRON_USDT", a, sizeof a), 0);
    CHECK_EQ_STR(a, links[0].address);
    CHECK_EQ_INT(wallets_lookup(w, 200002, "TRON", a, sizeof a), 0);
    CHECK_EQ_STR(a, links[1].address);
    CHECK_EQ_INT(wallets_login_of(w, links[3].address), 200002);
    registry_destroy(&reg);
    wallets_destroy(&w);
}

int main(void)
{
    if (h_env_init(&s_env, "wallets") != 0) {
        printf("FAIL setup\n0 passed, 1 failed\n");
        return 1;
    }
    snprintf(s_log, sizeof s_log, "%s/sim-cobo.log", s_env.dir);
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", s_env.cobo_port);
    char *argv[] = {s_env.kasa_bin, "sim", "cobo", "--listen", listen, "--key-seed", H_COBO_KEY_SEED,
                    "--client-key", s_env.client_pub, NULL};
    s_env.cobo_pid = h_spawn(argv, s_log, NULL);
    if (h_wait_port(s_env.cobo_port, 10000) != 0) {
        h_tail(s_log, 20);
        h_env_destroy(&s_env);
        printf("FAIL setup\n0 passed, 1 failed\n");
        return 1;
    }
    snprintf(s_jdir, sizeof s_jdir, "%s/journal", s_env.dir);
    char err[300];
    pthread_mutex_init(&s_linker.mu, NULL);
    s_linker.journal = journal_open(s_jdir, NULL, err, sizeof err);
    if (!s_linker.journal) {
        h_log("journal_open: %s", err);
        h_env_destroy(&s_env);
        printf("FAIL setup\n0 passed, 1 failed\n");
        return 1;
    }
    RUN(test_wallets_twenty_concurrent_requests_create_one_address);
    RUN(test_wallets_many_logins_at_once_get_their_own);
    RUN(test_wallets_create_timeout_is_resolved_by_listing);
    RUN(test_wallets_lost_reply_adopts_the_made_address);
    RUN(test_wallets_cobo_refusal_is_clear_and_links_nothing);
    RUN(test_wallets_cobo_failure_without_address_is_unknown_then_retry_works);
    RUN(test_wallets_failed_link_hands_nothing_out);
    RUN(test_wallets_unoffered_chain_is_refused_without_cobo);
    RUN(test_wallets_unlisted_token_and_missing_wallet_id);
    RUN(test_wallets_learns_links_from_the_journal);
    RUN(test_wallets_learn_the_links_the_registry_holds);
    journal_destroy(&s_linker.journal);
    h_env_destroy(&s_env);
    return check_done();
}
