/* test_pipeline_sim.c — the whole pipeline against kasa's Cobo, MT5 and Telegram simulators, run as
 * child processes (`kasa sim ...` from $KASA_BIN): a deposit is re-confirmed with Cobo, locked,
 * credited to MT5 with the exact amount and notified; when MT5 applies the deal but drops the reply,
 * the deposit is still credited exactly once; a restart with a credit attempt on record reconciles
 * (finds the deal, never sends twice); the locker's rules hold, refuse and release by admin action;
 * with several lockers and notifiers a burst is locked, credited and notified exactly once each,
 * and a restart hands every unfinished deposit to the right one. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "actors/cobo.h"
#include "actors/cobo_auth.h"
#include "actors/crediter.h"
#include "actors/mt5.h"
#include "actors/pipeline.h"
#include "actors/stage.h"
#include "journal/journal.h"
#include "schema/json.h"
#include "schema/record.h"
#include "tests/check.h"
#include "tests/unit/support_pipeline.h"

#define S_CLIENT_SEED "2222222222222222222222222222222222222222222222222222222222222222"
#define S_SIM_SEED "3333333333333333333333333333333333333333333333333333333333333333"
#define S_TG_TOKEN "4242:SimBotToken"

typedef struct {
    pid_t pid;
    int port;
    char pubkey[65];
} s_child_t;

static s_child_t s_mt5, s_cobo, s_tg;
static char s_dir[240];
static char s_base[200];

/* ---- children ---------------------------------------------------------------------------------- */

static const char *s_kasa_bin(void)
{
    const char *bin = getenv("KASA_BIN");
    return bin && *bin ? bin : "build/san/kasa";
}

/* Starts `kasa sim ...` with stdout into a file; waits for its "listening on" line (port 0 → its port). */
static int s_spawn(s_child_t *c, const char *name, char *const args[])
{
    char out[300];
    static int started;
    snprintf(out, sizeof out, "%s/%s-%d.out", s_base, name, ++started);
    unlink(out);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        char *argv[32];
        int n = 0;
        argv[n++] = (char *) s_kasa_bin();
        argv[n++] = "sim";
        for (int i = 0; args[i] && n < 31; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        execv(argv[0], argv);
        _exit(127);
    }
    c->pid = pid;
    for (int tries = 0; tries < 200; tries++) {   /* up to 10 s */
        FILE *f = fopen(out, "r");
        char line[512];
        while (f && fgets(line, sizeof line, f)) {
            char *at = strstr(line, "listening on ");
            if (!at)
                continue;
            char *colon = strrchr(at, ':');
            char *pk = strstr(line, "pubkey ");
            if (pk)   /* "listening on 127.0.0.1:PORT pubkey HEX" */
                colon = strchr(at + 13, ':');
            c->port = colon ? atoi(colon + 1) : 0;
            if (pk)
                snprintf(c->pubkey, sizeof c->pubkey, "%.64s", pk + 7);
            fclose(f);
            return c->port > 0 ? 0 : -1;
        }
        if (f)
            fclose(f);
        usleep(50 * 1000);
    }
    return -1;
}

static void s_stop(s_child_t *c)
{
    if (c->pid > 0) {
        kill(c->pid, SIGTERM);
        waitpid(c->pid, NULL, 0);
    }
    c->pid = 0;
}

static void s_stop_all(void)
{
    s_stop(&s_mt5);
    s_stop(&s_cobo);
    s_stop(&s_tg);
}

static int s_start_mt5(const char *drop_reply)
{
    /* 100004 is a cent account (USC), 100005 a EUR account, 100006 a JPY account (no rule for it). */
    char *args[] = { "mt5", "--listen", "127.0.0.1:0", "--manager", "1000:ManagerPw1", "--account",
                     "100001:InvPw1:0", "--account", "100002:InvPw2:0", "--account", "100003:InvPw3:0",
                     "--group", "real\\cent:USC:2", "--group", "real\\eur:EUR:2", "--group", "real\\jpy:JPY:0",
                     "--account", "100004:InvPw4:0:real\\cent", "--account", "100005:InvPw5:0:real\\eur",
                     "--account", "100006:InvPw6:0:real\\jpy", "--drop-reply", (char *) drop_reply, NULL };
    return s_spawn(&s_mt5, "mt5", args);
}

static int s_start_all(const char *drop_reply)
{
    char client_pub[65];
    cobo_pubkey_from_seed(S_CLIENT_SEED, client_pub);
    char *cobo_args[] = { "cobo", "--listen", "127.0.0.1:0", "--key-seed", S_SIM_SEED, "--client-key", client_pub, NULL };
    char *tg_args[] = { "telegram", "--listen", "127.0.0.1:0", "--token", S_TG_TOKEN, NULL };
    if (s_start_mt5(drop_reply) != 0 || s_spawn(&s_cobo, "cobo", cobo_args) != 0 ||
        s_spawn(&s_tg, "telegram", tg_args) != 0) {
        fprintf(stderr, "could not start the simulators (KASA_BIN=%s)\n", s_kasa_bin());
        s_stop_all();
        return -1;
    }
    return 0;
}

/* ---- HTTP and JSON ----------------------------------------------------------------------------- */

static size_t s_on_body(char *data, size_t size, size_t n, void *arg)
{
    jbuf_add(arg, data, size * n);
    return size * n;
}

/* method GET or POST (body may be NULL); fills *doc from the JSON answer. Returns the HTTP status. */
static long s_http(const char *method, int port, const char *path, const char *body, bson_t *doc)
{
    char url[300];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    jbuf_t b;
    jbuf_init(&b);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (strcmp(method, "POST") == 0)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    char err[100];
    if (doc && json_parse(b.data ? b.data : "{}", b.len ? b.len : 2, doc, err, sizeof err) != 0)
        bson_init(doc);
    jbuf_free(&b);
    return status;
}

/* The exact balance text of login in the MT5 simulator, and its deal count. */
static void s_account(uint64_t login, char *balance, size_t len, int64_t *deals)
{
    bson_t doc;
    s_http("GET", s_mt5.port, "/sim/accounts", NULL, &doc);
    snprintf(balance, len, "?");
    *deals = -1;
    for (int i = 0; i < 16; i++) {
        char path[64];
        int64_t l = 0;
        snprintf(path, sizeof path, "accounts.%d.login", i);
        if (json_get_i64(&doc, path, &l) != 0)
            break;
        if ((uint64_t) l != login)
            continue;
        snprintf(path, sizeof path, "accounts.%d.balance", i);
        const char *bal = json_get_str(&doc, path);
        snprintf(balance, len, "%s", bal ? bal : "?");
        snprintf(path, sizeof path, "accounts.%d.deals", i);
        json_get_i64(&doc, path, deals);
    }
    bson_destroy(&doc);
}

/* The tickets of login's deals whose comment is ref; returns how many. */
static int s_deals_with(uint64_t login, const char *ref, uint64_t *first_ticket)
{
    char path[96];
    snprintf(path, sizeof path, "/sim/deals?login=%llu", (unsigned long long) login);
    bson_t doc;
    s_http("GET", s_mt5.port, path, NULL, &doc);
    int n = 0;
    for (int i = 0; i < 1000; i++) {
        int64_t t;
        snprintf(path, sizeof path, "deals.%d.ticket", i);
        if (json_get_i64(&doc, path, &t) != 0)
            break;
        snprintf(path, sizeof path, "deals.%d.comment", i);
        const char *c = json_get_str(&doc, path);
        if (c && strcmp(c, ref) == 0) {
            if (!n && first_ticket)
                *first_ticket = (uint64_t) t;
            n++;
        }
    }
    bson_destroy(&doc);
    return n;
}

/* Asks the Cobo simulator for a completed deposit; fills tx with Cobo's own view of it (as the
 * verified webhook would bring it). 0 or -1. */
static int s_cobo_deposit(const char *address, const char *amount, cobo_tx_t *tx)
{
    char body[300];
    snprintf(body, sizeof body,
             "{\"address\":\"%s\",\"amount\":\"%s\",\"token_id\":\"TRON_USDT\",\"chain_id\":\"TRON\","
             "\"confirmations\":1,\"final\":\"Completed\"}",
             address, amount);
    bson_t doc;
    long st = s_http("POST", s_cobo.port, "/sim/deposit", body, &doc);
    const char *id = json_get_str(&doc, "transaction_id");
    char tx_id[80];
    snprintf(tx_id, sizeof tx_id, "%s", id ? id : "");
    bson_destroy(&doc);
    if (st != 201 || !tx_id[0])
        return -1;
    char url[128], err[200], pub[65];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v2", s_cobo.port);
    cobo_pubkey_from_seed(S_CLIENT_SEED, pub);
    cobo_client_t *c = cobo_client_new(url, pub, S_CLIENT_SEED, s_cobo.pubkey, 5000, err, sizeof err);
    int rc = -1;
    for (int i = 0; c && rc != 0 && i < 20; i++)   /* the simulator may be told to fail some calls */
        rc = cobo_get_transaction(c, tx_id, tx, err, sizeof err) == COBO_OK ? 0 : -1;
    if (rc)
        fprintf(stderr, "cobo_get_transaction: %s\n", err);
    cobo_client_destroy(&c);
    return rc;
}

/* ---- the pipeline ------------------------------------------------------------------------------ */

static void s_config(config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->journal_dir, sizeof cfg->journal_dir, "%s", s_dir);
    snprintf(cfg->cobo_api_url, sizeof cfg->cobo_api_url, "http://127.0.0.1:%d/v2", s_cobo.port);
    snprintf(cfg->cobo_api_secret, sizeof cfg->cobo_api_secret, "%s", S_CLIENT_SEED);
    cobo_pubkey_from_seed(S_CLIENT_SEED, cfg->cobo_api_key);
    snprintf(cfg->cobo_webhook_pubkey, sizeof cfg->cobo_webhook_pubkey, "%s", s_cobo.pubkey);
    snprintf(cfg->mt5_url, sizeof cfg->mt5_url, "http://127.0.0.1:%d", s_mt5.port);
    cfg->mt5_login = 1000;
    snprintf(cfg->mt5_password, sizeof cfg->mt5_password, "ManagerPw1");
    snprintf(cfg->telegram_api_url, sizeof cfg->telegram_api_url, "http://127.0.0.1:%d", s_tg.port);
    snprintf(cfg->telegram_bot_token, sizeof cfg->telegram_bot_token, "%s", S_TG_TOKEN);
    snprintf(cfg->telegram_chat_id, sizeof cfg->telegram_chat_id, "-100123");
    /* TRON_USDT on USD accounts 1:0:1; on cent accounts 100:50:1 (1 USD = 100 USC, a 0.50 USD fee);
     * on EUR accounts 0.92:0.46:1; none on JPY accounts. */
    static const char *const rules[][4] = { { "USD", "1", "0", "1" }, { "USC", "100", "50", "1" },
                                            { "EUR", "0.92", "0.46", "1" } };
    cfg->token_count = 3;
    for (int i = 0; i < 3; i++) {
        config_token_t *t = &cfg->tokens[i];
        snprintf(t->token_id, sizeof t->token_id, "TRON_USDT");
        snprintf(t->currency, sizeof t->currency, "%s", rules[i][0]);
        money_parse(rules[i][1], &t->rate, NULL, 0);
        money_parse(rules[i][2], &t->fee, NULL, 0);
        money_parse(rules[i][3], &t->minimum, NULL, 0);
    }
    money_parse("10000", &cfg->auto_credit_limit, NULL, 0);
    cfg->crediters = 2;
    cfg->mt5_settle_s = 2;   /* short, but longer than the late executions the tests inject */
}

/* A fresh config for s_dir in *cfg, the journal there and a pipeline on it; NULL (nothing left
 * open) on failure. */
static pipeline_t *s_open(config_t *cfg, journal_t **j, char *err, size_t errlen)
{
    s_config(cfg);
    return support_pipeline_open(s_dir, cfg, j, err, errlen);
}

static int s_new_dir(const char *name)
{
    snprintf(s_dir, sizeof s_dir, "%s/%s", s_base, name);
    return mkdir(s_dir, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

/* Checks that a new directory NAME becomes s_dir and that a journal opens there; returns it or NULL. */
static journal_t *s_start_journal(const char *name, char *err, size_t errlen)
{
    CHECK(s_new_dir(name) == 0);
    journal_t *j = journal_open(s_dir, NULL, err, errlen);
    CHECK(j != NULL);
    return j;
}

/* Checks that a new directory NAME becomes s_dir, then s_open()s there and checks it opened. */
static pipeline_t *s_start(const char *name, config_t *cfg, journal_t **j, char *err, size_t errlen)
{
    CHECK(s_new_dir(name) == 0);
    pipeline_t *p = s_open(cfg, j, err, errlen);
    CHECK(p != NULL);
    return p;
}

/* A pipeline on the journal *j already open on s_dir (a restart), with settle_s (0: s_config's);
 * NULL (and *j destroyed) when it does not start, which is a failure. */
static pipeline_t *s_restart(journal_t **j, int settle_s)
{
    char err[256] = "";
    config_t cfg;
    s_config(&cfg);
    if (settle_s)
        cfg.mt5_settle_s = settle_s;
    pipeline_t *p = pipeline_new(*j, &cfg, err, sizeof err);
    CHECK(p != NULL);
    if (!p) {
        fprintf(stderr, "  pipeline_new: %s\n", err);
        journal_destroy(j);
    }
    return p;
}

/* An operator's action by "admin:t" from the test. */
static int s_admin(pipeline_t *p, const char *tx_id, desk_action_t action, const char *reason, char *err, size_t errlen)
{
    desk_request_t req = { tx_id, action, 0, "admin:t", "test", reason };
    return pipeline_admin(p, &req, err, errlen);
}

/* Waits (up to timeout_ms) until tx reaches state; fills *v. 0, or -1 on timeout. */

static int s_wait_state(pipeline_t *p, const char *tx, deposit_state_t state, deposit_view_t *v, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        if (pipeline_deposit(p, tx, v) == 0 && v->state == state)
            return 0;
        usleep(20 * 1000);
    }
    return -1;
}

static void test_deposit_is_credited_with_the_exact_amount_and_notified(void)
{
    char err[256] = "";
    journal_t *j;
    config_t cfg;
    pipeline_t *p = s_start("credit", &cfg, &j, err, sizeof err);
    if (!p) {
        fprintf(stderr, "pipeline_new: %s\n", err);
        return;
    }
    CHECK_EQ_INT(pipeline_link(p, "TSimAddr1", "TRON", 100001, "test", err, sizeof err), 0);
    cobo_tx_t tx;
    CHECK(s_cobo_deposit("TSimAddr1", "250.505", &tx) == 0);
    CHECK_EQ_INT(pipeline_ingest(p, &tx, err, sizeof err), 201);
    CHECK_EQ_INT(pipeline_ingest(p, &tx, err, sizeof err), 200);
    deposit_view_t v;
    CHECK(s_wait_state(p, tx.tx_id, DEPOSIT_NOTIFIED, &v, 20000) == 0);
    CHECK_EQ_INT(v.login, 100001);
    CHECK_EQ_INT(v.credit_minor, 25050);   /* 250.505 at rate 1, 2 digits: rounded down */
    CHECK_EQ_INT(v.digits, 2);
    CHECK(v.ticket > 0);
    char bal[48];
    int64_t deals;
    s_account(100001, bal, sizeof bal, &deals);
    CHECK_EQ_STR(bal, "250.50");
    CHECK_EQ_INT(deals, 1);
    char ref[32];
    uint64_t ticket = 0;
    crediter_ref(tx.tx_id, ref);
    CHECK_EQ_INT(s_deals_with(100001, ref, &ticket), 1);
    CHECK_EQ_INT(ticket, v.ticket);
    /* the notice reached the chat, with the transaction id */
    bson_t doc;
    CHECK_EQ_INT(s_http("GET", s_tg.port, "/sim/messages", NULL, &doc), 200);
    const char *text = json_get_str(&doc, "messages.0.text");
    CHECK(text && strstr(text, tx.tx_id) && strstr(text, "250.50") && strstr(text, "100001"));
    bson_destroy(&doc);
    /* a repeated webhook after all that changes nothing */
    CHECK_EQ_INT(pipeline_ingest(p, &tx, err, sizeof err), 200);
    pipeline_destroy(&p);
    journal_destroy(&j);
}

static void test_dropped_mt5_reply_still_credits_exactly_once(void)
{
    s_stop(&s_mt5);
    CHECK(s_start_mt5("1") == 0);   /* every balance deal is applied, then the reply is dropped */
    char err[256] = "";
    journal_t *j;
    config_t cfg;
    pipeline_t *p = s_start("drop", &cfg, &j, err, sizeof err);
    if (!p)
        return;
    CHECK_EQ_INT(pipeline_link(p, "TSimAddr2", "TRON", 100002, "test", err, sizeof err), 0);
    cobo_tx_t tx;
    CHECK(s_cobo_deposit("TSimAddr2", "75", &tx) == 0);
    CHECK_EQ_INT(pipeline_ingest(p, &tx, err, sizeof err), 201);
    char ref[32];
    crediter_ref(tx.tx_id, ref);
    int applied = 0;
    for (int i = 0; i < 500 && !applied; i++) {   /* wait for MT5 to apply it (reply dropped) */
        applied = s_deals_with(100002, ref, NULL);
        if (!applied)
            usleep(20 * 1000);
    }
    CHECK_EQ_INT(applied, 1);
    bson_t doc;
    CHECK_EQ_INT(s_http("POST", s_mt5.port, "/sim/faults", "{\"drop_reply\":0}", &doc), 200);
    bson_destroy(&doc);
    deposit_view_t v;
    CHECK(s_wait_state(p, tx.tx_id, DEPOSIT_NOTIFIED, &v, 30000) == 0);
    uint64_t ticket = 0;
    CHECK_EQ_INT(s_deals_with(100002, ref, &ticket), 1);   /* exactly once */
    CHECK_EQ_INT(v.ticket, ticket);
    char bal[48];
    int64_t deals;
    s_account(100002, bal, sizeof bal, &deals);
    CHECK_EQ_STR(bal, "75.00");
    CHECK_EQ_INT(deals, 1);
    pipeline_destroy(&p);
    journal_destroy(&j);
}

/* Appends one record to j. */
static void s_put(journal_t *j, const record_t *r)
{
    uint8_t *b = NULL;
    size_t n = 0;
    char err[160];
    CHECK(record_encode(r, &b, &n, err, sizeof err) == 0);
    CHECK(b && journal_append(j, b, n) > 0);
    free(b);
}

/* Journals tx RECEIVED then LOCKED for login (minor units, 2 digits), and, when attempt_ms is not
 * 0, a credit attempt made at attempt_ms (kasa's clock). */
static void s_locked(journal_t *j, const char *tx, uint64_t login, int64_t minor, int64_t attempt_ms)
{
    record_t r;
    record_init(&r, RECORD_DEPOSIT);
    r.time_ms = (int64_t) time(NULL) * 1000;
    snprintf(r.tx_id, sizeof r.tx_id, "%s", tx);
    snprintf(r.token_id, sizeof r.token_id, "TRON_USDT");
    snprintf(r.amount, sizeof r.amount, "%lld", (long long) minor / 100);
    snprintf(r.address, sizeof r.address, "TRestart");
    r.from = DEPOSIT_NONE;
    r.to = DEPOSIT_RECEIVED;
    r.event = DEPOSIT_EV_SEEN_COMPLETED;
    s_put(j, &r);
    r.from = DEPOSIT_RECEIVED;
    r.to = DEPOSIT_LOCKED;
    r.event = DEPOSIT_EV_CONFIRMED;
    r.login = login;
    r.credit_minor = minor;
    r.digits = 2;
    s_put(j, &r);
    if (!attempt_ms)
        return;
    record_t a;
    record_init(&a, RECORD_CREDIT_ATTEMPT);
    a.time_ms = attempt_ms;
    snprintf(a.tx_id, sizeof a.tx_id, "%s", tx);
    a.login = login;
    a.credit_minor = minor;
    a.digits = 2;
    a.attempt = 1;
    crediter_ref(tx, a.ref);
    s_put(j, &a);
}

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_locked_with_attempt(journal_t *j, const char *tx, uint64_t login, int64_t minor)
{
    s_locked(j, tx, login, minor, s_now_ms());
}

static void test_restart_with_an_attempt_reconciles_and_never_sends_twice(void)
{
    char err[256] = "";
    journal_t *j = s_start_journal("restart", err, sizeof err);
    if (!j)
        return;
    /* "a0000000-...": the deal went through before the crash; "b0000000-...": it never reached MT5. */
    const char *done = "a0000000-0000-4000-8000-000000000001", *lost = "b0000000-0000-4000-8000-000000000002";
    s_locked_with_attempt(j, done, 100003, 1200);
    s_locked_with_attempt(j, lost, 100003, 3400);
    char url[64], ref[32];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", s_mt5.port);
    mt5_client_t *m = mt5_client_new(url, 1000, "ManagerPw1", NULL, 5000);
    uint64_t pre = 0;
    crediter_ref(done, ref);
    CHECK(m && mt5_balance(m, 100003, 1200, 2, ref, &pre, err, sizeof err) == MT5_OK);
    mt5_client_destroy(&m);

    pipeline_t *p = s_restart(&j, 0);
    if (!p)
        return;
    deposit_view_t v;
    CHECK(s_wait_state(p, done, DEPOSIT_NOTIFIED, &v, 20000) == 0);
    CHECK_EQ_INT(v.ticket, pre);   /* found by its reference, not sent again */
    CHECK(s_wait_state(p, lost, DEPOSIT_NOTIFIED, &v, 20000) == 0);
    uint64_t t2 = 0;
    crediter_ref(lost, ref);
    CHECK_EQ_INT(s_deals_with(100003, ref, &t2), 1);
    CHECK_EQ_INT(v.ticket, t2);
    crediter_ref(done, ref);
    CHECK_EQ_INT(s_deals_with(100003, ref, NULL), 1);
    char bal[48];
    int64_t deals;
    s_account(100003, bal, sizeof bal, &deals);
    CHECK_EQ_STR(bal, "46.00");
    CHECK_EQ_INT(deals, 2);
    pipeline_destroy(&p);
    journal_destroy(&j);
}

static void test_locker_holds_refuses_and_an_admin_releases(void)
{
    char err[256] = "";
    journal_t *j;
    config_t cfg;
    pipeline_t *p = s_start("rules", &cfg, &j, err, sizeof err);
    if (!p)
        return;
    CHECK_EQ_INT(pipeline_link(p, "TRules1", "TRON", 100001, "test", err, sizeof err), 0);
    cobo_tx_t unlinked, small, big, tampered;
    CHECK(s_cobo_deposit("TUnlinked", "12", &unlinked) == 0);
    CHECK(s_cobo_deposit("TRules1", "0.5", &small) == 0);
    CHECK(s_cobo_deposit("TRules1", "20000", &big) == 0);
    CHECK(s_cobo_deposit("TRules1", "5", &tampered) == 0);
    snprintf(tampered.amount, sizeof tampered.amount, "5000");   /* webhook says more than Cobo */
    CHECK_EQ_INT(pipeline_ingest(p, &unlinked, err, sizeof err), 201);
    CHECK_EQ_INT(pipeline_ingest(p, &small, err, sizeof err), 201);
    CHECK_EQ_INT(pipeline_ingest(p, &big, err, sizeof err), 201);
    CHECK_EQ_INT(pipeline_ingest(p, &tampered, err, sizeof err), 201);
    deposit_view_t v;
    CHECK(s_wait_state(p, unlinked.tx_id, DEPOSIT_HELD, &v, 10000) == 0);
    CHECK_EQ_STR(v.reason, "address not linked to any account");
    CHECK(s_wait_state(p, small.tx_id, DEPOSIT_HELD, &v, 10000) == 0);   /* the money arrived: a person decides */
    CHECK(strstr(v.reason, "below minimum") != NULL);
    CHECK(s_wait_state(p, big.tx_id, DEPOSIT_HELD, &v, 10000) == 0);
    CHECK(strstr(v.reason, "over the auto-credit limit") != NULL);
    CHECK(s_wait_state(p, tampered.tx_id, DEPOSIT_HELD, &v, 10000) == 0);
    CHECK(strstr(v.reason, "amount differs") != NULL);
    /* A person links the address and retries: it goes through the locker again and is credited. */
    CHECK_EQ_INT(s_admin(p, small.tx_id, DESK_REJECT, "returned", err, sizeof err), 0);
    CHECK(pipeline_deposit(p, small.tx_id, &v) == 0 && v.state == DEPOSIT_REJECTED);
    CHECK_EQ_INT(s_admin(p, small.tx_id, DESK_RETRY, "not held", err, sizeof err), -1);
    CHECK_EQ_INT(pipeline_link(p, "TUnlinked", "TRON", 100001, "admin:t", err, sizeof err), 0);
    CHECK_EQ_INT(s_admin(p, unlinked.tx_id, DESK_RETRY, "linked", err, sizeof err), 0);
    CHECK(s_wait_state(p, unlinked.tx_id, DEPOSIT_NOTIFIED, &v, 20000) == 0);
    CHECK_EQ_INT(v.credit_minor, 1200);
    CHECK_EQ_INT(s_admin(p, big.tx_id, DESK_REJECT, "too big", err, sizeof err), 0);
    CHECK(pipeline_deposit(p, big.tx_id, &v) == 0 && v.state == DEPOSIT_REJECTED);
    pipeline_destroy(&p);
    journal_destroy(&j);

    /* The replay tool sees the held one and what a restart would do. */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "'%s' replay '%s' > '%s/replay.txt' 2>&1", s_kasa_bin(), s_dir, s_base);
    CHECK_EQ_INT(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "grep -q '%s HELD restart=\"needs a person\"' '%s/replay.txt'", tampered.tx_id, s_base);
    CHECK_EQ_INT(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "grep -q '%s' '%s/replay.txt'", unlinked.tx_id, s_base);
    CHECK(system(cmd) != 0);   /* finished: not shown without --all */
}

static void test_mt5_permanent_refusal_holds_with_the_reason(void)
{
    bson_t doc;
    CHECK_EQ_INT(s_http("POST", s_mt5.port, "/sim/faults",
                        "{\"permanent_login\":100002,\"permanent_retcode\":\"8 Not enough permissions\"}", &doc),
                 200);
    bson_destroy(&doc);
    char err[256] = "";
    journal_t *j;
    config_t cfg;
    pipeline_t *p = s_start("permanent", &cfg, &j, err, sizeof err);
    if (!p)
        return;
    CHECK_EQ_INT(pipeline_link(p, "TPerm", "TRON", 100002, "test", err, sizeof err), 0);
    cobo_tx_t tx;
    CHECK(s_cobo_deposit("TPerm", "3", &tx) == 0);
    CHECK_EQ_INT(pipeline_ingest(p, &tx, err, sizeof err), 201);
    deposit_view_t v;
    CHECK(s_wait_state(p, tx.tx_id, DEPOSIT_HELD, &v, 20000) == 0);
    CHECK(strstr(v.reason, "MT5 refused") != NULL);
    pipeline_destroy(&p);
    journal_destroy(&j);
    CHECK_EQ_INT(s_http("POST", s_mt5.port, "/sim/reset", "", &doc), 200);
    bson_destroy(&doc);
}


/* The balance of login in minor units (2 digits), from the MT5 simulator. */
static int64_t s_balance_minor(uint64_t login)
{
    char bal[48];
    int64_t deals, minor = -1;
    s_account(login, bal, sizeof bal, &deals);
    if (mt5_parse_amount(bal, 2, &minor) != 0)
        return -1;
    return minor;
}

static void test_chaos_every_deposit_is_credited_exactly_once(void)
{
    bson_t doc;
    /* MT5 drops 30% of balance replies after applying them and loses the session on 20% of calls;
     * Cobo answers 30% of API calls with 503/2026. */
    CHECK_EQ_INT(s_http("POST", s_mt5.port, "/sim/faults", "{\"drop_reply\":0.3,\"session_loss\":0.2}", &doc), 200);
    bson_destroy(&doc);
    CHECK_EQ_INT(s_http("POST", s_cobo.port, "/sim/faults", "{\"fail_rate_pct\":30}", &doc), 200);
    bson_destroy(&doc);
    char err[256] = "";
    journal_t *j;
    config_t cfg;
    pipeline_t *p = s_start("chaos", &cfg, &j, err, sizeof err);
    if (!p)
        return;
    uint64_t logins[3] = { 100001, 100002, 100003 };
    int64_t before[3], want[3] = { 0, 0, 0 };
    for (int i = 0; i < 3; i++) {
        char addr[32];
        snprintf(addr, sizeof addr, "TChaos%d", i);
        CHECK_EQ_INT(pipeline_link(p, addr, "TRON", logins[i], "test", err, sizeof err), 0);
        before[i] = s_balance_minor(logins[i]);
    }
    enum { N = 20 };
    char ids[N][80];
    for (int i = 0; i < N; i++) {
        char addr[32], amount[32];
        snprintf(addr, sizeof addr, "TChaos%d", i % 3);
        snprintf(amount, sizeof amount, "%d.%02d", 1 + i, i * 7 % 100);
        cobo_tx_t tx;
        CHECK(s_cobo_deposit(addr, amount, &tx) == 0);
        snprintf(ids[i], sizeof ids[i], "%s", tx.tx_id);
        want[i % 3] += (1 + i) * 100 + i * 7 % 100;
        CHECK_EQ_INT(pipeline_ingest(p, &tx, err, sizeof err), 201);
    }
    int notified = 0;
    for (int i = 0; i < N; i++) {
        deposit_view_t v;
        if (s_wait_state(p, ids[i], DEPOSIT_NOTIFIED, &v, 60000) == 0)
            notified++;
        char ref[32];
        crediter_ref(ids[i], ref);
        CHECK_EQ_INT(s_deals_with(logins[i % 3], ref, NULL), 1);
    }
    CHECK_EQ_INT(notified, N);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(s_balance_minor(logins[i]) - before[i], want[i]);
    pipeline_destroy(&p);
    journal_destroy(&j);
    CHECK_EQ_INT(s_http("POST", s_mt5.port, "/sim/faults", "{\"drop_reply\":0,\"session_loss\":0}", &doc), 200);
    bson_destroy(&doc);
    CHECK_EQ_INT(s_http("POST", s_cobo.port, "/sim/faults", "{\"fail_rate_pct\":0}", &doc), 200);
    bson_destroy(&doc);
}

static void test_notice_retries_transient_and_records_permanent_failure(void)
{
    char err[256] = "";
    journal_t *j;
    config_t cfg;
    pipeline_t *p = s_start("notice", &cfg, &j, err, sizeof err);
    if (!p)
        return;
    CHECK_EQ_INT(pipeline_link(p, "TNotice", "TRON", 100001, "test", err, sizeof err), 0);
    bson_t doc;
    CHECK_EQ_INT(s_http("POST", s_tg.port, "/sim/faults", "{\"fail_next\":2,\"status\":500}", &doc), 200);
    bson_destroy(&doc);
    cobo_tx_t a, b;
    CHECK(s_cobo_deposit("TNotice", "2", &a) == 0);
    CHECK_EQ_INT(pipeline_ingest(p, &a, err, sizeof err), 201);
    deposit_view_t v;
    CHECK(s_wait_state(p, a.tx_id, DEPOSIT_NOTIFIED, &v, 20000) == 0);   /* after two 500s */
    CHECK_EQ_INT(s_http("POST", s_tg.port, "/sim/faults", "{\"fail_next\":1,\"status\":400}", &doc), 200);
    bson_destroy(&doc);
    CHECK(s_cobo_deposit("TNotice", "3", &b) == 0);
    CHECK_EQ_INT(pipeline_ingest(p, &b, err, sizeof err), 201);
    int failed = 0;
    for (int i = 0; i < 500 && !failed; i++) {
        if (pipeline_deposit(p, b.tx_id, &v) == 0 && strstr(v.reason, "Telegram refused"))
            failed = 1;
        else
            usleep(20 * 1000);
    }
    CHECK(failed);
    CHECK_EQ_INT(v.state, DEPOSIT_CREDITED);   /* a failed notice never undoes a credit */
    CHECK(v.ticket > 0);
    pipeline_destroy(&p);
    journal_destroy(&j);
    /* a restart does not send it again: nothing to resume */
    p = support_pipeline_open(s_dir, &cfg, &j, err, sizeof err);
    CHECK(p && pipeline_deposit(p, b.tx_id, &v) == 0 && v.state == DEPOSIT_CREDITED);
    pipeline_destroy(&p);
    journal_destroy(&j);
}

static void test_held_after_an_attempt_is_reconciled_when_an_admin_retries(void)
{
    CHECK(s_new_dir("heldretry") == 0);
    char err[256] = "";
    cobo_tx_t tx;
    CHECK(s_cobo_deposit("THeld", "9", &tx) == 0);
    journal_t *j = journal_open(s_dir, NULL, err, sizeof err);
    CHECK(j != NULL);
    if (!j)
        return;
    /* Journal: linked, RECEIVED, LOCKED, an attempt (the deal reached MT5), then Cobo said Failed
     * while it was LOCKED, so it was HELD. */
    record_t l;
    record_init(&l, RECORD_ADDRESS_LINK);
    snprintf(l.address, sizeof l.address, "THeld");
    l.login = 100002;
    s_put(j, &l);
    record_t r;
    record_init(&r, RECORD_DEPOSIT);
    r.time_ms = (int64_t) time(NULL) * 1000;
    snprintf(r.tx_id, sizeof r.tx_id, "%s", tx.tx_id);
    snprintf(r.token_id, sizeof r.token_id, "TRON_USDT");
    snprintf(r.amount, sizeof r.amount, "9");
    snprintf(r.address, sizeof r.address, "THeld");
    r.to = DEPOSIT_RECEIVED;
    r.event = DEPOSIT_EV_SEEN_COMPLETED;
    s_put(j, &r);
    r.from = DEPOSIT_RECEIVED;
    r.to = DEPOSIT_LOCKED;
    r.event = DEPOSIT_EV_CONFIRMED;
    r.login = 100002;
    r.credit_minor = 900;
    r.digits = 2;
    s_put(j, &r);
    record_t a;
    record_init(&a, RECORD_CREDIT_ATTEMPT);
    a.time_ms = r.time_ms;
    snprintf(a.tx_id, sizeof a.tx_id, "%s", tx.tx_id);
    a.login = 100002;
    a.credit_minor = 900;
    a.digits = 2;
    a.attempt = 1;
    crediter_ref(tx.tx_id, a.ref);
    s_put(j, &a);
    r.from = DEPOSIT_LOCKED;
    r.to = DEPOSIT_HELD;
    r.event = DEPOSIT_EV_SEEN_FAILED;
    snprintf(r.reason, sizeof r.reason, "Cobo says Failed");
    s_put(j, &r);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", s_mt5.port);
    mt5_client_t *m = mt5_client_new(url, 1000, "ManagerPw1", NULL, 5000);
    uint64_t pre = 0;
    CHECK(m && mt5_balance(m, 100002, 900, 2, a.ref, &pre, err, sizeof err) == MT5_OK);
    mt5_client_destroy(&m);

    pipeline_t *p = s_restart(&j, 0);
    if (!p)
        return;
    deposit_view_t v;
    CHECK(pipeline_deposit(p, tx.tx_id, &v) == 0 && v.state == DEPOSIT_HELD);
    CHECK_EQ_INT(s_admin(p, tx.tx_id, DESK_RETRY, "Cobo fixed it", err, sizeof err), 0);
    CHECK(s_wait_state(p, tx.tx_id, DEPOSIT_NOTIFIED, &v, 20000) == 0);
    CHECK_EQ_INT(v.ticket, pre);                              /* the deal found, not a second one */
    CHECK_EQ_INT(s_deals_with(100002, a.ref, NULL), 1);
    pipeline_destroy(&p);
    journal_destroy(&j);
}

/* How many records of kind for tx the journal in dir holds: for RECORD_DEPOSIT those of event ev
 * (ev < 0: any), for RECORD_ALERT those named alert (NULL: any); the last one's tickets in *ticket
 * and *ticket2 (each may be NULL). -1 if unreadable. */
static int s_count_kind(const char *dir, const char *tx, record_kind_t kind, int ev, const char *alert,
                        uint64_t *ticket, uint64_t *ticket2)
{
    char err[200] = "";
    journal_reader_t *rd = journal_reader_open(dir, 1, err, sizeof err);
    if (!rd)
        return -1;
    int n = 0;
    journal_entry_t en;
    int rc;
    while ((rc = journal_reader_next(rd, &en)) == 1) {
        record_t r;
        char why[96];
        if (record_decode(en.payload, en.len, &r, why, sizeof why) != 0 || r.kind != kind || strcmp(r.tx_id, tx) != 0 ||
            (ev >= 0 && (int) r.event != ev) || (alert && strcmp(r.alert, alert) != 0))
            continue;
        n++;
        if (ticket)
            *ticket = r.ticket;
        if (ticket2)
            *ticket2 = r.ticket2;
    }
    journal_reader_destroy(&rd);
    return rc == 0 ? n : -1;
}

/* How many deposit records of tx with event ev the journal in dir holds. -1 if unreadable. */
static int s_count_events(const char *dir, const char *tx, deposit_event_t ev)
{
    return s_count_kind(dir, tx, RECORD_DEPOSIT, (int) ev, NULL, NULL, NULL);
}

/* A failure webhook arrives while the balance call is in flight (MT5 answers slowly): the deposit
 * is HELD; the call then succeeds. The credit is recorded (HELD → CREDITED) with an ALERT that
 * carries the ticket, instead of living only in a log line. */
static void test_credit_that_succeeds_after_the_deposit_was_held_is_recorded_with_an_alert(void)
{
    char err[256] = "";
    journal_t *j;
    config_t cfg;
    pipeline_t *p = s_start("heldinflight", &cfg, &j, err, sizeof err);
    if (!p)
        return;
    CHECK_EQ_INT(pipeline_link(p, "TInFlight", "TRON", 100001, "test", err, sizeof err), 0);
    cobo_tx_t tx;
    CHECK(s_cobo_deposit("TInFlight", "12", &tx) == 0);
    bson_t doc;
    CHECK_EQ_INT(s_http("POST", s_mt5.port, "/sim/faults", "{\"delay_ms\":1200}", &doc), 200);
    bson_destroy(&doc);
    CHECK_EQ_INT(pipeline_ingest(p, &tx, err, sizeof err), 201);
    deposit_view_t v;
    CHECK(s_wait_state(p, tx.tx_id, DEPOSIT_LOCKED, &v, 10000) == 0);
    char ref[32];
    crediter_ref(tx.tx_id, ref);
    for (int i = 0; i < 300 && s_count_kind(s_dir, tx.tx_id, RECORD_CREDIT_ATTEMPT, -1, NULL, NULL, NULL) < 1; i++)
        usleep(20 * 1000);   /* the attempt is durable: the balance call is on its way */
    usleep(300 * 1000);
    cobo_tx_t failed = tx;
    snprintf(failed.status, sizeof failed.status, "Failed");
    CHECK_EQ_INT(pipeline_ingest(p, &failed, err, sizeof err), 201);
    CHECK(pipeline_deposit(p, tx.tx_id, &v) == 0 && v.state == DEPOSIT_HELD);
    CHECK(s_wait_state(p, tx.tx_id, DEPOSIT_NOTIFIED, &v, 20000) == 0);
    CHECK_EQ_INT(s_http("POST", s_mt5.port, "/sim/faults", "{\"delay_ms\":0}", &doc), 200);
    bson_destroy(&doc);
    uint64_t ticket = 0, alert_ticket = 0;
    CHECK_EQ_INT(s_deals_with(100001, ref, &ticket), 1);
    CHECK_EQ_INT(v.ticket, ticket);
    CHECK_EQ_STR(v.alert, "credit_after_hold");
    CHECK_EQ_INT(s_count_kind(s_dir, tx.tx_id, RECORD_ALERT, -1, "credit_after_hold", &alert_ticket, NULL), 1);
    CHECK_EQ_INT(alert_ticket, ticket);
    pipeline_destroy(&p);
    journal_destroy(&j);
}


static void s_sim_faults(const char *json)
{
    bson_t doc;
    CHECK_EQ_INT(s_http("POST", s_mt5.port, "/sim/faults", json, &doc), 200);
    bson_destroy(&doc);
}

/* A balance call straight to the MT5 simulator (as a run before a crash made it); its result. */
static mt5_result_t s_direct_balance(uint64_t login, int64_t minor, const char *ref, uint64_t *ticket)
{
    char url[64], err[200];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", s_mt5.port);
    mt5_client_t *m = mt5_client_new(url, 1000, "ManagerPw1", NULL, 5000);
    mt5_result_t r = m ? mt5_balance(m, login, minor, 2, ref, ticket, err, sizeof err) : MT5_TRANSIENT;
    mt5_client_destroy(&m);
    return r;
}

/* MT5 accepts the balance call, drops the connection and executes it 1.2 s later. The deposit is
 * not sent again before the settle time (2 s): the late deal is found and it is credited once. */
static void test_late_execution_is_credited_once(void)
{
    char err[256] = "";
    journal_t *j;
    config_t cfg;
    pipeline_t *p = s_start("late", &cfg, &j, err, sizeof err);
    if (!p)
        return;
    CHECK_EQ_INT(pipeline_link(p, "TLate", "TRON", 100003, "test", err, sizeof err), 0);
    cobo_tx_t tx;
    CHECK(s_cobo_deposit("TLate", "31", &tx) == 0);
    s_sim_faults("{\"late_count\":1,\"late_apply_ms\":1200,\"late_reply_ms\":0}");
    CHECK_EQ_INT(pipeline_ingest(p, &tx, err, sizeof err), 201);
    deposit_view_t v;
    CHECK(s_wait_state(p, tx.tx_id, DEPOSIT_NOTIFIED, &v, 20000) == 0);
    char ref[32];
    uint64_t ticket = 0;
    crediter_ref(tx.tx_id, ref);
    CHECK_EQ_INT(s_deals_with(100003, ref, &ticket), 1);
    CHECK_EQ_INT(v.ticket, ticket);
    CHECK_EQ_INT(s_count_kind(s_dir, tx.tx_id, RECORD_CREDIT_ATTEMPT, -1, NULL, NULL, NULL), 1);
    pipeline_destroy(&p);
    journal_destroy(&j);
}

/* A crash with the balance call in flight: the journal holds the attempt (made just now) and MT5
 * executes the call 3 s later. The restarted kasa waits the settle time (4 s) measured from the
 * attempt's journaled time, finds the deal and never sends a second one. */
static void test_restart_with_a_call_in_flight_waits_the_settle_time(void)
{
    char err[256] = "";
    journal_t *j = s_start_journal("inflight", err, sizeof err);
    if (!j)
        return;
    const char *tx = "c0000000-0000-4000-8000-000000000003";
    char ref[32];
    crediter_ref(tx, ref);
    s_locked(j, tx, 100002, 4100, s_now_ms());
    s_sim_faults("{\"late_count\":1,\"late_apply_ms\":3000,\"late_reply_ms\":0}");
    uint64_t t0 = 0;
    int64_t sent_ms = s_now_ms();
    CHECK_EQ_INT(s_direct_balance(100002, 4100, ref, &t0), MT5_AMBIGUOUS);
    pipeline_t *p = s_restart(&j, 4);
    if (!p)
        return;
    deposit_view_t v;
    CHECK(s_wait_state(p, tx, DEPOSIT_NOTIFIED, &v, 20000) == 0);
    while (s_now_ms() < sent_ms + 3500)   /* past the late execution, whatever happened before */
        usleep(50 * 1000);
    uint64_t ticket = 0;
    CHECK_EQ_INT(s_deals_with(100002, ref, &ticket), 1);
    CHECK_EQ_INT(v.ticket, ticket);
    pipeline_destroy(&p);
    journal_destroy(&j);
}

/* The journal lost the attempt (a repair, a restored backup) but MT5 has the deal: the crediter
 * searches before every send, attempt on record or not, and takes that ticket. */
static void test_no_attempt_on_record_still_reconciles_before_sending(void)
{
    char err[256] = "";
    journal_t *j = s_start_journal("noattempt", err, sizeof err);
    if (!j)
        return;
    const char *tx = "d0000000-0000-4000-8000-000000000004";
    char ref[32];
    crediter_ref(tx, ref);
    s_locked(j, tx, 100001, 5200, 0);
    uint64_t pre = 0;
    CHECK_EQ_INT(s_direct_balance(100001, 5200, ref, &pre), MT5_OK);
    pipeline_t *p = s_restart(&j, 0);
    if (!p)
        return;
    deposit_view_t v;
    CHECK(s_wait_state(p, tx, DEPOSIT_NOTIFIED, &v, 20000) == 0);
    CHECK_EQ_INT(v.ticket, pre);
    CHECK_EQ_INT(s_deals_with(100001, ref, NULL), 1);
    pipeline_destroy(&p);
    journal_destroy(&j);
}

/* Reassigned twice, A → B → C, after attempts on A and B; the deal is on A. Every login ever tried
 * is searched: found on A, never sent to C. */
static void test_every_login_ever_tried_is_searched(void)
{
    char err[256] = "";
    journal_t *j = s_start_journal("logins", err, sizeof err);
    if (!j)
        return;
    const char *tx = "e0000000-0000-4000-8000-000000000005";
    char ref[32];
    crediter_ref(tx, ref);
    int64_t t = s_now_ms() - 10000;
    s_locked(j, tx, 100001, 600, t);   /* A: attempt 1 */
    record_t r;
    record_init(&r, RECORD_DEPOSIT);
    r.time_ms = t;
    snprintf(r.tx_id, sizeof r.tx_id, "%s", tx);
    static const struct { deposit_state_t from, to; deposit_event_t ev; uint64_t login; } steps[] = {
        { DEPOSIT_LOCKED, DEPOSIT_HELD, DEPOSIT_EV_HOLD, 100001 },
        { DEPOSIT_HELD, DEPOSIT_RECEIVED, DEPOSIT_EV_ADMIN_ASSIGN, 100002 },
        { DEPOSIT_RECEIVED, DEPOSIT_LOCKED, DEPOSIT_EV_CONFIRMED, 100002 },
        { DEPOSIT_LOCKED, DEPOSIT_HELD, DEPOSIT_EV_HOLD, 100002 },   /* after attempt 2, on B */
        { DEPOSIT_HELD, DEPOSIT_RECEIVED, DEPOSIT_EV_ADMIN_ASSIGN, 100003 },
        { DEPOSIT_RECEIVED, DEPOSIT_LOCKED, DEPOSIT_EV_CONFIRMED, 100003 },
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        r.from = steps[i].from;
        r.to = steps[i].to;
        r.event = steps[i].ev;
        r.login = steps[i].login;
        r.credit_minor = 600;
        r.digits = 2;
        s_put(j, &r);
        if (i == 2) {
            record_t a;
            record_init(&a, RECORD_CREDIT_ATTEMPT);
            a.time_ms = t;
            snprintf(a.tx_id, sizeof a.tx_id, "%s", tx);
            a.login = 100002;
            a.credit_minor = 600;
            a.digits = 2;
            a.attempt = 2;
            snprintf(a.ref, sizeof a.ref, "%s", ref);
            s_put(j, &a);
        }
    }
    uint64_t pre = 0;
    CHECK_EQ_INT(s_direct_balance(100001, 600, ref, &pre), MT5_OK);   /* attempt 1 reached A */
    pipeline_t *p = s_restart(&j, 0);
    if (!p)
        return;
    deposit_view_t v;
    CHECK(s_wait_state(p, tx, DEPOSIT_NOTIFIED, &v, 20000) == 0);
    CHECK_EQ_INT(v.ticket, pre);
    CHECK_EQ_INT(v.login, 100001);
    CHECK_EQ_INT(s_deals_with(100003, ref, NULL), 0);
    CHECK_EQ_INT(s_deals_with(100002, ref, NULL), 0);
    pipeline_destroy(&p);
    journal_destroy(&j);
}

/* A call executes later than the settle time (3 s against 2 s): kasa resent after the settle
 * time, so two deals exist. The check a settle time after that credit finds both and raises a
 * double_credit alert with both tickets: a double credit is never hidden. */
static void test_second_deal_after_the_settle_time_raises_a_double_credit_alert(void)
{
    char err[256] = "";
    journal_t *j;
    config_t cfg;
    pipeline_t *p = s_start("double", &cfg, &j, err, sizeof err);
    if (!p)
        return;
    CHECK_EQ_INT(pipeline_link(p, "TDouble", "TRON", 100002, "test", err, sizeof err), 0);
    cobo_tx_t tx;
    CHECK(s_cobo_deposit("TDouble", "8", &tx) == 0);
    s_sim_faults("{\"late_count\":1,\"late_apply_ms\":3000,\"late_reply_ms\":0}");
    CHECK_EQ_INT(pipeline_ingest(p, &tx, err, sizeof err), 201);
    deposit_view_t v;
    CHECK(s_wait_state(p, tx.tx_id, DEPOSIT_NOTIFIED, &v, 20000) == 0);
    uint64_t t1 = 0, t2 = 0;
    for (int i = 0; i < 500 && s_count_kind(s_dir, tx.tx_id, RECORD_ALERT, -1, "double_credit", &t1, &t2) < 1; i++)
        usleep(20 * 1000);
    char ref[32];
    crediter_ref(tx.tx_id, ref);
    CHECK_EQ_INT(s_deals_with(100002, ref, NULL), 2);
    CHECK_EQ_INT(s_count_kind(s_dir, tx.tx_id, RECORD_ALERT, -1, "double_credit", &t1, &t2), 1);
    CHECK(t1 && t2 && t1 != t2);
    CHECK(t1 == v.ticket || t2 == v.ticket);
    CHECK(pipeline_deposit(p, tx.tx_id, &v) == 0);
    CHECK_EQ_STR(v.alert, "double_credit");
    pipeline_destroy(&p);
    journal_destroy(&j);
}

/* The deal found by reference is for another amount: HELD with both figures and an alert, never
 * taken as the credit and never sent again. */
static void test_found_deal_of_another_amount_is_held_with_both_figures(void)
{
    char err[256] = "";
    journal_t *j = s_start_journal("mismatch", err, sizeof err);
    if (!j)
        return;
    const char *tx = "f0000000-0000-4000-8000-000000000006";
    char ref[32];
    crediter_ref(tx, ref);
    s_locked(j, tx, 100001, 2500, s_now_ms() - 60000);
    uint64_t pre = 0;
    CHECK_EQ_INT(s_direct_balance(100001, 2400, ref, &pre), MT5_OK);
    pipeline_t *p = s_restart(&j, 0);
    if (!p)
        return;
    deposit_view_t v;
    CHECK(s_wait_state(p, tx, DEPOSIT_HELD, &v, 20000) == 0);
    CHECK(strstr(v.reason, "24.00") != NULL && strstr(v.reason, "25.00") != NULL);
    CHECK_EQ_STR(v.alert, "deal_mismatch");
    CHECK_EQ_INT(s_deals_with(100001, ref, NULL), 1);
    pipeline_destroy(&p);
    journal_destroy(&j);
}

/* A person rejects a held deposit a credit was attempted for: refused within the settle time; after
 * it, the search finds the deal, so the deposit is credited (with an alert), not rejected. */
static void test_reject_of_a_deposit_with_an_attempt_reconciles_first(void)
{
    char err[256] = "";
    journal_t *j = s_start_journal("reject", err, sizeof err);
    if (!j)
        return;
    const char *tx = "a1000000-0000-4000-8000-000000000007";
    char ref[32];
    crediter_ref(tx, ref);
    int64_t t = s_now_ms();
    s_locked(j, tx, 100003, 1700, t);
    record_t r;
    record_init(&r, RECORD_DEPOSIT);
    r.time_ms = t;
    snprintf(r.tx_id, sizeof r.tx_id, "%s", tx);
    r.from = DEPOSIT_LOCKED;
    r.to = DEPOSIT_HELD;
    r.event = DEPOSIT_EV_SEEN_FAILED;
    r.login = 100003;
    s_put(j, &r);
    uint64_t pre = 0;
    CHECK_EQ_INT(s_direct_balance(100003, 1700, ref, &pre), MT5_OK);
    pipeline_t *p = s_restart(&j, 0);
    if (!p)
        return;
    CHECK_EQ_INT(s_admin(p, tx, DESK_REJECT, "Cobo failed it", err, sizeof err), -1);
    CHECK(strstr(err, "may still execute") != NULL);
    usleep(2100 * 1000);
    CHECK_EQ_INT(s_admin(p, tx, DESK_REJECT, "Cobo failed it", err, sizeof err), -1);
    CHECK(strstr(err, "credited") != NULL);
    deposit_view_t v;
    CHECK(s_wait_state(p, tx, DEPOSIT_NOTIFIED, &v, 20000) == 0);
    CHECK_EQ_INT(v.ticket, pre);
    CHECK_EQ_STR(v.alert, "credit_after_hold");
    CHECK_EQ_INT(s_deals_with(100003, ref, NULL), 1);
    pipeline_destroy(&p);
    journal_destroy(&j);
}

/* How many different actors of kind with count actors the ids are routed to. */
static int s_spread(stage_kind_t kind, int count, char (*ids)[80], int n)
{
    stage_ctx_t ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.lockers = ctx.notifiers = ctx.crediters = count;
    int used[STAGE_MAX_LOCKERS] = { 0 }, distinct = 0;
    for (int i = 0; i < n; i++) {
        int k = stage_route(&ctx, kind, ids[i], 0);
        if (k < 0 || k >= count)
            return -1;
        if (!used[k]++)
            distinct++;
    }
    return distinct;
}

static void test_four_lockers_lock_and_credit_a_burst_exactly_once(void)
{
    CHECK(s_new_dir("lockers") == 0);
    char err[256] = "";
    journal_t *j = journal_open(s_dir, NULL, err, sizeof err);
    config_t cfg;
    s_config(&cfg);
    cfg.lockers = 4;
    cfg.notifiers = 2;
    pipeline_t *p = j ? pipeline_new(j, &cfg, err, sizeof err) : NULL;
    CHECK(p != NULL);
    if (!p) {
        journal_destroy(&j);
        return;
    }
    uint64_t logins[3] = { 100001, 100002, 100003 };
    int64_t before[3], want[3] = { 0, 0, 0 };
    for (int i = 0; i < 3; i++) {
        char addr[32];
        snprintf(addr, sizeof addr, "TLockers%d", i);
        CHECK_EQ_INT(pipeline_link(p, addr, "TRON", logins[i], "test", err, sizeof err), 0);
        before[i] = s_balance_minor(logins[i]);
    }
    enum { N = 40 };
    static cobo_tx_t txs[N];
    static char ids[N][80];
    for (int i = 0; i < N; i++) {   /* Cobo knows them all before the burst */
        char addr[32], amount[32];
        snprintf(addr, sizeof addr, "TLockers%d", i % 3);
        snprintf(amount, sizeof amount, "%d.%02d", 2 + i, i * 13 % 100);
        CHECK(s_cobo_deposit(addr, amount, &txs[i]) == 0);
        snprintf(ids[i], sizeof ids[i], "%s", txs[i].tx_id);
        want[i % 3] += (2 + i) * 100 + i * 13 % 100;
    }
    CHECK_EQ_INT(s_spread(STAGE_LOCKER, 4, ids, N), 4);     /* every locker has a share */
    CHECK_EQ_INT(s_spread(STAGE_NOTIFIER, 2, ids, N), 2);
    for (int i = 0; i < N; i++)   /* the burst */
        CHECK_EQ_INT(pipeline_ingest(p, &txs[i], err, sizeof err), 201);
    for (int i = 0; i < N; i++)   /* a repeat changes nothing */
        CHECK_EQ_INT(pipeline_ingest(p, &txs[i], err, sizeof err), 200);
    int notified = 0;
    for (int i = 0; i < N; i++) {
        deposit_view_t v;
        if (s_wait_state(p, ids[i], DEPOSIT_NOTIFIED, &v, 30000) == 0)
            notified++;
    }
    CHECK_EQ_INT(notified, N);
    pipeline_destroy(&p);
    journal_destroy(&j);
    for (int i = 0; i < N; i++) {
        char ref[32];
        crediter_ref(ids[i], ref);
        CHECK_EQ_INT(s_deals_with(logins[i % 3], ref, NULL), 1);
        CHECK_EQ_INT(s_count_events(s_dir, ids[i], DEPOSIT_EV_CONFIRMED), 1);    /* LOCKED once */
        CHECK_EQ_INT(s_count_events(s_dir, ids[i], DEPOSIT_EV_CREDIT_OK), 1);    /* CREDITED once */
        CHECK_EQ_INT(s_count_events(s_dir, ids[i], DEPOSIT_EV_NOTICE_SENT), 1);  /* notified once */
    }
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(s_balance_minor(logins[i]) - before[i], want[i]);
}

/* Journals tx as RECEIVED for login (as the webhook would have). */
static void s_received(journal_t *j, const cobo_tx_t *tx, uint64_t login)
{
    record_t r;
    record_init(&r, RECORD_DEPOSIT);
    r.time_ms = (int64_t) time(NULL) * 1000;
    snprintf(r.tx_id, sizeof r.tx_id, "%s", tx->tx_id);
    snprintf(r.token_id, sizeof r.token_id, "%s", tx->token_id);
    snprintf(r.chain_id, sizeof r.chain_id, "%s", tx->chain_id);
    snprintf(r.amount, sizeof r.amount, "%s", tx->amount);
    snprintf(r.address, sizeof r.address, "%s", tx->address);
    snprintf(r.status, sizeof r.status, "Completed");
    r.login = login;
    r.from = DEPOSIT_NONE;
    r.to = DEPOSIT_RECEIVED;
    r.event = DEPOSIT_EV_SEEN_COMPLETED;
    s_put(j, &r);
}

/* Journals tx as RECEIVED → LOCKED → CREDITED (ticket), its notice not yet sent. */
static void s_credited_unnotified(journal_t *j, const char *tx, uint64_t login, uint64_t ticket)
{
    record_t r;
    record_init(&r, RECORD_DEPOSIT);
    r.time_ms = (int64_t) time(NULL) * 1000;
    snprintf(r.tx_id, sizeof r.tx_id, "%s", tx);
    snprintf(r.token_id, sizeof r.token_id, "TRON_USDT");
    snprintf(r.amount, sizeof r.amount, "5");
    snprintf(r.address, sizeof r.address, "TResumeN");
    r.from = DEPOSIT_NONE;
    r.to = DEPOSIT_RECEIVED;
    r.event = DEPOSIT_EV_SEEN_COMPLETED;
    s_put(j, &r);
    r.from = DEPOSIT_RECEIVED;
    r.to = DEPOSIT_LOCKED;
    r.event = DEPOSIT_EV_CONFIRMED;
    r.login = login;
    r.credit_minor = 500;
    r.digits = 2;
    s_put(j, &r);
    r.from = DEPOSIT_LOCKED;
    r.to = DEPOSIT_CREDITED;
    r.event = DEPOSIT_EV_CREDIT_OK;
    r.ticket = ticket;
    crediter_ref(tx, r.ref);
    s_put(j, &r);
}

static void test_restart_resumes_through_several_lockers_and_notifiers(void)
{
    char err[256] = "";
    journal_t *j = s_start_journal("resume4", err, sizeof err);
    if (!j)
        return;
    enum { R = 12, C = 6 };
    static cobo_tx_t txs[R];
    static char ids[R][80], done[C][80];
    uint64_t login = 100002;
    int64_t before = s_balance_minor(login), want = 0;
    for (int i = 0; i < R; i++) {
        char amount[32];
        snprintf(amount, sizeof amount, "%d", 3 + i);
        CHECK(s_cobo_deposit("TResumeR", amount, &txs[i]) == 0);
        snprintf(ids[i], sizeof ids[i], "%s", txs[i].tx_id);
        s_received(j, &txs[i], login);
        want += (3 + i) * 100;
    }
    for (int i = 0; i < C; i++) {
        snprintf(done[i], sizeof done[i], "c%07d-0000-4000-8000-00000000000%d", i, i);
        s_credited_unnotified(j, done[i], login, 900000 + (uint64_t) i);
    }
    CHECK(s_spread(STAGE_LOCKER, 4, ids, R) >= 3);
    CHECK_EQ_INT(s_spread(STAGE_NOTIFIER, 2, done, C), 2);
    config_t cfg;
    s_config(&cfg);
    cfg.lockers = 4;
    cfg.notifiers = 2;
    pipeline_t *p = pipeline_new(j, &cfg, err, sizeof err);
    CHECK(p != NULL);
    if (!p) {
        journal_destroy(&j);
        return;
    }
    deposit_view_t v;
    int notified = 0;
    for (int i = 0; i < R; i++)
        notified += s_wait_state(p, ids[i], DEPOSIT_NOTIFIED, &v, 30000) == 0;
    for (int i = 0; i < C; i++) {
        notified += s_wait_state(p, done[i], DEPOSIT_NOTIFIED, &v, 30000) == 0;
        CHECK_EQ_INT(v.ticket, 900000 + (uint64_t) i);   /* the credit on record, not a new one */
    }
    CHECK_EQ_INT(notified, R + C);
    pipeline_destroy(&p);
    journal_destroy(&j);
    /* a second restart finds nothing to do */
    p = support_pipeline_open(s_dir, &cfg, &j, err, sizeof err);
    CHECK(p != NULL);
    usleep(300 * 1000);
    pipeline_destroy(&p);
    journal_destroy(&j);
    for (int i = 0; i < R; i++) {
        char ref[32];
        crediter_ref(ids[i], ref);
        CHECK_EQ_INT(s_deals_with(login, ref, NULL), 1);
        CHECK_EQ_INT(s_count_events(s_dir, ids[i], DEPOSIT_EV_CONFIRMED), 1);
        CHECK_EQ_INT(s_count_events(s_dir, ids[i], DEPOSIT_EV_CREDIT_OK), 1);
        CHECK_EQ_INT(s_count_events(s_dir, ids[i], DEPOSIT_EV_NOTICE_SENT), 1);
    }
    for (int i = 0; i < C; i++) {
        char ref[32];
        crediter_ref(done[i], ref);
        CHECK_EQ_INT(s_deals_with(login, ref, NULL), 0);   /* never sent to MT5 again */
        CHECK_EQ_INT(s_count_events(s_dir, done[i], DEPOSIT_EV_NOTICE_SENT), 1);
    }
    CHECK_EQ_INT(s_balance_minor(login) - before, want);
}


/* ---- the account's currency -------------------------------------------------------------------- */

/* The deposit record of tx that entered state to, from the journal in dir. 0, or -1 if none. */
static int s_record_to(const char *dir, const char *tx, deposit_state_t to, record_t *out)
{
    char err[200] = "";
    journal_reader_t *rd = journal_reader_open(dir, 1, err, sizeof err);
    if (!rd)
        return -1;
    int found = -1;
    journal_entry_t en;
    while (journal_reader_next(rd, &en) == 1) {
        record_t r;
        char why[96];
        if (record_decode(en.payload, en.len, &r, why, sizeof why) == 0 && r.kind == RECORD_DEPOSIT && r.to == to &&
            r.from != to && strcmp(r.tx_id, tx) == 0) {
            *out = r;
            found = 0;
        }
    }
    journal_reader_destroy(&rd);
    return found;
}

/* 1 when the Telegram simulator holds a message that names tx and holds text. */
static int s_notice_says(const char *tx, const char *text)
{
    bson_t doc;
    s_http("GET", s_tg.port, "/sim/messages", NULL, &doc);
    int found = 0;
    for (int i = 0; i < 10000 && !found; i++) {
        char path[48];
        snprintf(path, sizeof path, "messages.%d.text", i);
        const char *m = json_get_str(&doc, path);
        if (!m)
            break;
        found = strstr(m, tx) && strstr(m, text);
    }
    bson_destroy(&doc);
    return found;
}

/* Sets MT5 simulator faults (a JSON object); checks it took them. */
static void s_mt5_faults(const char *json)
{
    bson_t doc;
    CHECK_EQ_INT(s_http("POST", s_mt5.port, "/sim/faults", json, &doc), 200);
    bson_destroy(&doc);
}

static void s_cobo_faults(const char *json)
{
    bson_t doc;
    CHECK_EQ_INT(s_http("POST", s_cobo.port, "/sim/faults", json, &doc), 200);
    bson_destroy(&doc);
}

/* A cent (USC) account and a EUR account are credited in their own currency by their own rule,
 * with the digits of their MT5 group, and the rounding is recorded; an account whose currency has
 * no rule for the token is HELD with the reason and nothing is sent to MT5. */
static void test_credit_is_in_the_account_currency_usc_and_eur(void)
{
    char err[256] = "";
    journal_t *j;
    config_t cfg;
    pipeline_t *p = s_start("currency", &cfg, &j, err, sizeof err);
    if (!p)
        return;
    CHECK_EQ_INT(pipeline_link(p, "TCent1", "TRON", 100004, "test", err, sizeof err), 0);
    CHECK_EQ_INT(pipeline_link(p, "TEuro1", "TRON", 100005, "test", err, sizeof err), 0);
    CHECK_EQ_INT(pipeline_link(p, "TYen1", "TRON", 100006, "test", err, sizeof err), 0);
    cobo_tx_t cent, euro, yen;
    CHECK(s_cobo_deposit("TCent1", "250.505678", &cent) == 0);
    CHECK(s_cobo_deposit("TEuro1", "100.123", &euro) == 0);
    CHECK(s_cobo_deposit("TYen1", "10", &yen) == 0);
    CHECK_EQ_INT(pipeline_ingest(p, &cent, err, sizeof err), 201);
    CHECK_EQ_INT(pipeline_ingest(p, &euro, err, sizeof err), 201);
    CHECK_EQ_INT(pipeline_ingest(p, &yen, err, sizeof err), 201);
    deposit_view_t v;
    /* 250.505678 USDT x 100 = 25050.5678 USC, less the 50 USC fee = 25000.5678 → 25000.56 USC */
    CHECK(s_wait_state(p, cent.tx_id, DEPOSIT_NOTIFIED, &v, 20000) == 0);
    CHECK_EQ_INT(v.credit_minor, 2500056);
    CHECK_EQ_INT(v.digits, 2);
    CHECK_EQ_STR(v.currency, "USC");
    CHECK(s_notice_says(cent.tx_id, "25000.56 USC"));   /* the broker's chat never reads cents as dollars */
    char bal[48];
    int64_t deals;
    s_account(100004, bal, sizeof bal, &deals);
    CHECK_EQ_STR(bal, "25000.56");
    CHECK_EQ_INT(deals, 1);
    record_t locked;
    CHECK(s_record_to(s_dir, cent.tx_id, DEPOSIT_LOCKED, &locked) == 0);
    CHECK_EQ_STR(locked.remainder, "0.0078");
    CHECK_EQ_STR(locked.currency, "USC");
    /* 100.123 USDT x 0.92 = 92.11316 EUR, less 0.46 = 91.65316 → 91.65 EUR */
    CHECK(s_wait_state(p, euro.tx_id, DEPOSIT_NOTIFIED, &v, 20000) == 0);
    CHECK_EQ_INT(v.credit_minor, 9165);
    CHECK_EQ_STR(v.currency, "EUR");
    CHECK(s_notice_says(euro.tx_id, "91.65 EUR"));
    s_account(100005, bal, sizeof bal, &deals);
    CHECK_EQ_STR(bal, "91.65");
    CHECK(s_record_to(s_dir, euro.tx_id, DEPOSIT_LOCKED, &locked) == 0);
    CHECK_EQ_STR(locked.remainder, "0.00316");
    /* JPY: no rule for TRON_USDT on JPY accounts → a person decides; MT5 never called */
    CHECK(s_wait_state(p, yen.tx_id, DEPOSIT_HELD, &v, 20000) == 0);
    CHECK(strstr(v.reason, "no rule for TRON_USDT on JPY accounts") != NULL);
    s_account(100006, bal, sizeof bal, &deals);
    CHECK_EQ_INT(deals, 0);
    pipeline_destroy(&p);
    journal_destroy(&j);
}

/* A group that cannot be read (the manager lacks the right) is retried: the deposit stays RECEIVED,
 * nothing is credited with a guessed digit count or currency; once MT5 answers, it is credited in
 * the account's currency. */
static void test_unreadable_group_is_retried_never_defaulted(void)
{
    s_mt5_faults("{\"group_retcode\":\"8 Not enough permissions\"}");
    char err[256] = "";
    journal_t *j;
    config_t cfg;
    pipeline_t *p = s_start("group", &cfg, &j, err, sizeof err);
    if (!p)
        return;
    CHECK_EQ_INT(pipeline_link(p, "TCent2", "TRON", 100004, "test", err, sizeof err), 0);
    int64_t before = -1;
    char bal[48];
    s_account(100004, bal, sizeof bal, &before);
    cobo_tx_t tx;
    CHECK(s_cobo_deposit("TCent2", "3", &tx) == 0);
    CHECK_EQ_INT(pipeline_ingest(p, &tx, err, sizeof err), 201);
    usleep(1500 * 1000);
    deposit_view_t v;
    CHECK(pipeline_deposit(p, tx.tx_id, &v) == 0);
    CHECK_EQ_INT(v.state, DEPOSIT_RECEIVED);
    int64_t deals = -1;
    s_account(100004, bal, sizeof bal, &deals);
    CHECK_EQ_INT(deals, before);
    s_mt5_faults("{\"group_retcode\":\"\"}");
    CHECK(s_wait_state(p, tx.tx_id, DEPOSIT_NOTIFIED, &v, 30000) == 0);
    CHECK_EQ_INT(v.credit_minor, 25000);   /* 3 x 100 - 50 = 250.00 USC */
    CHECK_EQ_INT(v.digits, 2);
    pipeline_destroy(&p);
    journal_destroy(&j);
}

/* ---- finishing every acknowledged deposit ------------------------------------------------------ */

/* Right after its Completed webhook, Cobo's API may still say Confirming: the locker asks again with
 * backoff and credits once the API agrees, instead of holding the deposit. */
static void test_cobo_api_lagging_its_webhook_is_retried_then_credited(void)
{
    s_cobo_faults("{\"confirming_lag_ms\":1500}");
    char err[256] = "";
    journal_t *j;
    config_t cfg;
    pipeline_t *p = s_start("coblag", &cfg, &j, err, sizeof err);
    if (!p)
        return;
    CHECK_EQ_INT(pipeline_link(p, "TLag1", "TRON", 100001, "test", err, sizeof err), 0);
    cobo_tx_t tx;
    CHECK(s_cobo_deposit("TLag1", "4", &tx) == 0);   /* the helper reads it as Confirming: lagging */
    snprintf(tx.status, sizeof tx.status, "Completed");   /* the webhook came first */
    CHECK_EQ_INT(pipeline_ingest(p, &tx, err, sizeof err), 201);
    usleep(700 * 1000);
    deposit_view_t v;
    CHECK(pipeline_deposit(p, tx.tx_id, &v) == 0);
    CHECK_EQ_INT(v.state, DEPOSIT_RECEIVED);   /* still asking, not held */
    CHECK(s_wait_state(p, tx.tx_id, DEPOSIT_NOTIFIED, &v, 20000) == 0);
    CHECK_EQ_INT(v.credit_minor, 400);
    CHECK_EQ_INT(s_count_events(s_dir, tx.tx_id, DEPOSIT_EV_HOLD), 0);
    pipeline_destroy(&p);
    journal_destroy(&j);
    s_cobo_faults("{\"confirming_lag_ms\":0}");
}

/* If Cobo's API still says Confirming KASA_COBO_CONFIRM_WAIT_S after the Completed webhook, a person
 * looks: HELD with the reason, nothing credited. */
static void test_cobo_api_still_confirming_after_the_wait_is_held(void)
{
    s_cobo_faults("{\"confirming_lag_ms\":600000}");
    char err[256] = "";
    CHECK(s_new_dir("cobwait") == 0);
    config_t cfg;
    s_config(&cfg);
    cfg.cobo_confirm_wait_s = 1;
    journal_t *j;
    pipeline_t *p = support_pipeline_open(s_dir, &cfg, &j, err, sizeof err);
    CHECK(p != NULL);
    if (!p)
        return;
    CHECK_EQ_INT(pipeline_link(p, "TLag2", "TRON", 100001, "test", err, sizeof err), 0);
    cobo_tx_t tx;
    CHECK(s_cobo_deposit("TLag2", "5", &tx) == 0);   /* the helper reads it as Confirming: lagging */
    snprintf(tx.status, sizeof tx.status, "Completed");
    CHECK_EQ_INT(pipeline_ingest(p, &tx, err, sizeof err), 201);
    deposit_view_t v;
    CHECK(s_wait_state(p, tx.tx_id, DEPOSIT_HELD, &v, 15000) == 0);
    CHECK(strstr(v.reason, "Cobo says status Confirming, not Completed") != NULL);
    CHECK(strstr(v.reason, "after the Completed webhook") != NULL);
    char ref[32];
    crediter_ref(tx.tx_id, ref);
    CHECK_EQ_INT(s_deals_with(100001, ref, NULL), 0);
    pipeline_destroy(&p);
    journal_destroy(&j);
    s_cobo_faults("{\"confirming_lag_ms\":0}");
}

/* A deposit acknowledged as PENDING whose final webhook never comes (Cobo gave up) is finished by
 * asking Cobo's API once it is older than KASA_PENDING_AGE_S: Completed → credited once; Failed →
 * REJECTED. */
static void test_pending_without_its_final_webhook_is_finished_by_asking_cobo(void)
{
    char err[256] = "";
    CHECK(s_new_dir("pending") == 0);
    config_t cfg;
    s_config(&cfg);
    cfg.pending_age_s = 1;
    cfg.pending_poll_s = 1;
    journal_t *j;
    pipeline_t *p = support_pipeline_open(s_dir, &cfg, &j, err, sizeof err);
    CHECK(p != NULL);
    if (!p)
        return;
    CHECK_EQ_INT(pipeline_link(p, "TPend1", "TRON", 100002, "test", err, sizeof err), 0);
    cobo_tx_t done, failed;
    CHECK(s_cobo_deposit("TPend1", "6", &done) == 0);
    CHECK(s_cobo_deposit("TPend1", "7", &failed) == 0);
    /* only their Confirming webhooks reached kasa */
    snprintf(done.status, sizeof done.status, "Confirming");
    snprintf(failed.status, sizeof failed.status, "Confirming");
    done.confirmations = failed.confirmations = 0;
    CHECK_EQ_INT(pipeline_ingest(p, &done, err, sizeof err), 201);
    CHECK_EQ_INT(pipeline_ingest(p, &failed, err, sizeof err), 201);
    char path[160];
    snprintf(path, sizeof path, "/sim/transactions/%s", failed.tx_id);
    bson_t doc;
    CHECK_EQ_INT(s_http("POST", s_cobo.port, path, "{\"status\":\"Failed\",\"notify\":false}", &doc), 200);
    bson_destroy(&doc);
    deposit_view_t v;
    CHECK(pipeline_deposit(p, done.tx_id, &v) == 0 && v.state == DEPOSIT_PENDING);
    CHECK(s_wait_state(p, done.tx_id, DEPOSIT_NOTIFIED, &v, 20000) == 0);
    CHECK_EQ_INT(v.credit_minor, 600);
    char ref[32];
    crediter_ref(done.tx_id, ref);
    CHECK_EQ_INT(s_deals_with(100002, ref, NULL), 1);
    CHECK(s_wait_state(p, failed.tx_id, DEPOSIT_REJECTED, &v, 20000) == 0);
    CHECK(strstr(v.reason, "Failed") != NULL);
    crediter_ref(failed.tx_id, ref);
    CHECK_EQ_INT(s_deals_with(100002, ref, NULL), 0);
    pipeline_destroy(&p);
    journal_destroy(&j);
}

/* Cobo says Completed for a deposit kasa already rejected (Cobo said Failed first): nothing moves
 * and nothing is credited, but a person is told: one ALERT record (completed_after_rejected) in the
 * journal however often the webhook comes, durable before the webhook is answered. Failed after a
 * credit raises failed_after_credit (with the deal's ticket) the same way. */
static void test_completed_after_rejected_raises_one_alert(void)
{
    char err[256] = "";
    journal_t *j;
    config_t cfg;
    pipeline_t *p = s_start("lateok", &cfg, &j, err, sizeof err);
    if (!p)
        return;
    CHECK_EQ_INT(pipeline_link(p, "TLateOk", "TRON", 100003, "test", err, sizeof err), 0);
    cobo_tx_t tx;
    CHECK(s_cobo_deposit("TLateOk", "8", &tx) == 0);
    cobo_tx_t failed = tx;
    snprintf(failed.status, sizeof failed.status, "Failed");
    CHECK_EQ_INT(pipeline_ingest(p, &failed, err, sizeof err), 201);
    deposit_view_t v;
    CHECK(pipeline_deposit(p, tx.tx_id, &v) == 0 && v.state == DEPOSIT_REJECTED);
    CHECK_EQ_INT(s_count_kind(s_dir, tx.tx_id, RECORD_ALERT, -1, NULL, NULL, NULL), 0);
    CHECK_EQ_INT(pipeline_ingest(p, &tx, err, sizeof err), 200);   /* Completed, late */
    CHECK_EQ_INT(pipeline_ingest(p, &tx, err, sizeof err), 200);   /* and repeated */
    CHECK_EQ_INT(s_count_kind(s_dir, tx.tx_id, RECORD_ALERT, -1, "completed_after_rejected", NULL, NULL), 1);
    CHECK_EQ_INT(s_count_kind(s_dir, tx.tx_id, RECORD_ALERT, -1, NULL, NULL, NULL), 1);
    CHECK(pipeline_deposit(p, tx.tx_id, &v) == 0);
    CHECK_EQ_INT(v.state, DEPOSIT_REJECTED);
    CHECK_EQ_STR(v.alert, "completed_after_rejected");
    usleep(300 * 1000);
    char ref[32];
    crediter_ref(tx.tx_id, ref);
    CHECK_EQ_INT(s_deals_with(100003, ref, NULL), 0);
    /* The other way round: Failed after the deposit was credited (a reorg): the same, once. */
    cobo_tx_t ok;
    CHECK(s_cobo_deposit("TLateOk", "9", &ok) == 0);
    CHECK_EQ_INT(pipeline_ingest(p, &ok, err, sizeof err), 201);
    CHECK(s_wait_state(p, ok.tx_id, DEPOSIT_NOTIFIED, &v, 20000) == 0);
    cobo_tx_t reorg = ok;
    snprintf(reorg.status, sizeof reorg.status, "Failed");
    snprintf(reorg.sub_status, sizeof reorg.sub_status, "ReOrged");
    CHECK_EQ_INT(pipeline_ingest(p, &reorg, err, sizeof err), 200);
    CHECK_EQ_INT(pipeline_ingest(p, &reorg, err, sizeof err), 200);
    uint64_t alert_ticket = 0;
    CHECK_EQ_INT(s_count_kind(s_dir, ok.tx_id, RECORD_ALERT, -1, "failed_after_credit", &alert_ticket, NULL), 1);
    CHECK_EQ_INT(alert_ticket, v.ticket);
    CHECK(pipeline_deposit(p, ok.tx_id, &v) == 0 && v.state == DEPOSIT_NOTIFIED);
    pipeline_destroy(&p);
    journal_destroy(&j);
}

static int s_sims_started;

static void test_simulators_start(void)
{
    CHECK(s_sims_started);
}

int main(void)
{
    const char *out = getenv("KASA_TEST_OUT");
    snprintf(s_base, sizeof s_base, "%s/pipesim-XXXXXX", out && *out ? out : "/tmp");
    if (!mkdtemp(s_base)) {
        perror("mkdtemp");
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    s_sims_started = s_start_all("0") == 0;
    RUN(test_simulators_start);   /* a missing simulator is a failure, never a silent pass */
    if (!s_sims_started)
        return check_done();
    RUN(test_deposit_is_credited_with_the_exact_amount_and_notified);
    RUN(test_restart_with_an_attempt_reconciles_and_never_sends_twice);
    RUN(test_locker_holds_refuses_and_an_admin_releases);
    RUN(test_mt5_permanent_refusal_holds_with_the_reason);
    RUN(test_notice_retries_transient_and_records_permanent_failure);
    RUN(test_held_after_an_attempt_is_reconciled_when_an_admin_retries);
    RUN(test_credit_that_succeeds_after_the_deposit_was_held_is_recorded_with_an_alert);
    RUN(test_late_execution_is_credited_once);
    RUN(test_restart_with_a_call_in_flight_waits_the_settle_time);
    RUN(test_no_attempt_on_record_still_reconciles_before_sending);
    RUN(test_every_login_ever_tried_is_searched);
    RUN(test_second_deal_after_the_settle_time_raises_a_double_credit_alert);
    RUN(test_found_deal_of_another_amount_is_held_with_both_figures);
    RUN(test_reject_of_a_deposit_with_an_attempt_reconciles_first);
    RUN(test_chaos_every_deposit_is_credited_exactly_once);
    RUN(test_dropped_mt5_reply_still_credits_exactly_once);
    RUN(test_four_lockers_lock_and_credit_a_burst_exactly_once);
    RUN(test_restart_resumes_through_several_lockers_and_notifiers);
    RUN(test_credit_is_in_the_account_currency_usc_and_eur);
    RUN(test_unreadable_group_is_retried_never_defaulted);
    RUN(test_cobo_api_lagging_its_webhook_is_retried_then_credited);
    RUN(test_cobo_api_still_confirming_after_the_wait_is_held);
    RUN(test_pending_without_its_final_webhook_is_finished_by_asking_cobo);
    RUN(test_completed_after_rejected_raises_one_alert);
    s_stop_all();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_base);
    if (check_failed_ == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s_base);
    curl_global_cleanup();
    return check_done();
}
