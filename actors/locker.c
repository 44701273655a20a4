/* locker.c — see locker.h. */
#include "actors/locker.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "actors/cobo.h"
#include "actors/mt5.h"
#include "schema/money.h"
#include "schema/log.h"

#define S_RETRY_BASE_MS 500
#define S_RETRY_CAP_MS 60000

typedef struct {
    const stage_ctx_t *ctx;
    int index;                                /* which locker (0..ctx->lockers-1) */
    cobo_client_t *cobo;
    mt5_client_t *mt5;                        /* NULL when MT5_URL is unset: digits from config */
    zhashx_t *group_digits;                   /* MT5 group → CurrencyDigits + 1 (cached; this locker's own) */
    zsock_t *to_crediter[STAGE_MAX_CREDITERS];
    uint64_t rng;
} s_locker_t;

/* ---- Cobo's view against the webhook's ---------------------------------------------------------- */

static int s_same_address(const char *a, const char *b)
{
    if (a[0] == '0' && (a[1] == 'x' || a[1] == 'X'))
        return strcasecmp(a, b) == 0;   /* EVM: checksum case is not part of the address */
    return strcmp(a, b) == 0;
}

int locker_check_cobo(const record_t *seen, const cobo_tx_t *api, deposit_event_t *ev,
                      char *reason, size_t reason_len)
{
    *ev = DEPOSIT_EV_HOLD;
    if (strcmp(api->tx_id, seen->tx_id) != 0) {
        snprintf(reason, reason_len, "Cobo answered for another transaction");
        return -1;
    }
    if (strcmp(api->type, "Deposit") != 0) {
        snprintf(reason, reason_len, "Cobo says type %.24s, not Deposit", api->type);
        return -1;
    }
    if (strcmp(api->status, "Rejected") == 0 || strcmp(api->status, "Failed") == 0 ||
        strcmp(api->sub_status, "ReOrged") == 0) {
        *ev = DEPOSIT_EV_REFUSE;
        snprintf(reason, reason_len, "Cobo says %.32s%s%.48s", api->status, api->sub_status[0] ? "/" : "",
                 api->sub_status);
        return -1;
    }
    if (strcmp(api->status, "Completed") != 0) {
        snprintf(reason, reason_len, "Cobo says status %.32s, not Completed", api->status);
        return -1;
    }
    if (strcmp(api->token_id, seen->token_id) != 0) {
        snprintf(reason, reason_len, "token differs: webhook %.40s, Cobo %.40s", seen->token_id, api->token_id);
        return -1;
    }
    money_atto_t a = 0, b = 0;
    char why[96];
    if (money_parse(seen->amount, &a, why, sizeof why) != 0 || money_parse(api->amount, &b, why, sizeof why) != 0) {
        snprintf(reason, reason_len, "amount unreadable: %s", why);
        return -1;
    }
    if (a != b) {
        snprintf(reason, reason_len, "amount differs: webhook %.48s, Cobo %.48s", seen->amount, api->amount);
        return -1;
    }
    if (!s_same_address(seen->address, api->address)) {
        snprintf(reason, reason_len, "destination address differs from Cobo's");
        return -1;
    }
    return 0;
}

/* ---- decisions ---------------------------------------------------------------------------------- */

/* Journals ev with reason (HOLD / REFUSE). Always done with the item afterwards. */
static int64_t s_decide(s_locker_t *self, const record_t *seen, deposit_event_t ev, const char *reason)
{
    record_t r;
    stage_event_record(&r, seen->tx_id, ev, reason);
    char err[160];
    registry_result_t res = stage_commit(self->ctx, &r, 0, NULL, "locker", err, sizeof err);
    if (res != REGISTRY_MOVED && res != REGISTRY_SAME)
        log_warn("locker.skipped", "tx=%s event=%s reason=\"%s\"", seen->tx_id, deposit_event_name(ev), err);
    return 0;
}

static int64_t s_retry(s_locker_t *self, const workq_item_t *item, const char *tx_id, const char *what,
                       const char *why)
{
    int64_t ms = workq_backoff_ms(item->tries, S_RETRY_BASE_MS, S_RETRY_CAP_MS, &self->rng);
    log_warn("locker.retry", "tx=%s step=%s try=%u retry_ms=%lld reason=\"%s\"", tx_id, what, item->tries + 1,
             (long long) ms, why);
    return ms;
}

/* The account currency digits of login: 0 with *digits; 1 retry later; 2 hold (reason). */
static int s_digits(s_locker_t *self, uint64_t login, int *digits, char *reason, size_t reason_len)
{
    *digits = self->ctx->cfg->mt5_digits;
    if (!self->mt5)
        return 0;
    char err[160] = "";
    mt5_user_t user;
    mt5_result_t rc = mt5_user_get(self->mt5, login, &user, err, sizeof err);
    if (rc == MT5_PERMANENT) {
        snprintf(reason, reason_len, "MT5 does not accept login %llu: %.100s", (unsigned long long) login, err);
        return 2;
    }
    if (rc != MT5_OK) {
        snprintf(reason, reason_len, "MT5 user_get %s: %.100s", mt5_result_name(rc), err);
        return 1;
    }
    void *cached = zhashx_lookup(self->group_digits, user.group);
    if (cached) {
        *digits = (int) ((intptr_t) cached - 1);
        return 0;
    }
    mt5_group_t group;
    rc = mt5_group_get(self->mt5, user.group, &group, err, sizeof err);
    if (rc == MT5_OK && group.digits >= 0 && group.digits <= MONEY_MAX_DIGITS) {
        *digits = group.digits;
        zhashx_insert(self->group_digits, user.group, (void *) (intptr_t) (group.digits + 1));
        return 0;
    }
    if (rc == MT5_OK || rc == MT5_PERMANENT) {
        log_warn("locker.digits_default", "login=%llu group=%s digits=%d reason=\"%s\"", (unsigned long long) login,
                 user.group, *digits, rc == MT5_OK ? "CurrencyDigits out of range" : err);
        return 0;
    }
    snprintf(reason, reason_len, "MT5 group_get %s: %.100s", mt5_result_name(rc), err);
    return 1;
}

/* The money rules; on success fills r (CONFIRMED) and returns 0. Else 1 retry (reason), or the
 * event to take through *ev with the reason and 2. */
static int s_rules(s_locker_t *self, const registry_entry_t *e, record_t *r, deposit_event_t *ev,
                   char *reason, size_t reason_len)
{
    const config_t *cfg = self->ctx->cfg;
    const deposit_view_t *v = &e->view;
    *ev = DEPOSIT_EV_HOLD;
    uint64_t login = v->login ? v->login : registry_address_login(self->ctx->registry, v->address);
    if (!login) {
        snprintf(reason, reason_len, "address not linked to any account");
        return 2;
    }
    const config_token_t *tok = config_token(cfg, v->token_id);
    if (!tok) {
        snprintf(reason, reason_len, "token %.40s not accepted", v->token_id);
        return 2;
    }
    money_atto_t amount;
    char why[96];
    if (money_parse(v->amount, &amount, why, sizeof why) != 0) {
        snprintf(reason, reason_len, "%s", why);
        return 2;
    }
    char text[64];
    if (amount < tok->minimum) {
        money_format(tok->minimum, text, sizeof text);
        *ev = DEPOSIT_EV_REFUSE;
        snprintf(reason, reason_len, "below the minimum of %s %.40s", text, v->token_id);
        return 2;
    }
    if (cfg->auto_credit_limit && amount > cfg->auto_credit_limit) {
        money_format(cfg->auto_credit_limit, text, sizeof text);
        snprintf(reason, reason_len, "over the auto-credit limit of %s", text);
        return 2;
    }
    int digits;
    int drc = s_digits(self, login, &digits, reason, reason_len);
    if (drc)
        return drc;
    money_rule_t rule = { tok->rate, tok->fee, digits };
    money_conversion_t conv;
    if (money_convert(amount, &rule, &conv, why, sizeof why) != 0) {
        snprintf(reason, reason_len, "conversion: %s", why);
        return 2;
    }
    r->event = DEPOSIT_EV_CONFIRMED;
    r->login = login;
    r->credit_minor = conv.credit_minor;
    r->digits = digits;
    money_format(conv.remainder_atto, r->remainder, sizeof r->remainder);
    return 0;
}

static int64_t s_handle(void *arg, workq_item_t *item)
{
    s_locker_t *self = arg;
    record_t seen;
    registry_entry_t e;
    if (stage_fetch(self->ctx, item, "locker", DEPOSIT_RECEIVED, &seen, &e) != 0)
        return 0;   /* moved on meanwhile (or the journal failed): nothing for the locker */

    char err[200] = "", reason[160] = "";
    deposit_event_t ev;
    cobo_tx_t api;
    cobo_err_t crc = cobo_get_transaction(self->cobo, seen.tx_id, &api, err, sizeof err);
    if (crc == COBO_ERR_ARG || (crc == COBO_ERR_HTTP_4XX && cobo_client_http_status(self->cobo) == 404)) {
        snprintf(reason, sizeof reason, "Cobo does not know this transaction: %.100s", err);
        return s_decide(self, &seen, DEPOSIT_EV_HOLD, reason);
    }
    if (crc != COBO_OK)
        return s_retry(self, item, seen.tx_id, cobo_err_name(crc), err);
    /* Cobo's view is checked against the webhook's as journaled (e's fields). */
    record_t journaled;
    registry_entry_record(&e, &journaled);
    if (locker_check_cobo(&journaled, &api, &ev, reason, sizeof reason) != 0)
        return s_decide(self, &seen, ev, reason);

    record_t r;
    record_init(&r, RECORD_DEPOSIT);
    snprintf(r.tx_id, sizeof r.tx_id, "%s", seen.tx_id);
    int rc = s_rules(self, &e, &r, &ev, reason, sizeof reason);
    if (rc == 1)
        return s_retry(self, item, seen.tx_id, "mt5", reason);
    if (rc == 2)
        return s_decide(self, &seen, ev, reason);

    zsock_t *crediter = self->to_crediter[stage_crediter_of(self->ctx, r.login)];
    if (stage_commit(self->ctx, &r, DEPOSIT_EFFECT_CREDIT, crediter, "locker", err, sizeof err) != REGISTRY_MOVED)
        log_warn("locker.skipped", "tx=%s event=CONFIRMED reason=\"%s\"", r.tx_id, err);
    return 0;
}

static int s_init(void *state, const stage_ctx_t *ctx, int index, char *errbuf, size_t errlen)
{
    s_locker_t *self = state;
    const config_t *cfg = ctx->cfg;
    self->ctx = ctx;
    self->index = index;
    char err[160] = "";
    self->rng = stage_seed(self);
    self->cobo = cobo_client_new(cfg->cobo_api_url, cfg->cobo_api_key, cfg->cobo_api_secret,
                                 cfg->cobo_webhook_pubkey, (long) self->ctx->cobo_timeout_ms, err, sizeof err);
    if (!self->cobo) {
        snprintf(errbuf, errlen, "locker %d: Cobo client: %s", index, err);
        return -1;
    }
    if (cfg->mt5_url[0]) {
        self->mt5 = mt5_client_new(cfg->mt5_url, cfg->mt5_login, cfg->mt5_password, cfg->mt5_ca_file,
                                   (long) self->ctx->mt5_timeout_ms);
        if (!self->mt5) {
            snprintf(errbuf, errlen, "locker %d: MT5 client: bad MT5_URL or credentials", index);
            return -1;
        }
    }
    self->group_digits = zhashx_new();
    if (!self->group_digits) {
        snprintf(errbuf, errlen, "locker %d: no memory", index);
        return -1;
    }
    for (int i = 0; i < self->ctx->crediters; i++) {
        char ep[96];
        stage_endpoint(self->ctx, STAGE_CREDITER, i, ep, sizeof ep);
        self->to_crediter[i] = stage_push_new(ep);
        if (!self->to_crediter[i]) {
            snprintf(errbuf, errlen, "locker %d: cannot connect %s", index, ep);
            return -1;
        }
    }
    return 0;
}

static void s_destroy(void *state)
{
    s_locker_t *self = state;
    for (int i = 0; i < STAGE_MAX_CREDITERS; i++)
        zsock_destroy(&self->to_crediter[i]);
    zhashx_destroy(&self->group_digits);
    mt5_client_destroy(&self->mt5);
    cobo_client_destroy(&self->cobo);
}

static const stage_def_t s_def = {
    .kind = STAGE_LOCKER, .name = "locker", .ops = { s_handle, NULL, NULL },
    .state_size = sizeof(s_locker_t), .init = s_init, .destroy = s_destroy,
};

zactor_t *locker_new(const stage_ctx_t *ctx, int index, char *err, size_t errlen)
{
    return stage_actor_new(ctx, &s_def, index, err, errlen);
}
