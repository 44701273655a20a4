/* locker.c — see locker.h. */
#include "actors/locker.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <time.h>

#include "actors/claims.h"
#include "actors/cobo.h"
#include "actors/ingress.h"
#include "actors/mt5.h"
#include "actors/rates.h"
#include "actors/shared.h"
#include "schema/desk.h"
#include "schema/money.h"
#include "schema/log.h"

#define S_RETRY_BASE_MS 500
#define S_RETRY_CAP_MS 60000
#define S_SCAN_MIN_MS 500       /* PENDING follow-ups: the registry is scanned at most this often ... */
#define S_SCAN_MAX_MS 60000     /* ... and at least this often */
#define S_FOLLOW_UPS_MAX 64     /* follow-ups one scan queues at most (the rest wait for the next) */
#define S_RATE_POLL_MS 1000     /* how often a locker looks whether a live rate became fresh */
#define S_NO_RATE "no fresh rate for "   /* the start of a hold's reason the locker retries by itself */

/* An MT5 group as the locker uses it (cached per group name: a group's currency does not change). */
typedef struct {
    char currency[16];   /* Currency, upper case ("USD", "EUR", "USC") */
    int digits;          /* CurrencyDigits */
} s_group_t;

typedef struct {
    const stage_ctx_t *ctx;
    int index;                                /* which locker (0..ctx->lockers-1) */
    cobo_client_t *cobo;
    mt5_client_t *mt5;                        /* NULL when MT5_URL is unset: nothing can be locked */
    zhashx_t *groups;                         /* MT5 group name → s_group_t (this locker's own cache) */
    zhashx_t *asked;                          /* PENDING tx_id → wall ms Cobo was last asked (boxed) */
    int64_t next_scan_ms;                     /* monotonic: the next PENDING scan */
    zsock_t *to_crediter[STAGE_MAX_CREDITERS];
    uint64_t rng;
    uint64_t rate_gen;                        /* rates_generation() when held deposits were last looked at */
    int rate_held;                            /* 1: some deposit of this locker may wait for a fresh rate */
} s_locker_t;

static int64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A configured number of seconds, or dflt when it is 0 (a config_t not made by config_load). */
static int64_t s_cfg_ms(int seconds, int dflt)
{
    return (int64_t) (seconds > 0 ? seconds : dflt) * 1000;
}

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
        /* Not final yet (Confirming, PendingScreening, ...): Cobo's API can lag its own webhook. */
        snprintf(reason, reason_len, "Cobo says status %.32s, not Completed", api->status);
        return 1;
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
    if (self->ctx->claims && ev == DEPOSIT_EV_REFUSE)
        claims_release(self->ctx->claims, seen->tx_id);   /* final: no node has anything left to do */
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

/* zhashx destructor of a malloc'd value. */
static void s_box_free(void **item)
{
    free(*item);
    *item = NULL;
}

/* The currency and digits of login's account, from its MT5 group (user → Group → Currency,
 * CurrencyDigits; a group is read once per locker). 0 with *out; 1 retry later (reason); 2 hold
 * (reason: MT5 does not know the login). Never a default: a group that cannot be read, or that
 * reads without a currency or with digits out of range, is retried until MT5 answers properly. */
static int s_group(s_locker_t *self, uint64_t login, s_group_t *out, char *reason, size_t reason_len)
{
    if (!self->mt5) {
        snprintf(reason, reason_len, "MT5 is not configured (MT5_URL): the account's currency is unknown");
        return 1;
    }
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
    const s_group_t *cached = zhashx_lookup(self->groups, user.group);
    if (cached) {
        *out = *cached;
        return 0;
    }
    mt5_group_t group;
    rc = mt5_group_get(self->mt5, user.group, &group, err, sizeof err);
    if (rc == MT5_OK && !group.currency[0]) {
        rc = MT5_PERMANENT;
        snprintf(err, sizeof err, "no Currency in the answer");
    }
    if (rc != MT5_OK) {
        snprintf(reason, reason_len, "MT5 group %.40s of login %llu cannot be read (%s): %.40s", user.group,
                 (unsigned long long) login, mt5_result_name(rc), err);
        return 1;
    }
    memset(out, 0, sizeof *out);
    for (size_t i = 0; group.currency[i] && i + 1 < sizeof out->currency; i++)
        out->currency[i] = (char) toupper((unsigned char) group.currency[i]);
    out->digits = group.digits;
    s_group_t *copy = malloc(sizeof *copy);
    if (copy) {
        *copy = *out;
        if (zhashx_insert(self->groups, user.group, copy) != 0)
            free(copy);
    }
    return 0;
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
    if (!config_token(cfg, v->token_id)) {
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
    int needed = desk_approvals_needed(amount, cfg->auto_credit_limit, cfg->dual_approval_limit);
    if ((uint32_t) needed > e->approvals) {
        money_format(needed == 2 ? cfg->dual_approval_limit : cfg->auto_credit_limit, text, sizeof text);
        snprintf(reason, reason_len, "over the %s limit of %s: waits for %s", needed == 2 ? "dual-approval" : "auto-credit",
                 text, needed == 2 ? "two approvers" : "an approver");
        return 2;
    }
    s_group_t acct;
    int grc = s_group(self, login, &acct, reason, reason_len);
    if (grc)
        return grc;
    const config_token_t *tok = config_rule(cfg, v->token_id, acct.currency);
    if (!tok) {
        snprintf(reason, reason_len, "no rule for %.39s on %.15s accounts: set KASA_TOKEN_%.39s__%.15s", v->token_id,
                 acct.currency, v->token_id, acct.currency);
        return 2;
    }
    /* The money arrived: below the minimum a person decides (credit by hand, return, reject). */
    if (amount < tok->minimum) {
        money_format(tok->minimum, text, sizeof text);
        snprintf(reason, reason_len, "below minimum: %.30s %.39s < %.30s", v->amount, v->token_id, text);
        return 2;
    }
    /* The rate: a fixed rule's, or a live price no older than KASA_RATE_MAX_AGE_S — never a stale
     * or guessed one: without it the deposit is held, and retried once the price is fresh (s_idle). */
    money_atto_t rate = tok->rate;
    if (tok->live) {
        rates_quote_t q;
        char rwhy[128] = "";
        if (rates_quote(self->ctx->rates, tok, &q, rwhy, sizeof rwhy) != 0) {
            snprintf(reason, reason_len, S_NO_RATE "%.23s: %.100s", tok->symbol, rwhy);
            self->rate_held = 1;
            return 2;
        }
        rate = q.rate;
        r->rate_time_ms = q.fetched_ms;
        snprintf(r->rate_source, sizeof r->rate_source, "%s", q.source);
    } else {
        snprintf(r->rate_source, sizeof r->rate_source, "config");
    }
    money_format(rate, r->rate, sizeof r->rate);
    int digits = acct.digits;
    money_rule_t rule = { rate, tok->fee, digits };
    money_conversion_t conv;
    if (money_convert(amount, &rule, &conv, why, sizeof why) != 0) {
        snprintf(reason, reason_len, "conversion: %s", why);
        return 2;
    }
    r->event = DEPOSIT_EV_CONFIRMED;
    r->login = login;
    r->credit_minor = conv.credit_minor;
    r->digits = digits;
    snprintf(r->currency, sizeof r->currency, "%s", acct.currency);
    money_format(conv.remainder_atto, r->remainder, sizeof r->remainder);
    return 0;
}

/* ---- PENDING deposits whose final webhook never came ------------------------------------------ */

/* Asks Cobo's API about a PENDING deposit and journals what it says, as a webhook would have:
 * Completed → RECEIVED (then handled here as any RECEIVED deposit: re-confirmed, locked); Rejected
 * or Failed → REJECTED; still not final → a confirmation update if the confirmations rose. When
 * Cobo cannot be asked, or does not know the transaction, the next scan asks again. */
static int64_t s_follow_up(s_locker_t *self, const registry_entry_t *e)
{
    const char *tx = e->view.tx_id;
    char err[200] = "";
    cobo_tx_t api;
    cobo_err_t crc = cobo_get_transaction(self->cobo, tx, &api, err, sizeof err);
    int64_t age_s = (s_wall_ms() - e->view.updated_ms) / 1000;
    if (crc != COBO_OK) {
        log_warn("locker.follow_up_failed", "tx=%s age_s=%lld result=%s http=%d reason=\"%s\" next=\"ask again\"",
                 tx, (long long) age_s, cobo_err_name(crc), cobo_client_http_status(self->cobo), err);
        return 0;
    }
    record_t r;
    uint64_t login = e->view.login ? e->view.login : registry_address_login(self->ctx->registry, api.address);
    if (strcmp(api.tx_id, tx) != 0 || ingress_record(&api, login, &r, err, sizeof err) != 0) {
        log_warn("locker.follow_up_failed", "tx=%s age_s=%lld reason=\"Cobo's answer: %s\" next=\"ask again\"", tx,
                 (long long) age_s, strcmp(api.tx_id, tx) != 0 ? "another transaction" : err);
        return 0;
    }
    log_info("locker.follow_up", "tx=%s age_s=%lld status=%s confirmations=%d/%d", tx, (long long) age_s,
             api.status, api.confirmations, api.threshold);
    registry_result_t res = stage_commit(self->ctx, &r, 0, NULL, "locker", err, sizeof err);
    if (res == REGISTRY_MOVED && r.to == DEPOSIT_RECEIVED)
        return 1;   /* handled again at once, now as a RECEIVED deposit */
    return 0;
}

typedef struct {
    s_locker_t *self;
    int64_t now_ms, age_ms, poll_ms;
    zhashx_t *still;     /* the PENDING deposits this locker owns, with their last ask */
    char (*due)[80];
    int ndue, cap;
} s_scan_t;

/* Queues the deposit tx_id as the registry has it now (its latest record) on this locker's list. */
static void s_queue(s_locker_t *self, workq_t *q, const char *tx_id, int64_t now_ms)
{
    registry_entry_t e;
    if (registry_get(self->ctx->registry, tx_id, &e) != 0)
        return;
    record_t r;
    registry_entry_record(&e, &r);
    uint8_t *bytes = NULL;
    size_t len = 0;
    char err[128];
    if (record_encode(&r, &bytes, &len, err, sizeof err) == 0)
        workq_push(q, bytes, len, 0, now_ms);
    free(bytes);
}

/* Under the registry's lock: notes each PENDING deposit of this locker, and those due a follow-up. */
static void s_scan_one(void *arg, const registry_entry_t *e)
{
    s_scan_t *sc = arg;
    if (e->view.state != DEPOSIT_PENDING || sc->now_ms - e->view.updated_ms < sc->age_ms ||
        stage_route(sc->self->ctx, STAGE_LOCKER, e->view.tx_id, 0) != sc->self->index)
        return;
    const int64_t *asked = zhashx_lookup(sc->self->asked, e->view.tx_id);
    int64_t last = asked ? *asked : 0;
    int due = sc->now_ms - last >= sc->poll_ms && sc->ndue < sc->cap;
    int64_t *box = malloc(sizeof *box);
    if (!box)
        return;
    *box = due ? sc->now_ms : last;
    if (zhashx_insert(sc->still, e->view.tx_id, box) != 0) {
        free(box);
        return;
    }
    if (due)
        snprintf(sc->due[sc->ndue++], 80, "%s", e->view.tx_id);
}

static void s_retry_rates(s_locker_t *self, workq_t *q, int64_t now_ms);

/* The stage's idle hook: every so often, queues a follow-up for each PENDING deposit this locker
 * owns that has had no news for KASA_PENDING_AGE_S and was not asked about in KASA_PENDING_POLL_S.
 * The scan reads every deposit in memory under the registry's lock (a pass over 200,000 deposits
 * is a few milliseconds), at most once per S_SCAN_MIN_MS and at least once per S_SCAN_MAX_MS. */
static int64_t s_idle(void *arg, workq_t *q, int64_t now_ms)
{
    s_locker_t *self = arg;
    const config_t *cfg = self->ctx->cfg;
    int64_t age_ms = s_cfg_ms(cfg->pending_age_s, CONFIG_DEFAULT_PENDING_AGE_S);
    int64_t poll_ms = s_cfg_ms(cfg->pending_poll_s, CONFIG_DEFAULT_PENDING_POLL_S);
    int64_t period = (age_ms < poll_ms ? age_ms : poll_ms) / 2;
    period = period < S_SCAN_MIN_MS ? S_SCAN_MIN_MS : period > S_SCAN_MAX_MS ? S_SCAN_MAX_MS : period;
    int64_t wake = period;   /* when the hook wants to run again */
    if (self->ctx->rates) {
        s_retry_rates(self, q, now_ms);
        wake = period < S_RATE_POLL_MS ? period : S_RATE_POLL_MS;   /* the PENDING scan keeps its own pace */
    }
    if (now_ms < self->next_scan_ms)
        return self->next_scan_ms - now_ms < wake ? self->next_scan_ms - now_ms : wake;
    self->next_scan_ms = now_ms + period;

    char due[S_FOLLOW_UPS_MAX][80];
    s_scan_t sc = { self, s_wall_ms(), age_ms, poll_ms, zhashx_new(), due, 0, S_FOLLOW_UPS_MAX };
    if (!sc.still)
        return wake;
    zhashx_set_destructor(sc.still, s_box_free);
    registry_each(self->ctx->registry, 0, 0, s_scan_one, &sc);
    zhashx_destroy(&self->asked);
    self->asked = sc.still;   /* deposits no longer PENDING are forgotten */
    for (int i = 0; i < sc.ndue && !workq_full(q); i++)
        s_queue(self, q, due[i], now_ms);
    return wake;
}

typedef struct {
    s_locker_t *self;
    int waiting;         /* deposits of this locker held for a rate */
    char (*due)[80];     /* those whose symbol is fresh now */
    int ndue, cap;
} s_rate_scan_t;

/* Under the registry's lock: the HELD deposits of this locker that wait for a fresh rate (S_NO_RATE),
 * and among them those whose symbol is fresh now. */
static void s_scan_rate(void *arg, const registry_entry_t *e)
{
    s_rate_scan_t *sc = arg;
    if (e->view.state != DEPOSIT_HELD || strncmp(e->view.reason, S_NO_RATE, strlen(S_NO_RATE)) != 0 ||
        stage_route(sc->self->ctx, STAGE_LOCKER, e->view.tx_id, 0) != sc->self->index)
        return;
    char symbol[24];
    const char *p = e->view.reason + strlen(S_NO_RATE);
    size_t n = strcspn(p, ":");
    snprintf(symbol, sizeof symbol, "%.*s", (int) (n < sizeof symbol ? n : sizeof symbol - 1), p);
    sc->waiting++;
    if (sc->ndue < sc->cap && rates_fresh(sc->self->ctx->rates, symbol))
        snprintf(sc->due[sc->ndue++], 80, "%s", e->view.tx_id);
}

/* Once a live rate is fresh again, each deposit held for it goes back through the locker: HELD →
 * RECEIVED (ADMIN_RETRY, the same step as a person's retry, its reason saying kasa took it), then
 * locked at the fresh rate like any other. The registry moves a deposit once: a retry racing a
 * person's finds it RECEIVED already and journals nothing, so one credit. Looked at when a fetch
 * succeeded since the last look, only while some deposit may wait (rate_held; set at start so
 * deposits held before a restart are found). */
static void s_retry_rates(s_locker_t *self, workq_t *q, int64_t now_ms)
{
    uint64_t gen = rates_generation(self->ctx->rates);
    if (!self->rate_held || gen == self->rate_gen)
        return;
    self->rate_gen = gen;
    char due[S_FOLLOW_UPS_MAX][80];
    s_rate_scan_t sc = { self, 0, due, 0, S_FOLLOW_UPS_MAX };
    registry_each(self->ctx->registry, 0, 0, s_scan_rate, &sc);
    int queued = 0;
    for (int i = 0; i < sc.ndue && !workq_full(q); i++) {
        record_t r;
        char err[160], why[96];
        snprintf(why, sizeof why, "a fresh rate came: retried by kasa");
        stage_event_record(&r, due[i], DEPOSIT_EV_ADMIN_RETRY, why);
        snprintf(r.actor, sizeof r.actor, "kasa:rates");
        if (stage_commit(self->ctx, &r, 0, NULL, "locker", err, sizeof err) == REGISTRY_MOVED) {
            log_info("locker.rate_retry", "tx=%s", due[i]);
            s_queue(self, q, due[i], now_ms);
            queued++;
        }
    }
    /* some still wait (their symbol stale, or more than one pass can take): look again next time */
    self->rate_held = sc.waiting > queued;
}

/* ---- RECEIVED → LOCKED ------------------------------------------------------------------------- */

static int64_t s_handle(void *arg, workq_item_t *item)
{
    s_locker_t *self = arg;
    record_t seen;
    registry_entry_t e;
    if (stage_decode(item->bytes, item->len, &seen, "locker") != 0 ||
        registry_get(self->ctx->registry, seen.tx_id, &e) != 0 || registry_failed(self->ctx->registry))
        return 0;
    if (e.view.state == DEPOSIT_PENDING)
        return s_follow_up(self, &e);
    if (e.view.state != DEPOSIT_RECEIVED)
        return 0;   /* moved on meanwhile: nothing for the locker */
    if (self->ctx->claims) {   /* cluster mode: only the node holding the claim goes on (actors/claims.h) */
        int64_t later = claims_locker_gate(self->ctx, seen.tx_id, item->tries, &self->rng);
        if (later)
            return later < 0 ? 0 : later;
    }

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
    int check = locker_check_cobo(&journaled, &api, &ev, reason, sizeof reason);
    if (check == 1) {
        /* Completed by webhook, not yet by the API: retried with backoff for KASA_COBO_CONFIRM_WAIT_S
         * from the RECEIVED record (a restart keeps counting), then a person looks. */
        int64_t wait_ms = s_cfg_ms(self->ctx->cfg->cobo_confirm_wait_s, CONFIG_DEFAULT_COBO_CONFIRM_WAIT_S);
        int64_t waited_ms = s_wall_ms() - e.view.updated_ms;
        if (waited_ms < wait_ms)
            return s_retry(self, item, seen.tx_id, "cobo_not_final", reason);
        size_t n = strlen(reason);
        snprintf(reason + n, sizeof reason - n, " %lld s after the Completed webhook", (long long) (waited_ms / 1000));
        return s_decide(self, &seen, DEPOSIT_EV_HOLD, reason);
    }
    if (check != 0)
        return s_decide(self, &seen, ev, reason);

    /* Cluster mode: an address this node has not seen linked may have been linked on another node.
     * MongoDB has every link before its address was shown (actors/shared.h): ask it, and learn the
     * link here; when it cannot answer, wait and ask again — never hold as unlinked on a guess. */
    if (self->ctx->shared && !e.view.login && !registry_address_login(self->ctx->registry, e.view.address)) {
        uint64_t login = 0;
        if (shared_link_learn(self->ctx->shared, self->ctx->registry, self->ctx->journal, e.view.address, &login, err,
                              sizeof err) == SHARED_UNKNOWN)
            return s_retry(self, item, seen.tx_id, "address_link", err);
    }
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
    self->rate_held = 1;   /* deposits held for a rate before a restart are looked for at the first fetch */
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
    self->groups = zhashx_new();
    self->asked = zhashx_new();
    if (self->groups)
        zhashx_set_destructor(self->groups, s_box_free);
    if (!self->groups || !self->asked) {
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
    zhashx_destroy(&self->groups);
    zhashx_destroy(&self->asked);
    mt5_client_destroy(&self->mt5);
    cobo_client_destroy(&self->cobo);
}

static const stage_def_t s_def = {
    .kind = STAGE_LOCKER, .name = "locker", .ops = { s_handle, NULL, s_idle },
    .state_size = sizeof(s_locker_t), .init = s_init, .destroy = s_destroy,
};

zactor_t *locker_new(const stage_ctx_t *ctx, int index, char *err, size_t errlen)
{
    return stage_actor_new(ctx, &s_def, index, err, errlen);
}
