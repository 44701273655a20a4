/* test_desk.c — operators and held deposits through `kasa deposit`, against a running kasa (the
 * control socket) and a stopped one (the journal): an unlinked deposit assigned and then credited
 * exactly once; a login MT5 does not know refused with nothing journaled; a deposit over the second
 * limit approved by two different approvers (one admin's second approval refused); a reject; list
 * and show; admin accounts added, reset and disabled with and without a server (one-time password,
 * otpauth URI and QR shown; no secret in the journal dump); an approval journaled while no server
 * runs and carried out by the next start; a restart keeps every decision and every admin, and
 * credits nothing twice. */
#include "tests/integration/harness.h"
#include "tests/check.h"

#define ADDR_A      "TDeskAddrA11111111111111111111111"   /* linked to 100001 */
#define ADDR_NOBODY "TDeskNobody1111111111111111111111"   /* linked to nobody */

static h_env_t s_env;
static int s_ready;
static char s_two[40], s_rejected[40];

static h_tx_t s_tx(const char *address, const char *amount)
{
    return h_completed_tx(address, amount, "TRON_USDT");
}

/* The deals on login whose amount equals minor. */
static int s_deals_of(uint64_t login, int64_t minor)
{
    h_deal_t deals[128];
    int n = h_mt5_deals(&s_env, login, deals, 128);
    int match = 0;
    for (int i = 0; i < n; i++)
        if (h_amount_eq(deals[i].profit, minor))
            match++;
    return match;
}

/* A deposit of amount to address, waited for until HELD; tx filled. 0 or -1. */
static int s_held(const char *address, const char *amount, h_tx_t *tx)
{
    *tx = s_tx(address, amount);
    if (h_sim_deposit(&s_env, tx, 1, -1, -1) != 0)
        return -1;
    return h_wait_state(&s_env, tx->tx_id, DEPOSIT_HELD, 20000) == DEPOSIT_HELD ? 0 : -1;
}

/* `kasa deposit VERB TX [LOGIN] --reason REASON [--actor ACTOR] --config FILE`; out (malloc'd) may be NULL. */
static int s_deposit(const char *verb, const char *tx, const char *login, const char *reason, const char *actor,
                     char **out)
{
    char *text = NULL;
    int rc;
    if (login)
        rc = h_kasa_cmd(&s_env, &text, "deposit", verb, tx, login, "--reason", reason, "--actor", actor, "--config",
                        s_env.config, NULL);
    else
        rc = h_kasa_cmd(&s_env, &text, "deposit", verb, tx, "--reason", reason, "--actor", actor, "--config",
                        s_env.config, NULL);
    if (out)
        *out = text;
    else
        free(text);
    return rc;
}

static void test_unlinked_deposit_assigned_is_credited_exactly_once(void)
{
    CHECK(s_ready);
    h_tx_t tx;
    CHECK(s_held(ADDR_NOBODY, "40", &tx) == 0);
    uint64_t records = h_journal_records(s_env.journal);
    char *out = NULL;
    /* a login MT5 does not know: refused, nothing journaled */
    CHECK_EQ_INT(s_deposit("assign", tx.tx_id, "999999", "client asked", "admin:ayse", &out), 1);
    CHECK(out && strstr(out, "MT5 does not know login 999999") != NULL);
    free(out);
    /* no reason: a usage error before anything is asked */
    CHECK_EQ_INT(h_kasa_cmd(&s_env, NULL, "deposit", "assign", tx.tx_id, "100002", "--config", s_env.config, NULL), 2);
    CHECK_EQ_INT(h_journal_records(s_env.journal), records);

    CHECK_EQ_INT(s_deposit("assign", tx.tx_id, "100002", "client sent proof of address", "admin:ayse", &out), 0);
    CHECK(out && strstr(out, "assigned") && strstr(out, "journaled by the running server"));
    free(out);
    CHECK_EQ_INT(h_wait_state(&s_env, tx.tx_id, DEPOSIT_NOTIFIED, 20000), DEPOSIT_NOTIFIED);
    CHECK_EQ_INT(s_deals_of(100002, 3950), 1);
    /* it is no longer held: a second assign is refused and changes nothing */
    records = h_journal_records(s_env.journal);
    CHECK_EQ_INT(s_deposit("assign", tx.tx_id, "100003", "again", "admin:ayse", &out), 1);
    CHECK(out && strstr(out, "already credited"));
    free(out);
    CHECK_EQ_INT(s_deposit("retry", "no-such-deposit", NULL, "why not", "admin:ayse", &out), 1);
    CHECK(out && strstr(out, "unknown deposit"));
    free(out);
    CHECK_EQ_INT(h_journal_records(s_env.journal), records);
    h_sleep_ms(300);
    CHECK_EQ_INT(s_deals_of(100002, 3950), 1);
}

static void test_over_the_second_limit_needs_two_different_approvers(void)
{
    CHECK(s_ready);
    h_tx_t tx;
    CHECK(s_held(ADDR_A, "6000", &tx) == 0);
    snprintf(s_two, sizeof s_two, "%s", tx.tx_id);
    h_jinfo_t info;
    h_journal_info(s_env.journal, tx.tx_id, &info);
    CHECK(strstr(info.reason, "two approvers") != NULL);
    char *out = NULL;
    CHECK_EQ_INT(s_deposit("retry", tx.tx_id, NULL, "just try", "admin:ayse", &out), 1);
    CHECK(out && strstr(out, "waits for approval"));
    free(out);
    CHECK_EQ_INT(s_deposit("approve", tx.tx_id, NULL, "known client", "admin:ayse", &out), 0);
    CHECK(out && strstr(out, "waits for a second approver"));
    free(out);
    CHECK_EQ_INT(s_deposit("approve", tx.tx_id, NULL, "really", "admin:ayse", &out), 1);
    CHECK(out && strstr(out, "another approver"));
    free(out);
    h_sleep_ms(300);
    CHECK_EQ_INT(h_wait_state(&s_env, tx.tx_id, DEPOSIT_HELD, 100), DEPOSIT_HELD);
    CHECK_EQ_INT(s_deals_of(100001, 599950), 0);
    CHECK_EQ_INT(s_deposit("approve", tx.tx_id, NULL, "checked on chain", "admin:mehmet", &out), 0);
    CHECK(out && strstr(out, "approved"));
    free(out);
    CHECK_EQ_INT(h_wait_state(&s_env, tx.tx_id, DEPOSIT_NOTIFIED, 20000), DEPOSIT_NOTIFIED);
    CHECK_EQ_INT(s_deals_of(100001, 599950), 1);
}

static void test_a_rejected_deposit_is_never_credited(void)
{
    CHECK(s_ready);
    h_tx_t tx;
    CHECK(s_held(ADDR_A, "2000", &tx) == 0);
    snprintf(s_rejected, sizeof s_rejected, "%s", tx.tx_id);
    char *out = NULL;
    CHECK_EQ_INT(s_deposit("reject", tx.tx_id, NULL, "sender on a sanctions list", "admin:mehmet", &out), 0);
    CHECK(out && strstr(out, "rejected"));
    free(out);
    CHECK_EQ_INT(h_wait_state(&s_env, tx.tx_id, DEPOSIT_REJECTED, 5000), DEPOSIT_REJECTED);
    CHECK_EQ_INT(s_deposit("approve", tx.tx_id, NULL, "changed my mind", "admin:ayse", &out), 1);
    CHECK(out && strstr(out, "REJECTED"));
    free(out);
    h_sleep_ms(300);
    CHECK_EQ_INT(s_deals_of(100001, 199950), 0);
}

static void test_list_and_show_tell_who_did_what_from_where_and_why(void)
{
    CHECK(s_ready);
    char *out = NULL;
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "deposit", "list", "--state", "REJECTED", "--config", s_env.config, NULL), 0);
    CHECK(out && strstr(out, s_rejected) && strstr(out, "1 deposit\n"));
    free(out);
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "deposit", "list", "--login", "100001", "--json", "--config", s_env.config,
                            NULL), 0);
    CHECK(out && strstr(out, s_two) && strstr(out, "\"approvals\":2") &&
          strstr(out, "\"approvers\":[\"admin:ayse\",\"admin:mehmet\"]"));
    free(out);
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "deposit", "list", "--since", "2999-01-01", "--config", s_env.config, NULL), 0);
    CHECK(out && strstr(out, "0 deposits"));
    free(out);
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "deposit", "list", "--state", "SOMEWHERE", "--config", s_env.config, NULL), 2);
    free(out);
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "deposit", "show", s_two, "--config", s_env.config, NULL), 0);
    /* the timeline: received, held, two approvals (who, from where, why), locked, credited, notified */
    CHECK(out && strstr(out, "HELD") && strstr(out, "ADMIN_ACTION") && strstr(out, "actor=admin:ayse") &&
          strstr(out, "actor=admin:mehmet") && strstr(out, "origin=\"cli:") && strstr(out, "reason=\"known client\"") &&
          strstr(out, "CREDITED") && strstr(out, "ticket="));
    free(out);
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "deposit", "show", "no-such-deposit", "--config", s_env.config, NULL), 1);
    free(out);
}

/* The secret of the otpauth URI in out ("" if none). */
static void s_secret_of(const char *out, char secret[40])
{
    secret[0] = '\0';
    const char *p = out ? strstr(out, "?secret=") : NULL;
    if (p)
        sscanf(p + 8, "%39[A-Z2-7]", secret);
}

static void test_admin_accounts_through_the_running_server(void)
{
    CHECK(s_ready);
    char *out = NULL, secret[40];
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "admin", "add", "ayse", "--role", "approver", "--config", s_env.config,
                            NULL), 0);
    CHECK(out && strstr(out, "admin ayse added (journaled by the running server)") &&
          strstr(out, "one-time password: ") && strstr(out, "otpauth://totp/kasa:ayse?secret=") &&
          strstr(out, "\u2588"));
    s_secret_of(out, secret);
    CHECK_EQ_INT(strlen(secret), 32);
    free(out);
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "admin", "add", "ayse", "--role", "owner", "--config", s_env.config, NULL),
                 1);
    CHECK(out && strstr(out, "exists already"));
    free(out);
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "admin", "add", "root", "--role", "god", "--config", s_env.config, NULL), 2);
    free(out);
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "admin", "disable", "nobody", "--config", s_env.config, NULL), 1);
    free(out);
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "admin", "list", "--config", s_env.config, NULL), 0);
    CHECK(out && strstr(out, "ayse") && strstr(out, "approver") && strstr(out, "one-time password not yet changed"));
    free(out);
    /* the journal dump shows the account, never its secrets */
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "journal", "dump", s_env.journal, NULL), 0);
    CHECK(out && strstr(out, "ADMIN_ACCOUNT") && strstr(out, "totp=(set)") && !strstr(out, secret) &&
          !strstr(out, "argon2id"));
    free(out);
}

static void test_offline_approval_is_carried_out_by_the_next_start(void)
{
    CHECK(s_ready);
    h_tx_t tx;
    CHECK(s_held(ADDR_A, "1500", &tx) == 0);
    CHECK_EQ_INT(h_kasa_stop(&s_env), 0);
    uint64_t records = h_journal_records(s_env.journal);
    char *out = NULL;
    CHECK_EQ_INT(s_deposit("approve", "no-such-deposit", NULL, "x", "admin:ayse", &out), 1);
    free(out);
    CHECK_EQ_INT(s_deposit("retry", tx.tx_id, NULL, "x", "admin:ayse", &out), 1);   /* waits for approval */
    free(out);
    CHECK_EQ_INT(h_journal_records(s_env.journal), records);
    CHECK_EQ_INT(s_deposit("approve", tx.tx_id, NULL, "large but expected", "admin:ayse", &out), 0);
    CHECK(out && strstr(out, "no server was running"));
    free(out);
    CHECK_EQ_INT(h_journal_records(s_env.journal), records + 2);
    CHECK_EQ_INT(s_deals_of(100001, 149950), 0);
    /* admin accounts without a server too */
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "admin", "add", "mehmet", "--role", "operator", "--config", s_env.config,
                            NULL), 0);
    CHECK(out && strstr(out, "admin mehmet added (journaled; no server was running)"));
    free(out);
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "admin", "reset", "ayse", "--config", s_env.config, NULL), 0);
    CHECK(out && strstr(out, "admin ayse reset"));
    free(out);
    CHECK_EQ_INT(h_kasa_start(&s_env), 0);
    CHECK_EQ_INT(h_wait_state(&s_env, tx.tx_id, DEPOSIT_NOTIFIED, 20000), DEPOSIT_NOTIFIED);
    CHECK_EQ_INT(s_deals_of(100001, 149950), 1);
    /* the restart kept every earlier decision, and credited nothing twice */
    CHECK_EQ_INT(h_wait_state(&s_env, s_rejected, DEPOSIT_REJECTED, 100), DEPOSIT_REJECTED);
    CHECK_EQ_INT(s_deals_of(100001, 599950), 1);
    CHECK_EQ_INT(s_deals_of(100002, 3950), 1);
    /* and every admin account: the server knows both, and disables one */
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "admin", "disable", "mehmet", "--config", s_env.config, NULL), 0);
    CHECK(out && strstr(out, "disabled mehmet (journaled by the running server)"));
    free(out);
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "admin", "list", "--json", "--config", s_env.config, NULL), 0);
    CHECK(out && strstr(out, "{\"name\":\"ayse\",\"role\":\"approver\",\"disabled\":false") &&
          strstr(out, "{\"name\":\"mehmet\",\"role\":\"operator\",\"disabled\":true"));
    free(out);
}

static void test_clean_shutdown_and_journal_verifies(void)
{
    CHECK(s_ready);
    CHECK_EQ_INT(h_kasa_stop(&s_env), 0);
    char *out = NULL;
    CHECK_EQ_INT(h_kasa_cmd(&s_env, &out, "journal", "verify", s_env.journal, NULL), 0);
    free(out);
}

int main(void)
{
    if (h_env_init(&s_env, "desk") == 0 && h_sims_start(&s_env, NULL) == 0 &&
        h_config_write(&s_env, "KASA_AUTO_CREDIT_LIMIT=1000\nKASA_DUAL_APPROVAL_LIMIT=5000\n") == 0 &&
        h_kasa_start(&s_env) == 0)
        s_ready = h_link(&s_env, ADDR_A, 100001) == 0;
    if (!s_ready)
        h_log("setup failed; logs in %s", s_env.dir);
    RUN(test_unlinked_deposit_assigned_is_credited_exactly_once);
    RUN(test_over_the_second_limit_needs_two_different_approvers);
    RUN(test_a_rejected_deposit_is_never_credited);
    RUN(test_list_and_show_tell_who_did_what_from_where_and_why);
    RUN(test_admin_accounts_through_the_running_server);
    RUN(test_offline_approval_is_carried_out_by_the_next_start);
    RUN(test_clean_shutdown_and_journal_verifies);
    h_env_finish(&s_env, check_failed_ > 0);
    return check_done();
}
