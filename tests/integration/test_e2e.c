/* test_e2e.c — kasa end to end against its simulators: a signed webhook becomes exactly one MT5
 * balance deal of the right amount after rate and fee, and one Telegram notice; repeats and
 * reordering change nothing; unlinked, over-limit and below-minimum deposits and a login MT5 refuses
 * are never credited (HELD for a person, with the reason); a failing Telegram is retried and notified once;
 * bad signatures are refused before anything is journaled; the monitor feed shows the transitions;
 * Fee Station's gas and the broker's own transfers into a deposit address are journaled as ignored,
 * never credited; an address linked while the server runs is credited; a restart replays and
 * credits nothing twice.
 *
 * Rules in the test config: TRON_USDT rate 1, fee 0.5, minimum 1; TRON rate 0.1234, fee 0;
 * auto-credit limit 100000; MT5 accounts 100001..100010 start at 0 with 2 currency digits. */
#include "tests/check.h"
#include "tests/integration/harness.h"

static h_env_t s_env;
static int s_ready;
static char *s_dup_body; /* an event already answered, resent after a restart */

#define ADDR_A      "TE2eAddrA000000000000000000000001"   /* -> 100001 */
#define ADDR_TRX    "TE2eAddrTrx0000000000000000000003"   /* -> 100003 */
#define ADDR_DUP    "TE2eAddrDup0000000000000000000004"   /* -> 100004 */
#define ADDR_ORDER  "TE2eAddrOrder00000000000000000005"   /* -> 100005 */
#define ADDR_LATE   "TE2eAddrLate000000000000000000002"   /* -> 100002, linked while serving */
#define ADDR_NOBODY "TE2eAddrNobody0000000000000000000"   /* never linked */
#define ADDR_REFUSE "TE2eAddrRefuse0000000000000000007"   /* -> 100007, which MT5 refuses */
#define ADDR_TG     "TE2eAddrTelegram00000000000000008"   /* -> 100008 */
#define OWN_HOT     "TE2eBrokerHotWallet000000000000009"  /* KASA_OWN_ADDRESSES: the broker's own */

static h_tx_t s_tx(const char *address, const char *amount, const char *token)
{
    return h_tx(address, amount, token);
}

/* The deals on login whose amount equals minor (count), and how many deals there are in all. */
static int s_deals_of(uint64_t login, int64_t minor, int *total)
{
    return h_deals_of(&s_env, login, minor, total);
}

/* Every deal on every test account. */
static int s_all_deals(void)
{
    int sum = 0;
    for (int i = 0; i < H_MT5_ACCOUNTS; i++) {
        int n = h_mt5_deals(&s_env, (uint64_t) (H_MT5_FIRST + i), (h_deal_t[64]){ 0 }, 64);
        if (n < 0)
            return -1;
        sum += n;
    }
    return sum;
}

/* The balance the MT5 simulator reports for login, as text ("" if not found). */
static void s_balance(uint64_t login, char *out, size_t len)
{
    out[0] = '\0';
    char url[160];
    snprintf(url, sizeof url, "%s/sim/accounts", s_env.mt5_url);
    bson_t doc;
    if (h_get_json(url, &doc) != 0)
        return;
    static const char *const prefixes[] = { "a", "accounts", NULL };
    for (int p = 0; prefixes[p] && !out[0]; p++)
        for (int i = 0; i < 1000; i++) {
            char path[96];
            snprintf(path, sizeof path, "%s.%d", prefixes[p], i);
            if (!json_has(&doc, path))
                break;
            int64_t l = 0;
            snprintf(path, sizeof path, "%s.%d.Login", prefixes[p], i);
            if (json_get_i64(&doc, path, &l) != 0) {
                snprintf(path, sizeof path, "%s.%d.login", prefixes[p], i);
                json_get_i64(&doc, path, &l);
            }
            if ((uint64_t) l != login)
                continue;
            snprintf(path, sizeof path, "%s.%d.Balance", prefixes[p], i);
            const char *b = json_get_str(&doc, path);
            if (!b) {
                snprintf(path, sizeof path, "%s.%d.balance", prefixes[p], i);
                b = json_get_str(&doc, path);
            }
            if (b)
                snprintf(out, len, "%s", b);
            break;
        }
    bson_destroy(&doc);
}

/* Waits until the Telegram simulator has a message containing every needle (NULL-terminated). */
static int s_wait_message(const char *const *needles, int timeout_ms)
{
    int64_t end = h_now_ms() + timeout_ms;
    for (;;) {
        char *all = h_tg_messages(&s_env);
        int ok = all != NULL;
        for (int i = 0; ok && needles[i]; i++)
            ok = strstr(all, needles[i]) != NULL;
        free(all);
        if (ok)
            return 1;
        if (h_now_ms() >= end)
            return 0;
        h_sleep_ms(50);
    }
}

static void test_usdt_250_at_fee_0_50_credits_exactly_249_50_and_notifies(void)
{
    CHECK(s_ready);
    h_tx_t tx = s_tx(ADDR_A, "250", "TRON_USDT");
    CHECK(h_sim_deposit(&s_env, &tx, 3, -1, -1) == 0);
    CHECK_EQ_INT(h_wait_state(&s_env, tx.tx_id, DEPOSIT_NOTIFIED, 20000), DEPOSIT_NOTIFIED);
    int total = 0;
    CHECK_EQ_INT(s_deals_of(100001, 24950, &total), 1);
    CHECK_EQ_INT(total, 1);
    char bal[40];
    s_balance(100001, bal, sizeof bal);
    CHECK(h_amount_eq(bal, 24950));
    if (!h_amount_eq(bal, 24950))
        h_log("balance of 100001: '%s'", bal);
    h_jinfo_t info;
    h_journal_info(s_env.journal, tx.tx_id, &info);
    CHECK_EQ_INT(info.credited, 1);
    CHECK_EQ_INT(info.login, 100001);
    CHECK_EQ_INT(info.credit_minor, 24950);
    const char *needles[] = { "249.50", "100001", NULL };
    CHECK(s_wait_message(needles, 10000));
}

static void test_trx_at_fractional_rate_rounds_down_exactly(void)
{
    CHECK(s_ready);
    /* 123.456789 TRX * 0.1234 = 15.2345677626 -> 15.23 (rounded down, the rest recorded) */
    h_tx_t tx = s_tx(ADDR_TRX, "123.456789", "TRON");
    CHECK(h_sim_deposit(&s_env, &tx, 2, -1, -1) == 0);
    CHECK_EQ_INT(h_wait_state(&s_env, tx.tx_id, DEPOSIT_CREDITED, 20000), DEPOSIT_CREDITED);
    int total = 0;
    CHECK_EQ_INT(s_deals_of(100003, 1523, &total), 1);
    CHECK_EQ_INT(total, 1);
    h_jinfo_t info;
    h_journal_info(s_env.journal, tx.tx_id, &info);
    CHECK_EQ_INT(info.credit_minor, 1523);
}

typedef struct {
    const char *body;
    size_t len;
    long status;
} s_post_t;

static void *s_post_thread(void *arg)
{
    s_post_t *p = arg;
    h_resp_t r = h_post_webhook(&s_env, p->body, p->len);
    p->status = r.status;
    h_resp_free(&r);
    return NULL;
}

static void test_same_event_ten_times_at_once_gives_one_deal(void)
{
    CHECK(s_ready);
    h_tx_t tx = s_tx(ADDR_DUP, "100", "TRON_USDT");
    CHECK(h_sim_deposit(&s_env, &tx, 1, -1, -1) == 0);
    jbuf_t b;
    jbuf_init(&b);
    char ev[40];
    h_uuid(0xd0d0d0d0d0d0ULL, 1, ev);
    h_webhook_body(&b, ev, "wallets.transaction.succeeded", &tx);
    s_post_t posts[10];
    pthread_t th[10];
    for (int i = 0; i < 10; i++) {
        posts[i] = (s_post_t){ b.data, b.len, 0 };
        pthread_create(&th[i], NULL, s_post_thread, &posts[i]);
    }
    int created = 0;
    for (int i = 0; i < 10; i++) {
        pthread_join(th[i], NULL);
        CHECK(posts[i].status == 200 || posts[i].status == 201);
        created += posts[i].status == 201;
    }
    CHECK(created <= 1);
    CHECK_EQ_INT(h_wait_state(&s_env, tx.tx_id, DEPOSIT_CREDITED, 20000), DEPOSIT_CREDITED);
    h_sleep_ms(300);
    int total = 0;
    CHECK_EQ_INT(s_deals_of(100004, 9950, &total), 1);
    CHECK_EQ_INT(total, 1);
    h_jinfo_t info;
    h_journal_info(s_env.journal, tx.tx_id, &info);
    CHECK_EQ_INT(info.credited, 1);
    CHECK_EQ_INT(info.seen[DEPOSIT_RECEIVED], 1);
    s_dup_body = jbuf_take(&b);
}

static void test_lifecycle_reordered_and_repeated_gives_one_deal(void)
{
    CHECK(s_ready);
    h_tx_t tx = s_tx(ADDR_ORDER, "42.42", "TRON_USDT");
    /* the simulator sends created / updated x3 / succeeded, each 3 times, in shuffled order */
    CHECK(h_sim_deposit(&s_env, &tx, 3, 3, 1) == 0);
    /* and we send the same lifecycle backwards: succeeded, updated, created */
    static const char *const types[] = { "wallets.transaction.succeeded", "wallets.transaction.updated",
                                         "wallets.transaction.created" };
    static const char *const statuses[] = { "Completed", "Confirming", "Confirming" };
    for (int i = 0; i < 3; i++) {
        h_tx_t t = tx;
        snprintf(t.status, sizeof t.status, "%s", statuses[i]);
        t.confirmations = i == 0 ? 20 : (i == 1 ? 7 : 0);
        jbuf_t b;
        jbuf_init(&b);
        char ev[40];
        h_uuid(0x0bde0bde0bdeULL, (uint64_t) i, ev);
        h_webhook_body(&b, ev, types[i], &t);
        h_resp_t r = h_post_webhook(&s_env, b.data, b.len);
        CHECK(r.status == 200 || r.status == 201);
        h_resp_free(&r);
        jbuf_free(&b);
    }
    CHECK_EQ_INT(h_wait_state(&s_env, tx.tx_id, DEPOSIT_CREDITED, 20000), DEPOSIT_CREDITED);
    h_sleep_ms(500);
    int total = 0;
    CHECK_EQ_INT(s_deals_of(100005, 4192, &total), 1);
    CHECK_EQ_INT(total, 1);
    h_jinfo_t info;
    h_journal_info(s_env.journal, tx.tx_id, &info);
    CHECK_EQ_INT(info.credited, 1);
    /* a late "Confirming" never moves a deposit back */
    CHECK(info.state == DEPOSIT_CREDITED || info.state == DEPOSIT_NOTIFIED);
}

static void test_unlinked_address_is_held_and_never_credited(void)
{
    CHECK(s_ready);
    int before = s_all_deals();
    h_tx_t tx = s_tx(ADDR_NOBODY, "77", "TRON_USDT");
    CHECK(h_sim_deposit(&s_env, &tx, 1, -1, -1) == 0);
    CHECK_EQ_INT(h_wait_state(&s_env, tx.tx_id, DEPOSIT_HELD, 20000), DEPOSIT_HELD);
    h_sleep_ms(300);
    CHECK_EQ_INT(s_all_deals(), before);
    h_jinfo_t info;
    h_journal_info(s_env.journal, tx.tx_id, &info);
    CHECK_EQ_INT(info.credited, 0);
    CHECK_EQ_INT(info.attempts, 0);
    CHECK(info.reason[0] != '\0');
}

static void test_over_auto_credit_limit_is_held(void)
{
    CHECK(s_ready);
    int before = s_all_deals();
    h_tx_t tx = s_tx(ADDR_A, "100000.5", "TRON_USDT");
    CHECK(h_sim_deposit(&s_env, &tx, 1, -1, -1) == 0);
    CHECK_EQ_INT(h_wait_state(&s_env, tx.tx_id, DEPOSIT_HELD, 20000), DEPOSIT_HELD);
    h_sleep_ms(200);
    CHECK_EQ_INT(s_all_deals(), before);
}

static void test_mt5_refusing_for_good_holds_the_deposit(void)
{
    CHECK(s_ready);
    CHECK_EQ_INT(h_sim_post(s_env.mt5_url, "/sim/faults",
                            "{\"permanent_login\":100007,\"permanent_retcode\":\"8 Not enough permissions\"}"), 200);
    h_tx_t tx = s_tx(ADDR_REFUSE, "30", "TRON_USDT");
    CHECK(h_sim_deposit(&s_env, &tx, 1, -1, -1) == 0);
    CHECK_EQ_INT(h_wait_state(&s_env, tx.tx_id, DEPOSIT_HELD, 20000), DEPOSIT_HELD);
    CHECK_EQ_INT(h_mt5_deals(&s_env, 100007, (h_deal_t[8]){ 0 }, 8), 0);
    h_jinfo_t info;
    h_journal_info(s_env.journal, tx.tx_id, &info);
    CHECK(info.reason[0] != '\0');
    CHECK_EQ_INT(info.credited, 0);
    CHECK_EQ_INT(h_sim_post(s_env.mt5_url, "/sim/faults", "{\"permanent_login\":0}"), 200);
}

/* How many times needle occurs in hay. */
static int s_count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; p && (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static void test_telegram_failures_are_retried_and_notice_sent_once(void)
{
    CHECK(s_ready);
    CHECK_EQ_INT(h_sim_post(s_env.tg_url, "/sim/faults", "{\"fail_next\":2,\"status\":500}"), 200);
    h_tx_t tx = s_tx(ADDR_TG, "40", "TRON_USDT");
    CHECK(h_sim_deposit(&s_env, &tx, 1, -1, -1) == 0);
    CHECK_EQ_INT(h_wait_state(&s_env, tx.tx_id, DEPOSIT_NOTIFIED, 30000), DEPOSIT_NOTIFIED);
    char *all = h_tg_messages(&s_env);
    CHECK(all != NULL);
    CHECK_EQ_INT(s_count(all, tx.tx_id), 1);
    CHECK(all && strstr(all, "39.50"));
    free(all);
    CHECK_EQ_INT(s_deals_of(100008, 3950, NULL), 1);
}

/* The money arrived: below the minimum it is not credited automatically, nor rejected for good. */
static void test_below_minimum_is_held_for_a_person(void)
{
    CHECK(s_ready);
    int before = s_all_deals();
    h_tx_t tx = s_tx(ADDR_A, "0.5", "TRON_USDT");
    CHECK(h_sim_deposit(&s_env, &tx, 1, -1, -1) == 0);
    CHECK_EQ_INT(h_wait_state(&s_env, tx.tx_id, DEPOSIT_HELD, 20000), DEPOSIT_HELD);
    h_sleep_ms(200);
    CHECK_EQ_INT(s_all_deals(), before);
    h_jinfo_t info;
    h_journal_info(s_env.journal, tx.tx_id, &info);
    CHECK_EQ_INT(info.attempts, 0);
    CHECK(strstr(info.reason, "below minimum") != NULL);
}

/* Sends body with the given timestamp header and signature header (either may be NULL: left out). */
static long s_post_raw(const char *body, size_t len, const char *ts, const char *sig, char **reply)
{
    char hts[80], hsig[400], url[128];
    const char *headers[3] = { NULL, NULL, NULL };
    int n = 0;
    if (ts) {
        snprintf(hts, sizeof hts, "Biz-Timestamp: %s", ts);
        headers[n++] = hts;
    }
    if (sig) {
        snprintf(hsig, sizeof hsig, "Biz-Resp-Signature: %s", sig);
        headers[n++] = hsig;
    }
    snprintf(url, sizeof url, "%s/cobo/webhook", s_env.webhook_url);
    h_resp_t r = h_http_on(NULL, "POST", url, headers, body, len, 5000);
    long st = r.status;
    if (reply)
        *reply = strdup(r.body);
    h_resp_free(&r);
    return st;
}

static void s_base64(const uint8_t *in, size_t n, char *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t) in[i] << 16 | (i + 1 < n ? (uint32_t) in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
}

static void test_bad_signatures_get_401_and_journal_nothing(void)
{
    CHECK(s_ready);
    h_tx_t tx = s_tx(ADDR_A, "500", "TRON_USDT");
    h_uuid(0x51651651ULL, 0x1, tx.tx_id);
    jbuf_t b;
    jbuf_init(&b);
    h_webhook_body(&b, "51651651-0000-4000-8000-000000000001", "wallets.transaction.succeeded", &tx);
    char ts[32], other_ts[32], sig[COBO_SIG_HEX_LEN + 1];
    snprintf(ts, sizeof ts, "%" PRId64, h_wall_ms());
    snprintf(other_ts, sizeof other_ts, "%" PRId64, h_wall_ms() + 1000);
    uint64_t before = h_journal_records(s_env.journal);

    /* signed with another key */
    h_sign(H_OTHER_SEED, b.data, b.len, ts, sig);
    char *reply = NULL;
    CHECK_EQ_INT(s_post_raw(b.data, b.len, ts, sig, &reply), 401);
    CHECK(reply && strstr(reply, "\"error\""));
    free(reply);

    /* the right key, but the body altered after signing (250 -> 950) */
    h_sign(H_COBO_KEY_SEED, b.data, b.len, ts, sig);
    char *altered = strdup(b.data);
    char *amt = strstr(altered, "\"amount\":\"500\"");
    CHECK(amt != NULL);
    if (amt)
        amt[10] = '9';
    CHECK_EQ_INT(s_post_raw(altered, b.len, ts, sig, NULL), 401);
    free(altered);

    /* the right signature with another timestamp */
    CHECK_EQ_INT(s_post_raw(b.data, b.len, other_ts, sig, NULL), 401);
    /* no signature; no timestamp; empty signature; one hex digit short */
    CHECK_EQ_INT(s_post_raw(b.data, b.len, ts, NULL, NULL), 401);
    CHECK_EQ_INT(s_post_raw(b.data, b.len, NULL, sig, NULL), 401);
    CHECK_EQ_INT(s_post_raw(b.data, b.len, ts, "", NULL), 401);
    char short_sig[COBO_SIG_HEX_LEN + 1];
    snprintf(short_sig, sizeof short_sig, "%.127s", sig);
    CHECK_EQ_INT(s_post_raw(b.data, b.len, ts, short_sig, NULL), 401);

    /* the right signature bytes in base64 instead of hex */
    uint8_t raw[64];
    CHECK(cobo_hex_decode(sig, raw, 64) == 0);
    char b64[100];
    s_base64(raw, 64, b64);
    CHECK_EQ_INT(s_post_raw(b.data, b.len, ts, b64, NULL), 401);

    /* an old-style signature over the body alone, without "|timestamp" */
    cobo_signer_t *signer = cobo_signer_new(H_COBO_KEY_SEED);
    char body_only[COBO_SIG_HEX_LEN + 1];
    cobo_sign(signer, b.data, b.len, body_only);
    cobo_signer_destroy(&signer);
    CHECK_EQ_INT(s_post_raw(b.data, b.len, ts, body_only, NULL), 401);

    CHECK_EQ_INT(h_journal_records(s_env.journal), before);
    /* and the same body, signed properly, is accepted: the refusals were about the signature */
    h_tx_t pending = tx;
    snprintf(pending.status, sizeof pending.status, "Confirming");
    pending.confirmations = 1;
    jbuf_reset(&b);
    h_webhook_body(&b, "51651651-0000-4000-8000-000000000002", "wallets.transaction.created", &pending);
    h_resp_t r = h_post_webhook(&s_env, b.data, b.len);
    CHECK_EQ_INT(r.status, 201);
    h_resp_free(&r);
    CHECK_EQ_INT(h_journal_records(s_env.journal), before + 1);
    jbuf_free(&b);
}

static void test_underscore_signature_headers_are_accepted(void)
{
    CHECK(s_ready);
    h_tx_t tx = s_tx(ADDR_NOBODY, "3", "TRON_USDT");
    h_uuid(0x0dd0dd0dd0ULL, 0x2, tx.tx_id);
    snprintf(tx.status, sizeof tx.status, "Confirming");
    tx.confirmations = 2;
    jbuf_t b;
    jbuf_init(&b);
    h_webhook_body(&b, "0dd0dd0d-0000-4000-8000-000000000002", "wallets.transaction.created", &tx);
    h_resp_t r = h_post_webhook_on(NULL, &s_env, b.data, b.len, 1);
    CHECK_EQ_INT(r.status, 201);
    h_resp_free(&r);
    /* the very same event again: a repeat, nothing new */
    uint64_t before = h_journal_records(s_env.journal);
    r = h_post_webhook_on(NULL, &s_env, b.data, b.len, 0);
    CHECK_EQ_INT(r.status, 200);
    h_resp_free(&r);
    CHECK_EQ_INT(h_journal_records(s_env.journal), before);
    h_jinfo_t info;
    h_journal_info(s_env.journal, tx.tx_id, &info);
    CHECK_EQ_INT(info.state, DEPOSIT_PENDING);
    jbuf_free(&b);
}

static void test_monitor_json_shows_every_transition(void)
{
    CHECK(s_ready);
    char out[600], count[8] = "200";
    snprintf(out, sizeof out, "%s/monitor.out", s_env.dir);
    char *argv[] = { s_env.kasa_bin, "monitor", "--json", "--count", count, "--config", s_env.config, NULL };
    char monitor_env[100];
    snprintf(monitor_env, sizeof monitor_env, "KASA_MONITOR=tcp://127.0.0.1:%d", s_env.monitor_port);
    char *envv[] = { monitor_env, NULL };
    pid_t mon = h_spawn(argv, out, envv);
    /* and one that stops by itself after the first NOTIFIED */
    char out1[600];
    snprintf(out1, sizeof out1, "%s/monitor-notified.out", s_env.dir);
    char *argv1[] = { s_env.kasa_bin, "monitor", "--json", "--topic", "NOTIFIED", "--count", "1", "--config",
                      s_env.config, NULL };
    pid_t mon1 = h_spawn(argv1, out1, envv);
    h_sleep_ms(2000); /* a subscriber misses what was published before it connected (ASan start + connect; slow under load) */
    h_tx_t tx = s_tx(ADDR_A, "10", "TRON_USDT");
    CHECK(h_sim_deposit(&s_env, &tx, 1, -1, -1) == 0);
    CHECK_EQ_INT(h_wait_state(&s_env, tx.tx_id, DEPOSIT_NOTIFIED, 20000), DEPOSIT_NOTIFIED);
    h_sleep_ms(500);
    int st = 0;
    CHECK(!h_exited(mon, &st)); /* it keeps following until --count records */
    h_kill(&mon);
    st = h_wait_pid(mon1, 5000);
    CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    if (st == -1)
        h_kill(&mon1);
    char *one = h_read_file(out1, NULL);
    CHECK(one && strstr(one, tx.tx_id) && strstr(one, "\"to\":\"NOTIFIED\"") && !strstr(one, "\"to\":\"CREDITED\""));
    free(one);
    char *text = h_read_file(out, NULL);
    CHECK(text != NULL);
    if (!text)
        return;
    /* every line with our tx is JSON, and the main line's states appear in order */
    static const char *const states[] = { "\"to\":\"RECEIVED\"", "\"to\":\"LOCKED\"", "\"to\":\"CREDITED\"",
                                          "\"to\":\"NOTIFIED\"" };
    const char *pos = text;
    int lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strstr(line, tx.tx_id))
            continue;
        bson_t doc;
        char err[128];
        CHECK(json_parse(line, strlen(line), &doc, err, sizeof err) == 0);
        bson_destroy(&doc);
        lines++;
    }
    free(text);
    text = h_read_file(out, NULL);
    pos = text;
    for (int i = 0; i < 4; i++) {
        const char *hit = NULL;
        for (const char *p = pos; (p = strstr(p, states[i])) != NULL; p++) {
            /* the state on a line of this deposit */
            const char *ls = p;
            while (ls > text && ls[-1] != '\n')
                ls--;
            const char *le = strchr(p, '\n');
            size_t ll = le ? (size_t) (le - ls) : strlen(ls);
            char *l = strndup(ls, ll);
            int ours = strstr(l, tx.tx_id) != NULL;
            free(l);
            if (ours) {
                hit = p;
                break;
            }
        }
        CHECK(hit != NULL);
        if (!hit) {
            h_log("monitor output lacks %s for %s", states[i], tx.tx_id);
            break;
        }
        pos = hit;
    }
    CHECK(lines >= 4);
    free(text);
    int total = 0;
    CHECK_EQ_INT(s_deals_of(100001, 950, &total), 1);
}

/* The Cobo simulator sends a deposit to ADDR_TRX with these extra fields; its transaction id into id. */
static int s_sim_deposit_extra(const char *amount, const char *extra, char id[80])
{
    char url[160], body[400];
    snprintf(url, sizeof url, "%s/sim/deposit", s_env.cobo_url);
    snprintf(body, sizeof body, "{\"address\":\"%s\",\"amount\":\"%s\",\"token_id\":\"TRON\",\"confirmations\":1,%s}",
             ADDR_TRX, amount, extra);
    h_resp_t r = h_http("POST", url, body);
    id[0] = '\0';
    const char *t = r.body ? strstr(r.body, "\"transaction_id\":\"") : NULL;
    if (t)
        snprintf(id, 80, "%.*s", (int) strcspn(t + 18, "\""), t + 18);
    long st = r.status;
    h_resp_free(&r);
    return st == 201 && id[0] ? 0 : -1;
}

/* Fee Station's gas for a deposit address (Cobo marks it cobo_category AutoFueling) and coins the
 * broker sends from one of KASA_OWN_ADDRESSES: each answered 2xx, journaled once as IGNORED with
 * its reason, never a deposit and never credited; an outside sender's coins still are. */
static void test_the_brokers_own_transfers_are_never_deposits(void)
{
    CHECK(s_ready);
    char fuel[80], own[80], outside[80];
    CHECK_EQ_INT(s_sim_deposit_extra("30", "\"cobo_category\":\"AutoFueling\"", fuel), 0);
    CHECK_EQ_INT(s_sim_deposit_extra("31", "\"from\":\"" OWN_HOT "\"", own), 0);
    CHECK_EQ_INT(s_sim_deposit_extra("32", "\"from\":\"TOutsideSender00000000000000000001\"", outside), 0);
    h_jinfo_t info;
    int64_t end = h_now_ms() + 20000;
    while (h_now_ms() < end && (h_journal_info(s_env.journal, outside, &info) != 0 || info.state != DEPOSIT_NOTIFIED))
        h_sleep_ms(100);
    CHECK_EQ_INT(info.state, DEPOSIT_NOTIFIED);   /* 32 TRX at 0.1234: 3.94 */
    CHECK_EQ_INT(h_deals_of(&s_env, 100003, 394, NULL), 1);
    h_sleep_ms(500);   /* every lifecycle event of the other two delivered meanwhile */
    CHECK_EQ_INT(h_journal_info(s_env.journal, fuel, &info), 0);
    CHECK_EQ_INT(info.state, -1);   /* no deposit record at all */
    CHECK_EQ_INT(h_journal_info(s_env.journal, own, &info), 0);
    CHECK_EQ_INT(info.state, -1);
    CHECK_EQ_INT(h_deals_of(&s_env, 100003, 370, NULL), 0);
    CHECK_EQ_INT(h_deals_of(&s_env, 100003, 382, NULL), 0);
    CHECK_EQ_INT(h_dump_count(&s_env, "IGNORED", fuel), 1);
    CHECK_EQ_INT(h_dump_count(&s_env, "IGNORED", own), 1);
    CHECK_EQ_INT(h_dump_count(&s_env, fuel, "AutoFueling (Fee Station)"), 1);
    CHECK_EQ_INT(h_dump_count(&s_env, own, "KASA_OWN_ADDRESSES"), 1);
    /* Cobo got 2xx for every event: nothing is left to deliver */
    char url[160];
    snprintf(url, sizeof url, "%s/sim/deposits", s_env.cobo_url);
    h_resp_t r = h_http("GET", url, NULL);
    CHECK(r.body && !strstr(r.body, "\"given_up\":true"));
    const char *at = r.body ? strstr(r.body, fuel) : NULL;
    const char *next = at ? strstr(at + 1, "{\"transaction_id\"") : NULL;
    CHECK(at && strstr(at, "\"codes\":[200") && (!next || strstr(at, "\"codes\":[200") < next));
    h_resp_free(&r);
}

static void test_wallet_link_while_serving_then_credited(void)
{
    CHECK(s_ready);
    CHECK_EQ_INT(h_link(&s_env, ADDR_LATE, 100002), 0);
    CHECK_EQ_INT(h_link(&s_env, ADDR_LATE, 100002), 0);   /* the same link again: a no-op */
    char *out = NULL;                                     /* another login: refused, with a reason */
    CHECK(h_kasa_cmd(&s_env, &out, "wallet", "link", ADDR_LATE, "100006", "--config", s_env.config, NULL) != 0);
    CHECK(out && strstr(out, "100002"));
    free(out);
    h_tx_t tx = s_tx(ADDR_LATE, "20", "TRON_USDT");
    CHECK(h_sim_deposit(&s_env, &tx, 1, -1, -1) == 0);
    CHECK_EQ_INT(h_wait_state(&s_env, tx.tx_id, DEPOSIT_CREDITED, 20000), DEPOSIT_CREDITED);
    int total = 0;
    CHECK_EQ_INT(s_deals_of(100002, 1950, &total), 1);
    CHECK_EQ_INT(total, 1);
    CHECK_EQ_INT(h_mt5_deals(&s_env, 100006, (h_deal_t[8]){ 0 }, 8), 0);
}

static void test_restart_replays_and_credits_nothing_twice(void)
{
    CHECK(s_ready);
    h_sleep_ms(300);
    int before = s_all_deals();
    CHECK(before >= 6);
    CHECK_EQ_INT(h_kasa_stop(&s_env), 0);
    char *out = NULL;
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "journal", "verify", s_env.journal, NULL), 0);
    free(out);
    uint64_t records = h_journal_records(s_env.journal);
    CHECK_EQ_INT(h_kasa_start(&s_env), 0);
    /* an event seen before the restart, as Cobo's retries would send it: a repeat */
    CHECK(s_dup_body != NULL);
    if (s_dup_body) {
        h_resp_t r = h_post_webhook(&s_env, s_dup_body, strlen(s_dup_body));
        CHECK_EQ_INT(r.status, 200);
        h_resp_free(&r);
    }
    h_sleep_ms(1000);
    CHECK_EQ_INT(s_all_deals(), before);
    /* nothing was unfinished but the HELD ones, so a restart journals nothing new */
    CHECK_EQ_INT(h_journal_records(s_env.journal), records);
    CHECK_EQ_INT(s_deals_of(100001, 24950, NULL), 1);
}

static void test_clean_shutdown_exits_zero_and_journal_verifies(void)
{
    CHECK(s_ready);
    CHECK_EQ_INT(h_kasa_stop(&s_env), 0);
    char *out = NULL;
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "journal", "verify", s_env.journal, NULL), 0);
    free(out);
}

int main(void)
{
    if (h_env_init(&s_env, "e2e") == 0 && h_sims_start(&s_env, NULL) == 0 &&
        h_config_write(&s_env, "KASA_OWN_ADDRESSES=" OWN_HOT "\n") == 0 && h_kasa_start(&s_env) == 0) {
        s_ready = h_link(&s_env, ADDR_A, 100001) == 0 && h_link(&s_env, ADDR_TRX, 100003) == 0 &&
                  h_link(&s_env, ADDR_DUP, 100004) == 0 && h_link(&s_env, ADDR_ORDER, 100005) == 0 &&
                  h_link(&s_env, ADDR_REFUSE, 100007) == 0 && h_link(&s_env, ADDR_TG, 100008) == 0;
    }
    if (!s_ready)
        h_log("setup failed; logs in %s", s_env.dir);
    RUN(test_usdt_250_at_fee_0_50_credits_exactly_249_50_and_notifies);
    RUN(test_trx_at_fractional_rate_rounds_down_exactly);
    RUN(test_same_event_ten_times_at_once_gives_one_deal);
    RUN(test_lifecycle_reordered_and_repeated_gives_one_deal);
    RUN(test_unlinked_address_is_held_and_never_credited);
    RUN(test_over_auto_credit_limit_is_held);
    RUN(test_below_minimum_is_held_for_a_person);
    RUN(test_mt5_refusing_for_good_holds_the_deposit);
    RUN(test_telegram_failures_are_retried_and_notice_sent_once);
    RUN(test_bad_signatures_get_401_and_journal_nothing);
    RUN(test_underscore_signature_headers_are_accepted);
    RUN(test_monitor_json_shows_every_transition);
    RUN(test_the_brokers_own_transfers_are_never_deposits);
    RUN(test_wallet_link_while_serving_then_credited);
    RUN(test_restart_replays_and_credits_nothing_twice);
    RUN(test_clean_shutdown_exits_zero_and_journal_verifies);
    free(s_dup_body);
    h_env_finish(&s_env, check_failed_ > 0);
    return check_done();
}
