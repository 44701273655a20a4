/* test_mongo.c — the journal's MongoDB projection (actors/projector.h, schema/mongo.h, kasa mongo).
 *
 * Runs against the fixture server (tests/mongo/server.mjs) or, unchanged, against a real MongoDB
 * named by KASA_TEST_MONGO_URI (see support_mongo.h for what differs: a real server is never
 * stopped, and "started empty" drops the test's database). The first test proves that a unique
 * index refuses a duplicate with error 11000; nothing after it runs if it does not.
 *
 * In process: a journal written here is projected by projector_sync; every record once, every
 * deposit equal to a replay's view, a replay of the projection writing nothing, injected failures
 * before and after MongoDB applied a write, and a MongoDB that lost its data refilled by the
 * following projector. Against `kasa serve` (with the simulators): deposits served while MongoDB
 * is unreachable (and its password never logged), the normal flow projected, MongoDB stopped and
 * started empty, kasa SIGKILLed mid-batch, `kasa mongo status|sync|rebuild`. */
#include "tests/check.h"
#include "tests/integration/harness.h"
#include "tests/integration/support_mongo.h"

#include <czmq.h>
#undef LOG_DEBUG
#undef LOG_INFO

#include "actors/mio.h"
#include "actors/projector.h"

#define NODE "node-a"
#define SECRET "Sup3rSecretPw"

static h_env_t s_env;
static hm_t s_m;
static int s_ready;        /* the fixture runs and enforces unique indexes */
static int s_serving;      /* the simulators run */

/* Switches the tests to a fresh database (a real MongoDB's previous one is dropped). */
static void s_use_db(const char *suffix)
{
    if (s_m.real) {
        bson_t cmd = BSON_INITIALIZER, reply;
        BSON_APPEND_INT32(&cmd, "dropDatabase", 1);
        if (hm_command(&s_m, &cmd, &reply) == 0)
            bson_destroy(&reply);
        bson_destroy(&cmd);
    }
    snprintf(s_m.db, sizeof s_m.db, "kasa_test_%s_%d", suffix, (int) getpid());
}

static char *s_slurp(const char *path)
{
    char *text = h_read_file(path, NULL);
    return text ? text : strdup("");
}

static int s_count_in(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* ---- the fixture ----------------------------------------------------------------------------- */

static void test_unique_index_refuses_a_duplicate_with_11000(void)
{
    CHECK(s_m.client != NULL);
    if (!s_m.client)
        return;
    s_use_db("unique");
    /* kasa's own index definitions, as the projector creates them */
    size_t count;
    const mongo_index_t *ix = mongo_indexes(&count);
    int made = 0;
    for (size_t i = 0; i < count; i++) {
        bson_t cmd, reply;
        mongo_index_command(&ix[i], &cmd);
        bson_error_t error;
        made += mongoc_client_write_command_with_opts(s_m.client, s_m.db, &cmd, NULL, &reply, &error) ? 1 : 0;
        bson_destroy(&reply);
        bson_destroy(&cmd);
    }
    CHECK_EQ_INT(made, (int) count);
    bson_t *a = BCON_NEW("transaction_id", BCON_UTF8("tx-dup"), "state", BCON_UTF8("RECEIVED"));
    bson_t *b = BCON_NEW("transaction_id", BCON_UTF8("tx-dup"), "state", BCON_UTF8("LOCKED"));
    bson_t *t1 = BCON_NEW("node", BCON_UTF8(NODE), "lsn", BCON_INT64(7));
    bson_t *t2 = BCON_NEW("node", BCON_UTF8(NODE), "lsn", BCON_INT32(7));   /* the same number, another type */
    bson_t *t3 = BCON_NEW("node", BCON_UTF8("node-b"), "lsn", BCON_INT64(7));
    CHECK_EQ_INT(hm_insert(&s_m, MONGO_DEPOSITS, a), 0);
    CHECK_EQ_INT(hm_insert(&s_m, MONGO_DEPOSITS, b), MONGO_DUPLICATE_KEY);
    CHECK_EQ_INT(hm_insert(&s_m, MONGO_TRANSITIONS, t1), 0);
    CHECK_EQ_INT(hm_insert(&s_m, MONGO_TRANSITIONS, t2), MONGO_DUPLICATE_KEY);
    CHECK_EQ_INT(hm_insert(&s_m, MONGO_TRANSITIONS, t3), 0);
    CHECK_EQ_INT(hm_find(&s_m, MONGO_DEPOSITS, NULL, NULL, NULL), 1);
    CHECK_EQ_INT(hm_find(&s_m, MONGO_TRANSITIONS, NULL, NULL, NULL), 2);
    /* an update that would make a second document with the key is refused too */
    bson_t *c = BCON_NEW("transaction_id", BCON_UTF8("tx-other"));
    CHECK_EQ_INT(hm_insert(&s_m, MONGO_DEPOSITS, c), 0);
    bson_t *cmd = BCON_NEW("update", BCON_UTF8(MONGO_DEPOSITS), "updates", "[", "{",
                           "q", "{", "transaction_id", BCON_UTF8("tx-other"), "}",
                           "u", "{", "$set", "{", "transaction_id", BCON_UTF8("tx-dup"), "}", "}", "}", "]");
    bson_t reply;
    bson_error_t error;
    int64_t code = 0;
    if (mongoc_client_write_command_with_opts(s_m.client, s_m.db, cmd, NULL, &reply, &error)) {
        bson_iter_t it;
        if (bson_iter_init(&it, &reply) && bson_iter_find_descendant(&it, "writeErrors.0.code", &it))
            code = bson_iter_as_int64(&it);
    } else {
        code = error.code;
    }
    bson_destroy(&reply);
    CHECK_EQ_INT(code, MONGO_DUPLICATE_KEY);
    bson_destroy(cmd);
    bson_destroy(a);
    bson_destroy(b);
    bson_destroy(c);
    bson_destroy(t1);
    bson_destroy(t2);
    bson_destroy(t3);
    s_ready = !check_current_failed_;
}

/* ---- in process ------------------------------------------------------------------------------ */

static void s_append(journal_t *j, record_t *r, int64_t *t)
{
    r->time_ms = (*t += 1000);
    uint8_t *bytes;
    size_t len;
    char err[128];
    if (record_encode(r, &bytes, &len, err, sizeof err) == 0) {
        journal_append(j, bytes, len);
        free(bytes);
    }
}

/* Appends the records of n deposits to the journal in dir, interleaved: address links first, then
 * round by round each deposit's next step (PENDING, RECEIVED, LOCKED, attempt, CREDITED, NOTIFIED;
 * every seventh HELD instead of LOCKED). first numbers them (tx-<first+i>). */
static int s_write_journal(const char *dir, int first, int n)
{
    char err[256];
    journal_t *j = journal_open(dir, NULL, err, sizeof err);
    if (!j) {
        h_log("journal_open: %s", err);
        return -1;
    }
    int64_t t = 1764000000000LL + (int64_t) first * 100000;
    record_t r;
    for (int a = 0; a < 5 && first == 0; a++) {
        record_init(&r, RECORD_ADDRESS_LINK);
        snprintf(r.address, sizeof r.address, "TProjAddr%04d", a);
        snprintf(r.chain_id, sizeof r.chain_id, "TRON");
        r.login = 100001 + (uint64_t) a;
        snprintf(r.actor, sizeof r.actor, "test");
        s_append(j, &r, &t);
    }
    static const deposit_state_t path[] = { DEPOSIT_NONE, DEPOSIT_PENDING, DEPOSIT_RECEIVED, DEPOSIT_LOCKED,
                                            DEPOSIT_LOCKED, DEPOSIT_CREDITED, DEPOSIT_NOTIFIED };
    static const deposit_event_t events[] = { DEPOSIT_EV_SEEN_PENDING, DEPOSIT_EV_SEEN_PENDING,
                                              DEPOSIT_EV_SEEN_COMPLETED, DEPOSIT_EV_CONFIRMED, DEPOSIT_EV_CONFIRMED,
                                              DEPOSIT_EV_CREDIT_OK, DEPOSIT_EV_NOTICE_SENT };
    for (int step = 1; step <= 6; step++) {
        for (int i = first; i < first + n; i++) {
            int held = i % 7 == 3;
            if (held && step > 3)
                continue;
            if (step == 4) {
                record_init(&r, RECORD_CREDIT_ATTEMPT);
                snprintf(r.tx_id, sizeof r.tx_id, "tx-%04d", i);
                snprintf(r.ref, sizeof r.ref, "kasa %026d", i);
                r.attempt = 1;
                r.login = 100001 + (uint64_t) (i % 5);
                r.credit_minor = 10000 + i;
                r.digits = 2;
                s_append(j, &r, &t);
                continue;
            }
            record_init(&r, RECORD_DEPOSIT);
            snprintf(r.tx_id, sizeof r.tx_id, "tx-%04d", i);
            r.from = path[step - 1 == 4 ? 3 : step - 1];
            r.to = held && step == 3 ? DEPOSIT_HELD : path[step];
            r.event = held && step == 3 ? DEPOSIT_EV_HOLD : events[step];
            snprintf(r.status, sizeof r.status, step == 1 ? "Confirming" : "Completed");
            r.confirmations = step == 1 ? 1 : 20;
            r.threshold = 20;
            if (step <= 2) {
                snprintf(r.token_id, sizeof r.token_id, "TRON_USDT");
                snprintf(r.chain_id, sizeof r.chain_id, "TRON");
                snprintf(r.address, sizeof r.address, "TProjAddr%04d", i % 5);
                snprintf(r.amount, sizeof r.amount, "%d.5", 100 + i);
            }
            if (held && step == 3)
                snprintf(r.reason, sizeof r.reason, "over the auto-credit limit");
            if (step == 3 && !held) {
                r.login = 100001 + (uint64_t) (i % 5);
                r.credit_minor = 10000 + i;
                r.digits = 2;
                snprintf(r.remainder, sizeof r.remainder, "0.001");
            }
            if (step == 5) {
                r.ticket = 200000 + (uint64_t) i;
                snprintf(r.ref, sizeof r.ref, "kasa %026d", i);
            }
            s_append(j, &r, &t);
        }
    }
    journal_destroy(&j);
    return 0;
}

static projector_t *s_projector(const char *dir, const char *node, int batch)
{
    projector_opts_t o = { .uri = s_m.uri, .db = s_m.db, .node = node, .journal_dir = dir, .max_deposits = 1000,
                           .batch_records = batch, .retry_min_ms = 50, .retry_max_ms = 200, .check_ms = 200 };
    char err[256];
    projector_t *p = projector_new(&o, err, sizeof err);
    if (!p)
        h_log("projector_new: %s", err);
    return p;
}

static char s_dir[600];

static void test_projector_sync_projects_each_record_once_and_a_replay_writes_nothing(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    s_use_db("sync");
    snprintf(s_dir, sizeof s_dir, "%s/journal-inproc", s_env.dir);
    CHECK(s_write_journal(s_dir, 0, 20) == 0);
    char err[300], why[400] = "";
    projector_t *p = s_projector(s_dir, NODE, 16);
    CHECK(p != NULL);
    if (!p)
        return;
    CHECK(projector_sync(p, err, sizeof err) == 0);
    CHECK(hm_check(&s_m, s_dir, NODE, why, sizeof why) == 0);
    if (why[0])
        h_log("%s", why);
    projector_status_t st;
    projector_status(p, &st);
    CHECK(st.upserted > 0);
    CHECK_EQ_INT(st.lag_records, 0);
    projector_destroy(&p);

    /* a second projector from position 0 of the same node: the same documents, nothing written */
    bson_t *clear = BCON_NEW("delete", BCON_UTF8(MONGO_NODES), "deletes", "[", "{", "q", "{", "}", "limit",
                             BCON_INT32(0), "}", "]");
    bson_t reply;
    CHECK(hm_command(&s_m, clear, &reply) == 0);
    bson_destroy(&reply);
    bson_destroy(clear);
    p = s_projector(s_dir, NODE, 7);
    CHECK(projector_sync(p, err, sizeof err) == 0);
    projector_status(p, &st);
    CHECK(st.batches > 1);
    CHECK_EQ_INT(st.modified, 0);
    CHECK_EQ_INT(st.upserted, 0);   /* (the node's position, removed above, is not counted) */
    CHECK(hm_check(&s_m, s_dir, NODE, why, sizeof why) == 0);

    /* more records later: only they are written */
    CHECK(s_write_journal(s_dir, 100, 3) == 0);
    CHECK(projector_sync(p, err, sizeof err) == 0);
    CHECK(hm_check(&s_m, s_dir, NODE, why, sizeof why) == 0);
    if (why[0])
        h_log("%s", why);
    projector_destroy(&p);
}

static void test_projector_faults_before_and_after_apply_leave_the_projection_exact(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    char err[300], why[400] = "";
    int fired = 0;
    for (int k = 1; k <= 12; k++) {
        char suffix[32];
        snprintf(suffix, sizeof suffix, "fault%d", k);
        s_use_db(suffix);
        mio_reset();
        projector_t *p = s_projector(s_dir, NODE, 16);
        /* a sync reads once (the position) and writes 8 indexes, then 4 commands per batch */
        if (k % 3 == 0)
            mio_fail_at(MIO_READ, 1, k % 2 ? MIO_AFTER : MIO_BEFORE);
        else
            mio_fail_at(MIO_WRITE, (uint64_t) k * 3, k % 2 ? MIO_AFTER : MIO_BEFORE);
        int first = projector_sync(p, err, sizeof err);
        if (mio_faults_fired()) {
            fired++;
            CHECK_EQ_INT(first, -1);
            CHECK(strstr(err, "injected fault") != NULL);
            projector_status_t st;
            projector_status(p, &st);
            CHECK_EQ_INT(st.connected, 0);
        }
        CHECK(projector_sync(p, err, sizeof err) == 0);
        CHECK(hm_check(&s_m, s_dir, NODE, why, sizeof why) == 0);
        if (check_current_failed_) {
            h_log("fault %d: %s / %s", k, err, why);
            projector_destroy(&p);
            break;
        }
        projector_destroy(&p);
    }
    CHECK_EQ_INT(fired, 12);
    mio_reset();
}

static void test_projector_refills_a_mongodb_that_lost_its_data(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    s_use_db("lost");
    projector_t *p = s_projector(s_dir, NODE, 16);
    char why[400] = "";
    CHECK(projector_start(p) == 0);
    CHECK(hm_wait_equal(&s_m, s_dir, NODE, 10000) == 0);
    /* every document goes (indexes stay): the following projector notices and writes everything again */
    size_t n;
    const char *const *colls = mongo_collections(&n);
    for (size_t i = 0; i < n; i++) {
        bson_t *cmd = BCON_NEW("delete", BCON_UTF8(colls[i]), "deletes", "[", "{", "q", "{", "}", "limit",
                               BCON_INT32(0), "}", "]");
        bson_t reply;
        CHECK(hm_command(&s_m, cmd, &reply) == 0);
        bson_destroy(&reply);
        bson_destroy(cmd);
    }
    CHECK(hm_check(&s_m, s_dir, NODE, why, sizeof why) != 0);
    CHECK(hm_wait_equal(&s_m, s_dir, NODE, 10000) == 0);
    projector_destroy(&p);
}

/* ---- against kasa serve ---------------------------------------------------------------------- */

#define ADDR1 "TMongoAddr0000000000000000000001"
#define ADDR2 "TMongoAddr0000000000000000000002"
#define ADDR3 "TMongoAddr0000000000000000000003"

static h_tx_t s_tx(const char *address, const char *amount)
{
    h_tx_t tx;
    memset(&tx, 0, sizeof tx);
    snprintf(tx.address, sizeof tx.address, "%s", address);
    snprintf(tx.amount, sizeof tx.amount, "%s", amount);
    snprintf(tx.token_id, sizeof tx.token_id, "TRON_USDT");
    snprintf(tx.chain_id, sizeof tx.chain_id, "TRON");
    return tx;
}

/* Makes n deposits through the Cobo simulator and waits until each is NOTIFIED. */
static int s_deposits(int n, int base)
{
    static const char *const addrs[] = { ADDR1, ADDR2, ADDR3 };
    h_tx_t txs[16];
    for (int i = 0; i < n && i < 16; i++) {
        char amount[16];
        snprintf(amount, sizeof amount, "%d.25", base + i);
        txs[i] = s_tx(addrs[i % 3], amount);
        if (h_sim_deposit(&s_env, &txs[i], 2, -1, -1) != 0)
            return -1;
    }
    for (int i = 0; i < n && i < 16; i++)
        if (h_wait_state(&s_env, txs[i].tx_id, DEPOSIT_NOTIFIED, 20000) != DEPOSIT_NOTIFIED)
            return -1;
    return 0;
}

static int s_config(const char *uri, int batch)
{
    char extra[1200];
    snprintf(extra, sizeof extra, "KASA_MONGO_URI=%s\nKASA_MONGO_DB=%s\nKASA_NODE_ID=%s\nKASA_MONGO_BATCH=%d\n",
             uri, s_m.db, NODE, batch);
    return h_config_write(&s_env, extra);
}

static void test_kasa_serves_deposits_while_mongodb_is_unreachable_and_never_logs_its_password(void)
{
    CHECK(s_serving);
    if (!s_serving)
        return;
    char uri[200];
    snprintf(uri, sizeof uri, "mongodb://kasa:" SECRET "@127.0.0.1:%d/?serverSelectionTimeoutMS=300", h_free_port());
    CHECK(s_config(uri, 512) == 0);
    CHECK(h_kasa_start(&s_env) == 0);
    CHECK(h_link(&s_env, ADDR1, 100001) == 0 && h_link(&s_env, ADDR2, 100002) == 0 &&
          h_link(&s_env, ADDR3, 100003) == 0);
    CHECK(s_deposits(2, 10) == 0);
    char *out = NULL;
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "mongo", "status", "--config", s_env.config, NULL), 1);
    CHECK(out && strstr(out, "cannot be reached") && !strstr(out, SECRET));
    free(out);
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "config", "check", "--config", s_env.config, NULL), 0);
    CHECK(out && strstr(out, "KASA_MONGO_URI=mongodb://kasa:(secret)@127.0.0.1:") && !strstr(out, SECRET));
    free(out);
    CHECK_EQ_INT(h_kasa_stop(&s_env), 0);
    char *log = s_slurp(s_env.kasa_log);
    CHECK(strstr(log, "event=mongo.unreachable") != NULL);
    CHECK(strstr(log, "uri=mongodb://kasa:(secret)@") != NULL);
    CHECK(strstr(log, SECRET) == NULL);
    free(log);
}

static void test_kasa_projects_the_normal_flow_with_indexes_ensured_at_start(void)
{
    CHECK(s_ready && s_serving);
    if (!s_ready || !s_serving)
        return;
    s_use_db("serve");
    CHECK(s_config(s_m.uri, 4) == 0);
    CHECK(h_kasa_start(&s_env) == 0);
    CHECK(s_deposits(4, 20) == 0);
    CHECK(hm_wait_equal(&s_m, s_env.journal, NODE, 15000) == 0);
    char *log = s_slurp(s_env.kasa_log);
    size_t count;
    mongo_indexes(&count);
    CHECK(s_count_in(log, "event=mongo.index ") >= (int) count);
    CHECK(strstr(log, "index=transaction_id_1 unique=yes result=created") != NULL);
    free(log);
    char *out = NULL;
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "mongo", "status", "--config", s_env.config, NULL), 0);
    char want[64];
    snprintf(want, sizeof want, "projected_lsn=%" PRIu64 " ", h_journal_records(s_env.journal));
    CHECK(out && strstr(out, want) && strstr(out, "lag_records=0 "));
    if (out && !strstr(out, want))
        h_log("status: %s (want %s)", out, want);
    free(out);
    /* a restart finds every index already there */
    CHECK_EQ_INT(h_kasa_stop(&s_env), 0);
    CHECK(h_kasa_start(&s_env) == 0);
    CHECK(hm_wait_equal(&s_m, s_env.journal, NODE, 15000) == 0);
    log = s_slurp(s_env.kasa_log);
    CHECK(strstr(log, "index=transaction_id_1 unique=yes result=already_there") != NULL);
    free(log);
}

/* Waits for a MONGO status on the monitor feed whose JSON holds needle. 1 if seen. */
static int s_monitor_wait(zsock_t *sub, const char *needle, int timeout_ms)
{
    int64_t end = h_now_ms() + timeout_ms;
    while (h_now_ms() < end) {
        zmsg_t *msg = zmsg_recv(sub);
        if (!msg)
            continue;
        zframe_t *payload = zmsg_first(msg) ? zmsg_next(msg) : NULL;   /* [MONGO][json][lsn] */
        int ok = payload && memmem(zframe_data(payload), zframe_size(payload), needle, strlen(needle)) != NULL;
        zmsg_destroy(&msg);
        if (ok)
            return 1;
    }
    return 0;
}

static void test_mongodb_stopped_then_started_empty_is_reprojected_and_lag_is_reported(void)
{
    CHECK(s_ready && s_serving && s_env.kasa_pid > 0);
    if (!s_ready || !s_serving || s_env.kasa_pid <= 0)
        return;
    zsock_t *sub = zsock_new_sub(NULL, "MONGO");
    zsock_set_rcvtimeo(sub, 500);
    CHECK(zsock_connect(sub, "tcp://127.0.0.1:%d", s_env.monitor_port) == 0);
    CHECK(s_monitor_wait(sub, "\"lag_records\":0", 5000));
    int stopped = hm_stop(&s_m) == 0;
    if (!stopped)
        h_log("a real MongoDB is not stopped: only the empty restart is exercised");
    CHECK(s_deposits(3, 30) == 0);        /* deposits go on */
    if (stopped) {
        CHECK(s_monitor_wait(sub, "\"connected\":false", 8000));
        char *log = s_slurp(s_env.kasa_log);
        CHECK(strstr(log, "event=mongo.unreachable") != NULL);
        free(log);
        char *out = NULL;
        CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "mongo", "status", "--config", s_env.config, NULL), 1);
        free(out);
    }
    CHECK(hm_restart_empty(&s_m) == 0);
    CHECK(hm_wait_equal(&s_m, s_env.journal, NODE, 20000) == 0);
    CHECK(s_monitor_wait(sub, "\"connected\":true", 5000));
    zsock_destroy(&sub);
}

static long s_node_transitions(void)
{
    bson_t *filter = BCON_NEW("node", BCON_UTF8(NODE));
    long n = hm_find(&s_m, MONGO_TRANSITIONS, filter, NULL, NULL);
    bson_destroy(filter);
    return n;
}

static void test_kasa_sigkilled_mid_batch_resumes_with_every_record_once(void)
{
    CHECK(s_ready && s_serving && s_env.kasa_pid > 0);
    if (!s_ready || !s_serving || s_env.kasa_pid <= 0)
        return;
    /* a backlog: MongoDB away (or emptied) while deposits arrive, then kasa killed while catching up */
    int stopped = hm_stop(&s_m) == 0;
    CHECK(s_deposits(4, 40) == 0);
    CHECK(hm_restart_empty(&s_m) == 0);
    long records = (long) h_journal_records(s_env.journal), seen = 0;
    int64_t end = h_now_ms() + 20000;
    while (h_now_ms() < end) {
        seen = s_node_transitions();
        if (seen > 0 && seen < records)
            break;
        h_sleep_ms(2);
    }
    h_kasa_kill(&s_env);
    h_log("kasa SIGKILLed with %ld of %ld records projected", seen, records);
    if (stopped)
        CHECK(seen > 0 && seen < records);
    CHECK(h_kasa_start(&s_env) == 0);
    CHECK(hm_wait_equal(&s_m, s_env.journal, NODE, 20000) == 0);
    CHECK_EQ_INT(h_kasa_stop(&s_env), 0);
}

static void test_kasa_mongo_rebuild_and_sync_reproject_exactly(void)
{
    CHECK(s_ready && s_serving);
    if (!s_ready || !s_serving)
        return;
    char *out = NULL;
    CHECK(h_kasa_start(&s_env) == 0);
    CHECK(hm_wait_equal(&s_m, s_env.journal, NODE, 20000) == 0);
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "mongo", "rebuild", "--config", s_env.config, NULL), 1);
    CHECK(out && strstr(out, "in use"));   /* a running server owns the journal */
    free(out);
    CHECK_EQ_INT(h_kasa_stop(&s_env), 0);

    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "mongo", "rebuild", "--config", s_env.config, NULL), 0);
    CHECK(out && strstr(out, "rebuilt: projected_lsn="));
    free(out);
    CHECK(hm_wait_equal(&s_m, s_env.journal, NODE, 1000) == 0);
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "mongo", "sync", "--config", s_env.config, NULL), 0);
    CHECK(out && strstr(out, "upserted=0 modified=0"));
    free(out);
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "mongo", "status", "--config", s_env.config, NULL), 0);
    CHECK(out && strstr(out, "lag_records=0 "));
    free(out);
}

int main(void)
{
    int env_ok = h_env_init(&s_env, "mongo") == 0;
    s_env.keep_ports = 1;   /* the Cobo simulator sends its webhooks to one URL */
    s_serving = env_ok && h_sims_start(&s_env, NULL) == 0;
    if (env_ok && hm_start(&s_m, &s_env, "mongo") == 0)
        RUN(test_unique_index_refuses_a_duplicate_with_11000);
    else
        h_log("no MongoDB for the tests; logs in %s", s_env.dir);
    if (!s_ready)
        h_log("the unique index is not enforced: nothing below can be trusted, so it does not run");
    RUN(test_projector_sync_projects_each_record_once_and_a_replay_writes_nothing);
    RUN(test_projector_faults_before_and_after_apply_leave_the_projection_exact);
    RUN(test_projector_refills_a_mongodb_that_lost_its_data);
    s_serving = s_serving && s_ready;
    RUN(test_kasa_serves_deposits_while_mongodb_is_unreachable_and_never_logs_its_password);
    RUN(test_kasa_projects_the_normal_flow_with_indexes_ensured_at_start);
    RUN(test_mongodb_stopped_then_started_empty_is_reprojected_and_lag_is_reported);
    RUN(test_kasa_sigkilled_mid_batch_resumes_with_every_record_once);
    RUN(test_kasa_mongo_rebuild_and_sync_reproject_exactly);
    hm_finish(&s_m);
    h_env_finish(&s_env, check_failed_ > 0);
    return check_done();
}
