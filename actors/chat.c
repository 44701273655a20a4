/* chat.c — see chat.h. Two threads: the notice thread drains the queue chat_on_commit fills; the
 * poll thread long-polls getUpdates and handles presses one at a time, in update order. Each has
 * its own Telegram client (a long poll holds its client's handle for the whole wait). */
#include "actors/chat.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actors/claims.h"
#include "actors/notice.h"
#include "actors/registry.h"
#include "actors/stage.h"
#include "schema/admin.h"
#include "schema/log.h"
#include "schema/money.h"

#define S_PRESSES 16              /* presses read per getUpdates */
#define S_RETRY_BASE_MS 1000
#define S_RETRY_CAP_MS 30000
#define S_POLLER_LEASE_MIN_MS 3000   /* a poll of 1 s (Telegram's timeout is whole seconds) + its request's
                                        own timeout (lease/3) + lease/3 to spare */

typedef struct {
    char tx_id[80];
    long long message_id;
    char reason[160];             /* the reason it was held for, as the notice showed it */
} s_sent_t;

typedef struct {
    char kind[8];
    chat_button_fn *fn;
    void *arg;
} s_route_t;

typedef struct {
    chat_wants_fn *wants;
    chat_notice_fn *fn;
    void *arg;
} s_watch_t;

struct chat_t {
    const config_t *cfg;
    notice_lang_t lang;
    pipeline_t *pipeline;
    admins_t *admins;
    telegram_t *out;              /* the notice thread's client */
    telegram_t *in;               /* the poll thread's client (getUpdates, answers, edits) */
    atomic_int stop;
    pthread_mutex_t mu;           /* guards the queue, sent[] */
    pthread_cond_t cv;            /* a record queued, or the stop */
    record_t *queue;              /* ring of CHAT_QUEUE */
    size_t qhead, qcount;
    uint64_t dropped;
    s_sent_t sent[CHAT_REMEMBER]; /* ring: the held notices sent in this run */
    size_t sent_next;
    s_route_t routes[CHAT_MAX_KINDS];
    int nroutes;
    s_watch_t watches[CHAT_MAX_KINDS];
    atomic_int nwatches;          /* read by the commit callback: an entry is filled before it counts */
    pthread_t notice_thread, poll_thread;
    int notice_started, poll_started;
    char offset_path[600];
    claims_t *claims;             /* cluster mode: the poller's lease (CHAT_POLLER_LEASE); NULL on one node */
    int64_t lease_ms;             /* the poller's lease (cluster mode) */
    int32_t epoch;                /* the poll thread's: the lease's epoch it holds, 0 none */
    char holder[64];              /* the poll thread's: the node it last saw polling ("" none) */
};

/* The poller's lease for cfg: KASA_CLAIM_LEASE_MS, at least S_POLLER_LEASE_MIN_MS. */
static int64_t s_poller_lease_ms(const config_t *cfg)
{
    int64_t ms = cfg->claim_lease_ms > 0 ? cfg->claim_lease_ms : CONFIG_DEFAULT_CLAIM_LEASE_MS;
    return ms > S_POLLER_LEASE_MIN_MS ? ms : S_POLLER_LEASE_MIN_MS;
}

const char *chat_approver(const config_t *cfg, int64_t user_id)
{
    for (int i = 0; i < cfg->telegram_approver_count; i++)
        if (cfg->telegram_approvers[i].user_id == user_id)
            return cfg->telegram_approvers[i].admin;
    return NULL;
}

void chat_button_data(const char *action, const char *kind, const char *id, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s:%s:%s", action, kind, id);
    if (n < 0 || (size_t) n > TELEGRAM_MAX_DATA || (size_t) n >= len)
        snprintf(buf, len, "%s:%s:#%016" PRIx64, action, kind, stage_tx_hash(id));
}

void chat_deposit_buttons(const char *tx_id, int waiting, const char *lang, chat_reply_t *reply)
{
    desk_action_t acts[2] = { waiting ? DESK_APPROVE : DESK_RETRY, DESK_REJECT };
    reply->nbuttons = 2;
    for (int i = 0; i < 2; i++) {
        chat_button_data(desk_action_name(acts[i]), "d", tx_id, reply->data[i], sizeof reply->data[i]);
        reply->buttons[i].text = notice_button(acts[i], notice_lang(lang));
        reply->buttons[i].data = reply->data[i];
    }
}

/* Approvals the deposit's amount needs under the configured limits. */
static int s_needed(const config_t *cfg, const registry_entry_t *e)
{
    money_atto_t amount;
    if (money_parse(e->view.amount, &amount, NULL, 0) != 0)
        return 0;
    return desk_approvals_needed(amount, cfg->auto_credit_limit, cfg->dual_approval_limit);
}

/* Sleeps up to ms, ending early on the stop. */
static void s_sleep(chat_t *self, int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L)
        until.tv_sec++, until.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&self->mu);
    while (!atomic_load(&self->stop) && pthread_cond_timedwait(&self->cv, &self->mu, &until) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&self->mu);
}

/* Sends text (with reply's keyboard, if any) to the chat, retrying a transient failure up to
 * CHAT_TRIES times. The message id, or 0 when it could not be sent (logged). */
static long long s_send(chat_t *self, const char *what, const char *tx_id, const char *text, const chat_reply_t *kb)
{
    int64_t wait_ms = S_RETRY_BASE_MS;
    for (int i = 0; i < CHAT_TRIES && !atomic_load(&self->stop); i++) {
        char err[240] = "";
        long long mid = 0;
        telegram_result_t rc = telegram_send_keyboard(self->out, self->cfg->telegram_chat_id, text,
                                                      kb ? kb->buttons : NULL, kb ? kb->nbuttons : 0, &mid, err,
                                                      sizeof err);
        if (rc == TELEGRAM_OK) {
            log_info("chat.sent", "what=%s tx=%s message_id=%lld", what, tx_id, mid);
            return mid;
        }
        log_warn("chat.send_failed", "what=%s tx=%s try=%d result=%s reason=\"%s\"", what, tx_id, i + 1,
                 telegram_result_name(rc), err);
        if (rc == TELEGRAM_PERMANENT)
            break;
        int64_t asked = (int64_t) telegram_retry_after_s(self->out) * 1000;
        s_sleep(self, asked > wait_ms ? (asked < 60000 ? asked : 60000) : wait_ms);
        wait_ms = wait_ms * 2 < S_RETRY_CAP_MS ? wait_ms * 2 : S_RETRY_CAP_MS;
    }
    return 0;
}

long long chat_send(chat_t *self, const char *what, const char *id, const char *html, const chat_reply_t *kb)
{
    return self && html ? s_send(self, what ? what : "notice", id ? id : "-", html, kb) : 0;
}

static void s_remember(chat_t *self, const char *tx_id, long long mid, const char *reason)
{
    pthread_mutex_lock(&self->mu);
    s_sent_t *s = &self->sent[self->sent_next++ % CHAT_REMEMBER];
    snprintf(s->tx_id, sizeof s->tx_id, "%s", tx_id);
    snprintf(s->reason, sizeof s->reason, "%s", reason);
    s->message_id = mid;
    pthread_mutex_unlock(&self->mu);
}

/* The newest held notice sent for tx_id in this run: 1 and *out, or 0. */
static int s_recall(chat_t *self, const char *tx_id, s_sent_t *out)
{
    int found = 0;
    pthread_mutex_lock(&self->mu);
    for (size_t i = 0; i < CHAT_REMEMBER && !found; i++) {
        const s_sent_t *s = &self->sent[(self->sent_next + CHAT_REMEMBER - 1 - i) % CHAT_REMEMBER];
        if (s->message_id && strcmp(s->tx_id, tx_id) == 0) {
            *out = *s;
            found = 1;
        }
    }
    pthread_mutex_unlock(&self->mu);
    return found;
}

/* A deposit became HELD: its notice, with buttons when approvers are mapped. */
static void s_held_notice(chat_t *self, const char *tx_id)
{
    registry_entry_t e;
    if (registry_get(pipeline_registry(self->pipeline), tx_id, &e) != 0 || e.view.state != DEPOSIT_HELD)
        return;   /* moved on before the notice went out (an operator was quicker) */
    int needed = s_needed(self->cfg, &e);
    char *text = notice_held(&e, needed, NULL, self->lang);
    chat_reply_t kb;
    memset(&kb, 0, sizeof kb);
    if (self->cfg->telegram_approver_count > 0)
        chat_deposit_buttons(tx_id, needed > 0 && e.approvals < (uint32_t) needed, self->cfg->notice_lang, &kb);
    long long mid = s_send(self, "held", tx_id, text, &kb);
    free(text);
    if (mid)
        s_remember(self, tx_id, mid, e.view.reason);
}

/* A decision taken at another door: the held notice edited, or a new message. */
static void s_decision_notice(chat_t *self, const record_t *r)
{
    int action = desk_action_from_name(r->action);
    registry_entry_t e;
    if (action < 0 || registry_get(pipeline_registry(self->pipeline), r->tx_id, &e) != 0)
        return;
    int needed = s_needed(self->cfg, &e);
    int waiting = e.view.state == DEPOSIT_HELD && needed > 0 && e.approvals < (uint32_t) needed;
    char line[400];
    notice_decision((desk_action_t) action, action == DESK_APPROVE && waiting, (int) e.approvals, needed, r->actor,
                    r->origin, self->lang, line, sizeof line);
    s_sent_t sent;
    int known = s_recall(self, r->tx_id, &sent);
    if (known)
        snprintf(e.view.reason, sizeof e.view.reason, "%s", sent.reason);
    char *text = notice_held(&e, needed, line, self->lang);
    chat_reply_t kb;
    memset(&kb, 0, sizeof kb);
    if (waiting && self->cfg->telegram_approver_count > 0)
        chat_deposit_buttons(r->tx_id, 1, self->cfg->notice_lang, &kb);
    char err[240] = "";
    if (known && telegram_edit(self->out, self->cfg->telegram_chat_id, sent.message_id, text, kb.buttons, kb.nbuttons,
                               err, sizeof err) == TELEGRAM_OK) {
        log_info("chat.edited", "tx=%s message_id=%lld action=%s", r->tx_id, sent.message_id, r->action);
    } else {
        if (known)
            log_warn("chat.edit_failed", "tx=%s message_id=%lld reason=\"%s\"", r->tx_id, sent.message_id, err);
        long long mid = s_send(self, "decision", r->tx_id, text, &kb);
        if (mid && waiting)
            s_remember(self, r->tx_id, mid, e.view.reason);
    }
    free(text);
}

/* The watcher that wants r, or NULL. */
static const s_watch_t *s_watcher(chat_t *self, const record_t *r)
{
    int n = atomic_load(&self->nwatches);
    for (int i = 0; i < n; i++)
        if (self->watches[i].wants(r))
            return &self->watches[i];
    return NULL;
}

static void s_notice(chat_t *self, const record_t *r)
{
    const s_watch_t *w = s_watcher(self, r);
    if (w) {
        w->fn(w->arg, r);
    } else if (r->kind == RECORD_DEPOSIT) {
        s_held_notice(self, r->tx_id);
    } else if (r->kind == RECORD_ALERT) {
        char *text = notice_alert(r, self->lang);
        s_send(self, "alert", r->tx_id, text, NULL);
        free(text);
    } else if (r->kind == RECORD_ADMIN_ACTION) {
        s_decision_notice(self, r);
    }
}

static void *s_notice_main(void *arg)
{
    chat_t *self = arg;
    record_t *r = malloc(sizeof *r);
    if (!r)
        return NULL;
    for (;;) {
        pthread_mutex_lock(&self->mu);
        while (!atomic_load(&self->stop) && self->qcount == 0)
            pthread_cond_wait(&self->cv, &self->mu);
        if (atomic_load(&self->stop)) {
            pthread_mutex_unlock(&self->mu);
            break;
        }
        *r = self->queue[self->qhead];
        self->qhead = (self->qhead + 1) % CHAT_QUEUE;
        self->qcount--;
        pthread_mutex_unlock(&self->mu);
        s_notice(self, r);
    }
    free(r);
    return NULL;
}

/* 1 if r calls for a notice: a deposit newly HELD, an alert, a desk action on a deposit taken
 * elsewhere than Telegram (a press edits its own message). */
static int s_wanted(const record_t *r)
{
    if (r->kind == RECORD_DEPOSIT)
        return r->to == DEPOSIT_HELD && r->from != DEPOSIT_HELD;
    if (r->kind == RECORD_ALERT)
        return 1;
    return r->kind == RECORD_ADMIN_ACTION && r->tx_id[0] && desk_action_from_name(r->action) >= 0 &&
           strncmp(r->origin, "telegram:", 9) != 0;
}

void chat_on_commit(chat_t *self, uint64_t lsn, const void *payload, size_t len)
{
    if (!self || atomic_load(&self->stop))
        return;
    record_t r;
    char why[96];
    if (record_decode(payload, len, &r, why, sizeof why) == 0)
        chat_on_record(self, lsn, &r);
}

void chat_on_record(chat_t *self, uint64_t lsn, const record_t *r)
{
    if (!self || !r || atomic_load(&self->stop) || (!s_watcher(self, r) && !s_wanted(r)))
        return;
    pthread_mutex_lock(&self->mu);
    if (self->qcount == CHAT_QUEUE) {
        self->dropped++;
        pthread_mutex_unlock(&self->mu);
        log_warn("chat.dropped", "lsn=%llu tx=%s reason=\"notice queue full\"", (unsigned long long) lsn, r->tx_id);
        return;
    }
    self->queue[(self->qhead + self->qcount++) % CHAT_QUEUE] = *r;
    pthread_cond_broadcast(&self->cv);
    pthread_mutex_unlock(&self->mu);
}

/* ---- presses ---------------------------------------------------------------------------------- */

typedef struct {
    char hex[24];
    char tx_id[80];
    int found;
} s_hash_find_t;

static void s_hash_visit(void *arg, const registry_entry_t *e)
{
    s_hash_find_t *f = arg;
    char hex[24];
    snprintf(hex, sizeof hex, "#%016" PRIx64, stage_tx_hash(e->view.tx_id));
    if (!f->found && strcmp(hex, f->hex) == 0) {
        snprintf(f->tx_id, sizeof f->tx_id, "%s", e->view.tx_id);
        f->found = 1;
    }
}

/* The deposits' handler: approve / reject / retry through pipeline_admin, as every door does. */
static void s_deposit_press(void *arg, const chat_press_t *p, chat_reply_t *reply)
{
    chat_t *self = arg;
    registry_t *reg = pipeline_registry(self->pipeline);
    int action = desk_action_from_name(p->action);
    char tx[80];
    snprintf(tx, sizeof tx, "%s", p->id);
    if (p->id[0] == '#') {
        s_hash_find_t f = { .found = 0 };
        snprintf(f.hex, sizeof f.hex, "%s", p->id);
        registry_each(reg, 0, 0, s_hash_visit, &f);
        snprintf(tx, sizeof tx, "%s", f.found ? f.tx_id : "");
    }
    registry_entry_t before, after;
    memset(&before, 0, sizeof before);
    int known = tx[0] && registry_get(reg, tx, &before) == 0;
    /* cluster mode: a deposit whose webhooks never reached this node (the poller) may be held by
     * another node; the press goes to it as a command (pipeline_admin), which says so */
    int elsewhere = !known && tx[0] && pipeline_claims(self->pipeline) != NULL;
    if ((action != DESK_APPROVE && action != DESK_REJECT && action != DESK_RETRY) || (!known && !elsewhere)) {
        notice_answer(NOTICE_ANSWER_UNKNOWN, DESK_RETRY, NULL, self->lang, reply->answer, sizeof reply->answer);
        return;
    }
    /* the Telegram door is for approvers (and owners) alone, whatever the button */
    if (!admin_may(p->admin->role, ADMIN_DEPOSIT_APPROVE) ||
        !admin_may(p->admin->role, admin_action_of_desk((desk_action_t) action))) {
        log_warn("chat.press_refused", "tx=%s admin=%s role=%s action=%s reason=\"role\"", tx, p->admin->name,
                 admin_role_name(p->admin->role), p->action);
        notice_answer(NOTICE_ANSWER_NOT_ALLOWED, (desk_action_t) action, NULL, self->lang, reply->answer,
                      sizeof reply->answer);
        return;
    }
    char actor[80], reason[64], err[256] = "";
    snprintf(actor, sizeof actor, "admin:%.60s", p->admin->name);
    snprintf(reason, sizeof reason, "Telegram: %s button", p->action);
    desk_request_t dr = { tx, (desk_action_t) action, 0, actor, p->origin, reason };
    int rc = pipeline_admin(self->pipeline, &dr, err, sizeof err);
    log_info("chat.press", "tx=%s admin=%s origin=%s action=%s result=%s reason=\"%s\"", tx, p->admin->name, p->origin,
             p->action, rc == 0 ? "done" : rc == 1 ? "noted" : rc == 2 ? "sent" : "refused", rc < 0 ? err : "");
    if (rc < 0) {
        notice_answer_t a = strstr(err, "approved this deposit already") ? NOTICE_ANSWER_SAME_ADMIN
                            : strstr(err, "unknown deposit")                ? NOTICE_ANSWER_UNKNOWN
                            : (known && before.view.state != DEPOSIT_HELD) || strstr(err, "already")
                                ? NOTICE_ANSWER_DECIDED
                                : NOTICE_ANSWER_FAILED;
        notice_answer(a, (desk_action_t) action, err, self->lang, reply->answer, sizeof reply->answer);
        return;
    }
    if (rc == 2 || !known) {   /* cluster mode: the node holding the deposit carries it out and journals it */
        snprintf(reply->answer, sizeof reply->answer, "%.190s", err);
        return;
    }
    notice_answer(rc == 1 ? NOTICE_ANSWER_NOTED : NOTICE_ANSWER_DONE, (desk_action_t) action, NULL, self->lang,
                  reply->answer, sizeof reply->answer);
    /* the message shows the deposit as it was held, with the approvals now counted */
    if (registry_get(reg, tx, &after) == 0) {
        before.approvals = after.approvals;
        memcpy(before.approvers, after.approvers, sizeof before.approvers);
    }
    int needed = s_needed(self->cfg, &before);
    char line[400];
    notice_decision((desk_action_t) action, rc == 1, (int) before.approvals, needed, actor, p->origin, self->lang,
                    line, sizeof line);
    reply->edit_html = notice_held(&before, needed, line, self->lang);
    if (rc == 1)
        chat_deposit_buttons(tx, 1, self->cfg->notice_lang, reply);
}

int chat_route(chat_t *self, const char *kind, chat_button_fn *fn, void *arg)
{
    size_t n = kind ? strlen(kind) : 0;
    if (!self || !fn || n < 1 || n > 7 || strspn(kind, "abcdefghijklmnopqrstuvwxyz") != n ||
        self->nroutes == CHAT_MAX_KINDS)
        return -1;
    for (int i = 0; i < self->nroutes; i++)
        if (strcmp(self->routes[i].kind, kind) == 0)
            return -1;
    s_route_t *r = &self->routes[self->nroutes++];
    snprintf(r->kind, sizeof r->kind, "%s", kind);
    r->fn = fn;
    r->arg = arg;
    return 0;
}

int chat_watch(chat_t *self, chat_wants_fn *wants, chat_notice_fn *fn, void *arg)
{
    int n = self ? atomic_load(&self->nwatches) : 0;
    if (!self || !wants || !fn || n == CHAT_MAX_KINDS)
        return -1;
    self->watches[n] = (s_watch_t) { wants, fn, arg };
    atomic_store(&self->nwatches, n + 1);
    return 0;
}

int chat_edit(chat_t *self, long long message_id, const char *html, const chat_reply_t *kb)
{
    char err[240] = "";
    if (!self || !html || message_id <= 0)
        return -1;
    if (telegram_edit(self->out, self->cfg->telegram_chat_id, message_id, html, kb ? kb->buttons : NULL,
                      kb ? kb->nbuttons : 0, err, sizeof err) != TELEGRAM_OK) {
        log_warn("chat.edit_failed", "message_id=%lld reason=\"%s\"", message_id, err);
        return -1;
    }
    return 0;
}

/* One press: who, which button, the handler; then the answer and the edit. */
static void s_press(chat_t *self, const telegram_press_t *p)
{
    chat_reply_t reply;
    memset(&reply, 0, sizeof reply);
    char data[sizeof p->data], origin[40];
    snprintf(data, sizeof data, "%s", p->data);
    snprintf(origin, sizeof origin, "telegram:%" PRId64, p->from_id);
    char *kind = strchr(data, ':');
    char *id = kind ? strchr(kind + 1, ':') : NULL;
    if (kind)
        *kind++ = '\0';
    if (id)
        *id++ = '\0';
    const char *name = chat_approver(self->cfg, p->from_id);
    admin_view_t admin;
    const s_route_t *route = NULL;
    for (int i = 0; kind && id && i < self->nroutes; i++)
        if (strcmp(self->routes[i].kind, kind) == 0)
            route = &self->routes[i];
    /* a numeric TELEGRAM_CHAT_ID: buttons count in the broker's chat alone (not in a copy elsewhere) */
    const char *home = self->cfg->telegram_chat_id;
    int elsewhere = home[0] != '@' && p->chat_id[0] && strcmp(p->chat_id, home) != 0;
    if (elsewhere) {
        log_warn("chat.press_refused", "user=%" PRId64 " chat=%s data=\"%s\" reason=\"not the broker's chat\"",
                 p->from_id, p->chat_id, p->data);
        notice_answer(NOTICE_ANSWER_NOT_ALLOWED, DESK_RETRY, NULL, self->lang, reply.answer, sizeof reply.answer);
    } else if (!name || admins_get(self->admins, name, &admin) != 0 || admin.disabled) {
        log_warn("chat.press_refused", "user=%" PRId64 " admin=%s data=\"%s\" reason=\"%s\"", p->from_id,
                 name ? name : "-", p->data,
                 !name ? "not in KASA_TELEGRAM_APPROVERS" : "no such admin account, or disabled");
        notice_answer(NOTICE_ANSWER_NOT_ALLOWED, DESK_RETRY, NULL, self->lang, reply.answer, sizeof reply.answer);
    } else if (!route || !*id) {
        log_warn("chat.press_refused", "user=%" PRId64 " data=\"%s\" reason=\"unknown button\"", p->from_id, p->data);
        notice_answer(NOTICE_ANSWER_UNKNOWN, DESK_RETRY, NULL, self->lang, reply.answer, sizeof reply.answer);
    } else {
        chat_press_t cp = { data, id, &admin, p, origin };
        route->fn(route->arg, &cp, &reply);
    }
    char err[240] = "";
    if (telegram_answer(self->in, p->query_id, reply.answer, 0, err, sizeof err) != TELEGRAM_OK)
        log_warn("chat.answer_failed", "user=%" PRId64 " reason=\"%s\"", p->from_id, err);
    if (reply.edit_html && p->chat_id[0] && p->message_id > 0 &&
        telegram_edit(self->in, p->chat_id, p->message_id, reply.edit_html, reply.buttons, reply.nbuttons, err,
                      sizeof err) != TELEGRAM_OK)
        log_warn("chat.edit_failed", "message_id=%lld reason=\"%s\"", p->message_id, err);
    free(reply.edit_html);
}

static int64_t s_load_offset(const chat_t *self)
{
    FILE *f = fopen(self->offset_path, "r");
    long long v = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%lld", &v) != 1 || v < 0)
        v = 0;
    fclose(f);
    return v;
}

/* Writes offset to the offset file (a temporary file, fsync'd, renamed over it). */
static void s_save_offset(const chat_t *self, int64_t offset)
{
    char tmp[620];
    snprintf(tmp, sizeof tmp, "%s.tmp", self->offset_path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    char text[32];
    int n = snprintf(text, sizeof text, "%lld\n", (long long) offset);
    int ok = fd >= 0 && write(fd, text, (size_t) n) == n && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    if (!ok || rename(tmp, self->offset_path) != 0) {
        log_warn("chat.offset_not_saved", "path=%s offset=%lld errno=%d", self->offset_path, (long long) offset, errno);
        unlink(tmp);
    }
}

/* Cluster mode: takes or renews the poller's lease, storing *offset with it. 1 this node may poll now
 * (a getUpdates started now ends, with its own timeout, lease/3 before the lease does: chat_new gives
 * the poll client lease/3, and the poll waits at most lease/3); on a take-over *offset continues from
 * the offset the last poller stored (or this node's own file, whichever is further). 0 not: another
 * node polls, or MongoDB did not answer (then nothing is polled: a lease not renewed may be taken). */
static int s_poller_hold(chat_t *self, int64_t *offset)
{
    claims_lease_t l;
    int rc = claims_lease_hold(self->claims, CHAT_POLLER_LEASE, self->lease_ms, self->epoch, *offset, &l);
    if (rc == 1) {
        if (l.epoch != self->epoch) {
            if (l.value > *offset)
                *offset = l.value;
            log_info("chat.poller_taken", "node=%s epoch=%d offset=%lld lease_ms=%lld", claims_node(self->claims),
                     l.epoch, (long long) *offset, (long long) self->lease_ms);
            self->epoch = l.epoch;
        }
        snprintf(self->holder, sizeof self->holder, "%s", l.holder);
        return 1;
    }
    if (rc == 0 && (self->epoch || strcmp(self->holder, l.holder) != 0)) {
        if (self->epoch)
            log_warn("chat.poller_lost", "node=%s holder=%s epoch=%d", claims_node(self->claims), l.holder, l.epoch);
        else
            log_info("chat.poller_standby", "node=%s holder=%s epoch=%d", claims_node(self->claims), l.holder, l.epoch);
        self->epoch = 0;
        snprintf(self->holder, sizeof self->holder, "%s", l.holder);
    } else if (rc < 0 && self->holder[0]) {
        log_warn("chat.poller_unknown", "node=%s reason=\"MongoDB did not answer: not polling\"",
                 claims_node(self->claims));
        self->holder[0] = '\0';
    }
    return 0;
}

static void *s_poll_main(void *arg)
{
    chat_t *self = arg;
    int64_t offset = s_load_offset(self), wait_ms = S_RETRY_BASE_MS;
    telegram_press_t *presses = calloc(S_PRESSES, sizeof *presses);
    if (!presses)
        return NULL;
    int poll_s = self->cfg->telegram_poll_s > 0 ? self->cfg->telegram_poll_s : 25;
    if (self->claims && poll_s > self->lease_ms / 3000)
        poll_s = (int) (self->lease_ms / 3000);   /* the poll ends before the lease: s_poller_hold */
    log_info("chat.polling", "offset=%lld timeout_s=%d approvers=%d cluster=%d", (long long) offset, poll_s,
             self->cfg->telegram_approver_count, self->claims != NULL);
    while (!atomic_load(&self->stop)) {
        if (self->claims && !s_poller_hold(self, &offset)) {
            s_sleep(self, self->lease_ms / 3);   /* asked again: a lease that runs out is taken within lease/3 */
            continue;
        }
        char err[240] = "";
        telegram_result_t rc;
        int64_t next = offset;
        int n = telegram_updates(self->in, offset, poll_s, presses, S_PRESSES, &next, &rc, err, sizeof err);
        if (n < 0) {
            if (atomic_load(&self->stop))
                break;
            log_warn("chat.poll_failed", "result=%s retry_ms=%lld reason=\"%s\"", telegram_result_name(rc),
                     (long long) wait_ms, err);
            s_sleep(self, wait_ms);
            wait_ms = wait_ms * 2 < S_RETRY_CAP_MS ? wait_ms * 2 : S_RETRY_CAP_MS;
            continue;
        }
        wait_ms = S_RETRY_BASE_MS;
        int lost = 0;
        for (int i = 0; i < n && !atomic_load(&self->stop) && !lost; i++) {
            s_press(self, &presses[i]);
            offset = presses[i].update_id + 1;
            s_save_offset(self, offset);   /* handled: never again, not even after a restart */
            /* cluster mode: stored with the lease (majority) before the next press, so a node taking
             * over continues after it; a lease lost or not renewed: the rest are left unconfirmed
             * for whoever polls next */
            lost = self->claims && !s_poller_hold(self, &offset);
        }
        if (!atomic_load(&self->stop) && !lost && next > offset) {
            offset = next;   /* updates that were not presses */
            s_save_offset(self, offset);
        }
    }
    if (self->claims && self->epoch && claims_lease_drop(self->claims, CHAT_POLLER_LEASE, self->epoch, offset) == 1)
        log_info("chat.poller_given_up", "node=%s epoch=%d offset=%lld", claims_node(self->claims), self->epoch,
                 (long long) offset);   /* another node takes it at once, not a lease later */
    free(presses);
    return NULL;
}

chat_t *chat_new(const config_t *cfg, char *err, size_t errlen)
{
    if (!cfg || !cfg->telegram_bot_token[0] || !cfg->telegram_chat_id[0] || !cfg->telegram_api_url[0]) {
        snprintf(err, errlen, "Telegram is not configured (TELEGRAM_BOT_TOKEN, TELEGRAM_CHAT_ID)");
        return NULL;
    }
    chat_t *self = calloc(1, sizeof *self);
    if (!self || !(self->queue = calloc(CHAT_QUEUE, sizeof *self->queue))) {
        free(self);
        snprintf(err, errlen, "no memory");
        return NULL;
    }
    self->cfg = cfg;
    self->lang = notice_lang(cfg->notice_lang);
    pthread_mutex_init(&self->mu, NULL);
    pthread_cond_init(&self->cv, NULL);
    self->out = telegram_new(cfg->telegram_api_url, cfg->telegram_bot_token, 10000);
    /* cluster mode: a poll and its request's timeout end lease/3 before the poller's lease (s_poller_hold) */
    self->lease_ms = s_poller_lease_ms(cfg);
    long in_ms = cfg->cluster && self->lease_ms / 3 < 10000 ? (long) (self->lease_ms / 3) : 10000;
    self->in = telegram_new(cfg->telegram_api_url, cfg->telegram_bot_token, in_ms);
    if (!self->out || !self->in) {
        snprintf(err, errlen, "bad TELEGRAM_API_URL or TELEGRAM_BOT_TOKEN");
        chat_destroy(&self);
        return NULL;
    }
    telegram_set_stop(self->out, &self->stop);
    telegram_set_stop(self->in, &self->stop);
    snprintf(self->offset_path, sizeof self->offset_path, "%s/%s", cfg->journal_dir, CHAT_OFFSET_FILE);
    chat_route(self, "d", s_deposit_press, self);
    return self;
}

int chat_start(chat_t *self, pipeline_t *pipeline, admins_t *admins, char *err, size_t errlen)
{
    if (!self || !pipeline || !admins) {
        snprintf(err, errlen, "a pipeline and the admin accounts are required");
        return -1;
    }
    self->pipeline = pipeline;
    self->admins = admins;
    self->claims = pipeline_claims(pipeline);   /* cluster mode: one node polls (CHAT_POLLER_LEASE) */
    if (pthread_create(&self->notice_thread, NULL, s_notice_main, self) != 0) {
        snprintf(err, errlen, "cannot start the notice thread");
        return -1;
    }
    self->notice_started = 1;
    if (self->cfg->telegram_approver_count > 0) {
        if (pthread_create(&self->poll_thread, NULL, s_poll_main, self) != 0) {
            snprintf(err, errlen, "cannot start the Telegram poll thread");
            return -1;
        }
        self->poll_started = 1;
    }
    return 0;
}

void chat_stop(chat_t *self)
{
    if (!self)
        return;
    pthread_mutex_lock(&self->mu);
    atomic_store(&self->stop, 1);   /* a call in progress ends through the clients' stop flag */
    pthread_cond_broadcast(&self->cv);
    pthread_mutex_unlock(&self->mu);
    if (self->notice_started)
        pthread_join(self->notice_thread, NULL);
    if (self->poll_started)
        pthread_join(self->poll_thread, NULL);
    self->notice_started = self->poll_started = 0;
}

void chat_destroy(chat_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    chat_t *self = *self_p;
    chat_stop(self);
    telegram_destroy(&self->out);
    telegram_destroy(&self->in);
    pthread_cond_destroy(&self->cv);
    pthread_mutex_destroy(&self->mu);
    free(self->queue);
    free(self);
    *self_p = NULL;
}
