/* desk.c — see desk.h. */
#include "actors/desk.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/credit_check.h"
#include "actors/crediter.h"
#include "actors/mt5.h"
#include "actors/pipeline.h"
#include "journal/journal.h"
#include "schema/log.h"
#include "schema/money.h"

int desk_login_check(const config_t *cfg, uint64_t login, char *err, size_t errlen)
{
    if (!login) {
        snprintf(err, errlen, "a login is required");
        return -1;
    }
    if (!cfg->mt5_url[0])
        return 0;
    mt5_client_t *mt5 = mt5_client_new(cfg->mt5_url, cfg->mt5_login, cfg->mt5_password, cfg->mt5_ca_file,
                                       config_mt5_timeout_ms(cfg));
    if (!mt5) {
        snprintf(err, errlen, "cannot ask MT5 about login %" PRIu64 ": bad MT5_URL or credentials", login);
        return -1;
    }
    char why[160] = "";
    mt5_user_t user;
    mt5_result_t rc = mt5_user_get(mt5, login, &user, why, sizeof why);
    mt5_client_destroy(&mt5);
    if (rc == MT5_OK)
        return 0;
    if (rc == MT5_PERMANENT)
        snprintf(err, errlen, "MT5 does not know login %" PRIu64 ": %s", login, why);
    else
        snprintf(err, errlen, "cannot ask MT5 about login %" PRIu64 " (%s): %s; nothing was done", login,
                 mt5_result_name(rc), why);
    return -1;
}

/* Journals an alert for e about the deal rc found (see registry_alert). */
static void s_alert(registry_t *registry, journal_t *journal, const registry_entry_t *e, record_alert_t alert,
                    const credit_check_t *rc, const char *reason)
{
    record_t r;
    record_init(&r, RECORD_ALERT);
    snprintf(r.tx_id, sizeof r.tx_id, "%s", e->view.tx_id);
    snprintf(r.alert, sizeof r.alert, "%s", record_alert_name(alert));
    r.login = rc->login;
    r.ticket = rc->deal.ticket;
    r.ticket2 = rc->ticket2;
    snprintf(r.reason, sizeof r.reason, "%s", reason);
    char err[160];
    registry_alert(registry, journal, &r, err, sizeof err);
}

/* Before a person rejects a deposit a credit was attempted for: no earlier than the settle time
 * after the last attempt, and only if MT5's deal history shows no credit (a complete "not there").
 * A deal found makes the deposit CREDITED instead (HELD + CREDIT_OK, with a credit_after_hold
 * alert, its record in *effects, *bytes, *len for the caller to hand on; or HELD stays with a
 * deal_mismatch alert) and the reject is refused. 0 to go on, or -1 with the reason in err. */
static int s_reconcile_reject(registry_t *registry, journal_t *journal, const config_t *cfg,
                              const registry_entry_t *e, unsigned *effects, uint8_t **bytes, size_t *len,
                              char *err, size_t errlen)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t settle_ms = 1000 * (int64_t) (cfg->mt5_settle_s > 0 ? cfg->mt5_settle_s : CONFIG_DEFAULT_MT5_SETTLE_S);
    int64_t settle_end = e->last_attempt_ms + settle_ms;
    if (now < settle_end) {
        snprintf(err, errlen, "a credit was attempted %lld s ago and MT5 may still execute it: reject again in %lld s",
                 (long long) ((now - e->last_attempt_ms) / 1000), (long long) ((settle_end - now + 999) / 1000));
        return -1;
    }
    mt5_client_t *m = mt5_client_new(cfg->mt5_url, cfg->mt5_login, cfg->mt5_password, cfg->mt5_ca_file,
                                     config_mt5_timeout_ms(cfg));
    if (!m) {
        snprintf(err, errlen, "cannot reconcile with MT5: bad MT5_URL or credentials");
        return -1;
    }
    char ref[32];
    crediter_ref(e->view.tx_id, ref);
    credit_check_t rc;
    credit_check_answer_t a = credit_check_run(m, e, ref, now, &rc);
    mt5_client_destroy(&m);
    log_info("desk.reject_reconciled", "tx=%s answer=%s ticket=%llu reason=\"%s\"", e->view.tx_id,
             credit_check_answer_name(a), (unsigned long long) rc.deal.ticket, rc.why);
    if (a == CREDIT_CHECK_NOT_THERE)
        return 0;
    if (a != CREDIT_CHECK_FOUND) {
        snprintf(err, errlen, "cannot tell whether the credit reached MT5 (%s): try again", rc.why);
        return -1;
    }
    if (rc.mismatch) {
        s_alert(registry, journal, e, RECORD_ALERT_DEAL_MISMATCH, &rc, rc.why);
        snprintf(err, errlen, "not rejected: %s", rc.why);
        return -1;
    }
    record_t r;
    record_init(&r, RECORD_DEPOSIT);
    snprintf(r.tx_id, sizeof r.tx_id, "%s", e->view.tx_id);
    r.event = DEPOSIT_EV_CREDIT_OK;
    r.login = rc.login;
    r.ticket = rc.deal.ticket;
    snprintf(r.ref, sizeof r.ref, "%s", e->ref[0] ? e->ref : ref);
    char why[160] = "";
    if (registry_commit(registry, journal, &r, effects, bytes, len, why, sizeof why) == REGISTRY_MOVED)
        s_alert(registry, journal, e, RECORD_ALERT_CREDIT_AFTER_HOLD, &rc, "a credit attempted before the hold reached MT5");
    snprintf(err, errlen, "not rejected: deal %llu on login %llu carries its reference; the deposit is credited",
             (unsigned long long) rc.deal.ticket, (unsigned long long) rc.login);
    return -1;
}

registry_result_t desk_act(registry_t *registry, journal_t *journal, const config_t *cfg, const desk_request_t *req,
                           unsigned *effects, uint8_t **bytes, size_t *len, char *err, size_t errlen)
{
    /* MT5 is asked only about a deposit an assign may apply to; registry_desk() explains any other refusal */
    registry_entry_t e;
    if (req && req->tx_id && req->action == DESK_ASSIGN && registry_get(registry, req->tx_id, &e) == 0 &&
        e.view.state == DEPOSIT_HELD && desk_login_check(cfg, req->login, err, errlen) != 0)
        return REGISTRY_ILLEGAL;
    /* a reject ends the deposit, so a credit attempted for it is looked for in MT5 first (a retry or
     * an assign goes back through the crediter, which does the same before any send) */
    if (req && req->tx_id && req->action == DESK_REJECT && registry_get(registry, req->tx_id, &e) == 0 &&
        e.view.state == DEPOSIT_HELD && e.attempts &&
        s_reconcile_reject(registry, journal, cfg, &e, effects, bytes, len, err, errlen) != 0)
        return REGISTRY_ILLEGAL;
    return registry_desk(registry, journal, cfg, req, effects, bytes, len, err, errlen);
}

void desk_entry_json(jbuf_t *b, const registry_entry_t *e)
{
    const deposit_view_t *d = &e->view;
    jbuf_puts(b, "{");
    pipeline_view_json(b, d);
    if (d->login)
        jbuf_printf(b, ",\"login\":%" PRIu64, d->login);
    else
        jbuf_puts(b, ",\"login\":null");
    char credited[64];
    if (d->ticket && d->credit_minor > 0 && money_format_minor(d->credit_minor, d->digits, credited, sizeof credited) == 0) {
        jbuf_puts(b, ",\"credited\":");
        jbuf_str(b, credited);
    } else {
        jbuf_puts(b, ",\"credited\":null");
    }
    if (d->ticket)
        jbuf_printf(b, ",\"ticket\":%" PRIu64, d->ticket);
    else
        jbuf_puts(b, ",\"ticket\":null");
    jbuf_puts(b, ",\"tx_hash\":");
    jbuf_str(b, d->tx_hash[0] ? d->tx_hash : NULL);
    jbuf_puts(b, ",\"reason\":");
    jbuf_str(b, d->reason);
    jbuf_printf(b, ",\"attempts\":%u,\"approvals\":%u,\"approvers\":[", (unsigned) e->attempts,
                (unsigned) e->approvals);
    for (uint32_t i = 0; i < e->approvals && i < DESK_MAX_APPROVERS; i++) {
        if (i)
            jbuf_puts(b, ",");
        jbuf_str(b, e->approvers[i]);
    }
    jbuf_printf(b, "],\"created_ms\":%lld,\"updated_ms\":%lld}", (long long) d->created_ms,
                (long long) d->updated_ms);
}

void desk_command_reason(const char *reason, const char *command_id, char *out, size_t len)
{
    snprintf(out, len, "%.110s (command %.40s)", reason ? reason : "", command_id);
}

int desk_journaled(const char *journal_dir, uint64_t from_lsn, const desk_request_t *req)
{
    char err[256];
    journal_reader_t *rd = journal_reader_open(journal_dir, from_lsn ? from_lsn : 1, err, sizeof err);
    record_t *r = rd ? malloc(sizeof *r) : NULL;
    if (!r) {
        journal_reader_destroy(&rd);
        return -1;
    }
    const char *action = desk_action_name(req->action);
    journal_entry_t je;
    int found = 0, got = 0;
    while (!found && (got = journal_reader_next(rd, &je)) == 1)
        found = record_decode(je.payload, je.len, r, err, sizeof err) == 0 && r->kind == RECORD_ADMIN_ACTION &&
                strcmp(r->tx_id, req->tx_id) == 0 && strcmp(r->action, action) == 0 &&
                strcmp(r->actor, req->actor ? req->actor : "") == 0 && strcmp(r->reason, req->reason ? req->reason : "") == 0;
    int bad = !found && got < 0;
    free(r);
    journal_reader_destroy(&rd);
    return found ? 1 : bad ? -1 : 0;
}
