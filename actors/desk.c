/* desk.c — see desk.h. */
#include "actors/desk.h"

#include <inttypes.h>
#include <stdio.h>

#include "actors/mt5.h"
#include "actors/pipeline.h"
#include "schema/money.h"

#define DESK_MT5_TIMEOUT_MS 10000

int desk_login_check(const config_t *cfg, uint64_t login, char *err, size_t errlen)
{
    if (!login) {
        snprintf(err, errlen, "a login is required");
        return -1;
    }
    if (!cfg->mt5_url[0])
        return 0;
    mt5_client_t *mt5 = mt5_client_new(cfg->mt5_url, cfg->mt5_login, cfg->mt5_password, cfg->mt5_ca_file,
                                       DESK_MT5_TIMEOUT_MS);
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

registry_result_t desk_act(registry_t *registry, journal_t *journal, const config_t *cfg, const desk_request_t *req,
                           unsigned *effects, uint8_t **bytes, size_t *len, char *err, size_t errlen)
{
    /* MT5 is asked only about a deposit an assign may apply to; registry_desk() explains any other refusal */
    registry_entry_t e;
    if (req && req->tx_id && req->action == DESK_ASSIGN && registry_get(registry, req->tx_id, &e) == 0 &&
        e.view.state == DEPOSIT_HELD && desk_login_check(cfg, req->login, err, errlen) != 0)
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
