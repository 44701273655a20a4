/* test_reconcile.c — `kasa reconcile` end to end against the simulators: a clean run agrees (exit 0,
 * text and --json); a deal added behind kasa's back, a deal whose amount was changed, a Cobo deposit
 * kasa never saw and a deal removed are each reported with their evidence (exit 1); reconcile
 * changes nothing (journal and deals as before); a session MT5 drops between two reads is opened again;
 * a book that cannot be read gives exit 3.
 *
 * Rules: TRON_USDT rate 1, fee 0.5; catch-up is off (so a lost webhook stays unseen). */
#include "actors/mt5.h"
#include "tests/check.h"
#include "tests/integration/harness.h"

#define ADDR1 "TRecoCli0000000000000000000000001"   /* -> 100001 */
#define ADDR2 "TRecoCli0000000000000000000000002"   /* -> 100002 */

static h_env_t s_env;
static int s_ready;
static h_tx_t s_credited;     /* 250 USDT -> 249.50 on 100001 */
static uint64_t s_ticket;     /* its MT5 deal */

static h_tx_t s_tx(const char *address, const char *amount)
{
    return h_tx(address, amount, "TRON_USDT");
}

/* Runs kasa reconcile over the last hour; returns the exit code and the output (malloc'd). */
static int s_reconcile(int json, char **out)
{
    if (json)
        return h_kasa_cmd(&s_env, out, "reconcile", "--from", "-1h", "--to", "-0m", "--json", "--config",
                          s_env.config, NULL);
    return h_kasa_cmd(&s_env, out, "reconcile", "--from", "-1h", "--to", "-0m", "--config", s_env.config, NULL);
}

static int s_agrees(void)
{
    char *out = NULL;
    int rc = s_reconcile(0, &out);
    int ok = rc == 0 && out && strstr(out, "the books agree");
    if (!ok)
        h_log("reconcile -> %d: %s", rc, out ? out : "");
    free(out);
    return ok;
}

static void s_deal_edit(const char *json)
{
    CHECK_EQ_INT(h_sim_post(s_env.mt5_url, "/sim/deal", json), 200);
}

static void test_clean_books_agree(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    CHECK_EQ_INT(h_link(&s_env, ADDR1, 100001), 0);
    CHECK_EQ_INT(h_link(&s_env, ADDR2, 100002), 0);
    s_credited = s_tx(ADDR1, "250");
    CHECK_EQ_INT(h_sim_deposit(&s_env, &s_credited, 2, 0, 0), 0);
    CHECK_EQ_INT(h_wait_state(&s_env, s_credited.tx_id, DEPOSIT_NOTIFIED, 15000), DEPOSIT_NOTIFIED);
    h_deal_t deals[8];
    CHECK_EQ_INT(h_mt5_deals(&s_env, 100001, deals, 8), 1);
    s_ticket = deals[0].ticket;
    CHECK(s_agrees());
    char *out = NULL;
    CHECK_EQ_INT(s_reconcile(1, &out), 0);
    CHECK(out && strstr(out, "\"agree\":true") && strstr(out, "\"credited\":1") && strstr(out, "\"kasa_deals\":1"));
    free(out);
}

/* MT5 drops the reconcile's session between two of its reads (403): it logs in again and reads on. */
static void test_a_session_mt5_drops_mid_read_is_opened_again(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    CHECK_EQ_INT(h_sim_post(s_env.mt5_url, "/sim/faults", "{\"expire_after\":2}"), 200);
    CHECK(s_agrees());
    CHECK_EQ_INT(h_sim_post(s_env.mt5_url, "/sim/faults", "{\"expire_after\":0}"), 200);
}

static void test_deal_added_behind_kasas_back(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    mt5_client_t *c = mt5_client_new(s_env.mt5_url, H_MT5_MANAGER, H_MT5_MANAGER_PW, NULL, 5000);
    CHECK(c != NULL);
    if (!c)
        return;
    uint64_t ticket = 0;
    char err[256];
    CHECK_EQ_INT(mt5_balance(c, 100002, 1234, 2, "kasa 0123456789abcdef0123456789", &ticket, err, sizeof err), MT5_OK);
    mt5_client_destroy(&c);
    char *out = NULL;
    CHECK_EQ_INT(s_reconcile(0, &out), 1);
    char want[160];
    snprintf(want, sizeof want, "MISMATCH deal_unknown tx=- login=100002 ticket=%" PRIu64, ticket);
    CHECK(out && strstr(out, want) && strstr(out, "mt5_profit=12.34") && strstr(out, "1 mismatch:"));
    free(out);
    char body[96];
    snprintf(body, sizeof body, "{\"ticket\":%" PRIu64 ",\"delete\":true}", ticket);
    s_deal_edit(body);
    CHECK(s_agrees());
}

static void test_wrong_amount_is_reported(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    char body[96];
    snprintf(body, sizeof body, "{\"ticket\":%" PRIu64 ",\"amount\":\"249.05\"}", s_ticket);
    s_deal_edit(body);
    char *out = NULL;
    CHECK_EQ_INT(s_reconcile(0, &out), 1);
    char want[200];
    snprintf(want, sizeof want, "MISMATCH deal_amount tx=%s login=100001 ticket=%" PRIu64, s_credited.tx_id, s_ticket);
    CHECK(out && strstr(out, want) && strstr(out, "journal_credit=249.50 mt5_profit=249.05"));
    free(out);
    snprintf(body, sizeof body, "{\"ticket\":%" PRIu64 ",\"amount\":\"249.50\"}", s_ticket);
    s_deal_edit(body);
    CHECK(s_agrees());
}

static void test_cobo_deposit_kasa_never_saw_and_a_removed_deal(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    CHECK_EQ_INT(h_sim_post(s_env.cobo_url, "/sim/faults", "{\"drop_webhooks\":true}"), 200);
    h_tx_t lost = s_tx(ADDR2, "40");
    CHECK_EQ_INT(h_sim_deposit(&s_env, &lost, 1, 0, 0), 0);
    char *out = NULL;
    CHECK_EQ_INT(s_reconcile(0, &out), 1);
    char want[200];
    snprintf(want, sizeof want, "MISMATCH cobo_missing tx=%s login=100002", lost.tx_id);
    CHECK(out && strstr(out, want) && strstr(out, "amount=40") && strstr(out, "journal=absent"));
    free(out);

    char body[96];
    snprintf(body, sizeof body, "{\"ticket\":%" PRIu64 ",\"delete\":true}", s_ticket);
    s_deal_edit(body);
    uint64_t records = h_journal_records(s_env.journal);
    out = NULL;
    CHECK_EQ_INT(s_reconcile(1, &out), 1);
    CHECK(out && strstr(out, "\"agree\":false") && strstr(out, "\"mismatch_count\":2"));
    CHECK(out && strstr(out, "\"kind\":\"cobo_missing\"") && strstr(out, "\"kind\":\"deal_missing\""));
    snprintf(want, sizeof want, "\"kind\":\"deal_missing\",\"tx\":\"%s\",\"login\":100001", s_credited.tx_id);
    CHECK(out && strstr(out, want));
    free(out);
    /* read-only: nothing journaled, nothing credited */
    CHECK_EQ_INT(h_journal_records(s_env.journal), records);
    h_deal_t deals[8];
    CHECK_EQ_INT(h_mt5_deals(&s_env, 100001, deals, 8), 0);
    CHECK_EQ_INT(h_mt5_deals(&s_env, 100002, deals, 8), 0);
}

static void test_unreadable_book_is_exit_3(void)
{
    CHECK(s_ready);
    if (!s_ready)
        return;
    h_kill(&s_env.cobo_pid);
    char *out = NULL;
    CHECK_EQ_INT(s_reconcile(0, &out), 3);
    CHECK(out && strstr(out, "cannot read the books: Cobo"));
    free(out);
    CHECK_EQ_INT(h_kasa_cmd(&s_env, NULL, "reconcile", "--from", "-1h", "--to", "-2h", "--config", s_env.config, NULL),
                 2);
}

int main(void)
{
    s_ready = h_env_init(&s_env, "reconcile") == 0 && h_sims_start(&s_env, NULL) == 0 &&
              h_config_write(&s_env, NULL) == 0 && h_kasa_start(&s_env) == 0;
    RUN(test_clean_books_agree);
    RUN(test_a_session_mt5_drops_mid_read_is_opened_again);
    RUN(test_deal_added_behind_kasas_back);
    RUN(test_wrong_amount_is_reported);
    RUN(test_cobo_deposit_kasa_never_saw_and_a_removed_deal);
    RUN(test_unreadable_book_is_exit_3);
    int rc = check_done();
    h_env_finish(&s_env, rc != 0);
    return rc;
}
