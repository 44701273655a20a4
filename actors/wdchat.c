/* wdchat.c — see wdchat.h. The notice side runs on the chat's notice thread, the press side on its
 * poll thread; the message ids of notices with buttons are shared between them under a lock. */
#include "actors/wdchat.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/notice.h"
#include "actors/withdrawals.h"
#include "actors/withdrawer.h"
#include "schema/admin.h"
#include "schema/log.h"

#define S_REMEMBER 256   /* notices with buttons whose message id is kept (to edit on a decision) */

typedef struct {
    char id[24];
    long long message_id;
    withdrawal_state_t shown;   /* the state the notice shows */
} s_sent_t;

typedef struct {
    chat_t *chat;
    pipeline_t *pipeline;
    const config_t *cfg;
    notice_lang_t lang;
    pthread_mutex_t mu;
    s_sent_t sent[S_REMEMBER];
    size_t next;
} s_desk_t;

/* One per process: kasa serve has one chat. */
static s_desk_t s_desk = { .mu = PTHREAD_MUTEX_INITIALIZER };

void wdchat_buttons(const char *id, withdrawal_state_t state, int waiting, const char *lang, chat_reply_t *reply)
{
    static const char *const decide[2] = { "approve", "reject" }, *const held[2] = { "refund", "retransfer" };
    const char *const *acts = state == WITHDRAWAL_DEBITED && waiting ? decide : state == WITHDRAWAL_HELD ? held : NULL;
    reply->nbuttons = 0;
    for (int i = 0; acts && i < 2; i++) {
        chat_button_data(acts[i], WDCHAT_KIND, id, reply->data[i], sizeof reply->data[i]);
        reply->buttons[i].text = notice_withdrawal_button(acts[i], notice_lang(lang));
        reply->buttons[i].data = reply->data[i];
        reply->nbuttons = i + 1;
    }
}

static int s_waiting(const withdrawal_view_t *w, int needed)
{
    return w->state == WITHDRAWAL_DEBITED && needed > 0 && w->approvals < (uint32_t) needed;
}

static void s_remember(s_desk_t *d, const char *id, long long mid, withdrawal_state_t shown)
{
    pthread_mutex_lock(&d->mu);
    s_sent_t *s = &d->sent[d->next++ % S_REMEMBER];
    snprintf(s->id, sizeof s->id, "%s", id);
    s->message_id = mid;
    s->shown = shown;
    pthread_mutex_unlock(&d->mu);
}

/* The newest notice with buttons sent for id in this run: 1 and *out, or 0. */
static int s_recall(s_desk_t *d, const char *id, s_sent_t *out)
{
    int found = 0;
    pthread_mutex_lock(&d->mu);
    for (size_t i = 0; i < S_REMEMBER && !found; i++) {
        const s_sent_t *s = &d->sent[(d->next + S_REMEMBER - 1 - i) % S_REMEMBER];
        if (s->message_id && strcmp(s->id, id) == 0) {
            *out = *s;
            found = 1;
        }
    }
    pthread_mutex_unlock(&d->mu);
    return found;
}

/* ---- notices ----------------------------------------------------------------------------------- */

/* A withdrawal transition, or a person's action on a withdrawal taken elsewhere than Telegram (a
 * press edits its own message). */
static int s_wants(const record_t *r)
{
    if (r->kind == RECORD_WITHDRAWAL)
        return !withdrawals_learned(r);   /* cluster mode: the holder's node tells it, not every node again */
    return r->kind == RECORD_ADMIN_ACTION && withdrawal_id_valid(r->tx_id) && strncmp(r->origin, "telegram:", 9) != 0;
}

/* A transition: the state it entered, with buttons when a person is asked for and still can act. */
static void s_transition(s_desk_t *d, const record_t *r)
{
    withdrawal_view_t w;
    if (withdrawals_get(pipeline_withdrawals(d->pipeline), r->tx_id, &w) != 0)
        return;
    int needed = withdrawer_approvals_needed(d->cfg, &w);
    withdrawal_state_t now = w.state;
    w.state = r->wto;
    if (r->reason[0])
        snprintf(w.reason, sizeof w.reason, "%s", r->reason);
    char *text = notice_withdrawal(&w, r->wto, needed, NULL, d->lang);
    chat_reply_t kb;
    memset(&kb, 0, sizeof kb);
    /* buttons only while the withdrawal still is where the notice shows it */
    if (d->cfg->telegram_approver_count > 0 && now == r->wto)
        wdchat_buttons(w.id, r->wto, s_waiting(&w, needed), d->cfg->notice_lang, &kb);
    long long mid = chat_send(d->chat, "withdrawal", w.id, text, &kb);
    free(text);
    if (mid && kb.nbuttons)
        s_remember(d, w.id, mid, r->wto);
}

/* A decision taken at another door: the notice with buttons edited, or a new message. */
static void s_decision(s_desk_t *d, const record_t *r)
{
    withdrawal_view_t w;
    if (withdrawals_get(pipeline_withdrawals(d->pipeline), r->tx_id, &w) != 0)
        return;
    int needed = withdrawer_approvals_needed(d->cfg, &w);
    int noted = strcmp(r->action, "approve") == 0 && s_waiting(&w, needed);
    char line[400];
    notice_withdrawal_decision(r->action, noted, (int) w.approvals, needed, r->actor, r->origin, d->lang, line,
                               sizeof line);
    s_sent_t sent;
    int known = s_recall(d, w.id, &sent);
    withdrawal_state_t shown = known ? sent.shown
                               : strcmp(r->action, "approve") == 0 || strcmp(r->action, "reject") == 0
                                   ? WITHDRAWAL_DEBITED
                                   : WITHDRAWAL_HELD;
    w.state = shown;
    char *text = notice_withdrawal(&w, shown, needed, line, d->lang);
    chat_reply_t kb;
    memset(&kb, 0, sizeof kb);
    if (noted)
        wdchat_buttons(w.id, WITHDRAWAL_DEBITED, 1, d->cfg->notice_lang, &kb);
    if (!known || chat_edit(d->chat, sent.message_id, text, &kb) != 0) {
        long long mid = chat_send(d->chat, "withdrawal_decision", w.id, text, &kb);
        if (mid && kb.nbuttons)
            s_remember(d, w.id, mid, shown);
    }
    free(text);
}

static void s_notice(void *arg, const record_t *r)
{
    if (r->kind == RECORD_WITHDRAWAL)
        s_transition(arg, r);
    else
        s_decision(arg, r);
}

/* ---- presses ----------------------------------------------------------------------------------- */

/* approve / reject / refund / retransfer through pipeline_withdraw_act, as every door does. */
static void s_press(void *arg, const chat_press_t *p, chat_reply_t *reply)
{
    s_desk_t *d = arg;
    const char *action = p->action;
    int known_action = strcmp(action, "approve") == 0 || strcmp(action, "reject") == 0 ||
                       strcmp(action, "refund") == 0 || strcmp(action, "retransfer") == 0;
    withdrawal_view_t before, after;
    if (!known_action || !withdrawal_id_valid(p->id) ||
        withdrawals_get(pipeline_withdrawals(d->pipeline), p->id, &before) != 0) {
        notice_withdrawal_answer(NOTICE_ANSWER_UNKNOWN, action, NULL, d->lang, reply->answer, sizeof reply->answer);
        return;
    }
    if (!admin_may(p->admin->role, ADMIN_WITHDRAW_DECIDE)) {
        log_warn("chat.press_refused", "withdrawal=%s admin=%s role=%s action=%s reason=\"role\"", p->id,
                 p->admin->name, admin_role_name(p->admin->role), action);
        notice_withdrawal_answer(NOTICE_ANSWER_NOT_ALLOWED, action, NULL, d->lang, reply->answer,
                                 sizeof reply->answer);
        return;
    }
    char actor[80], reason[64], err[256] = "";
    snprintf(actor, sizeof actor, "admin:%.60s", p->admin->name);
    snprintf(reason, sizeof reason, "Telegram: %s button", action);
    int rc = pipeline_withdraw_act(d->pipeline, p->id, action, actor, p->origin, reason, err, sizeof err);
    log_info("chat.press", "withdrawal=%s admin=%s origin=%s action=%s result=%s reason=\"%s\"", p->id,
             p->admin->name, p->origin, action, rc == 0 ? "done" : rc == 1 ? "noted" : "refused", rc < 0 ? err : "");
    if (rc == 2) {   /* cluster mode: another node holds the withdrawal and carries it out */
        snprintf(reply->answer, sizeof reply->answer, "%.190s", err);
        return;
    }
    if (rc < 0) {
        notice_answer_t a = strstr(err, "already approved it")                           ? NOTICE_ANSWER_SAME_ADMIN
                            : strstr(err, "no withdrawal")                                 ? NOTICE_ANSWER_UNKNOWN
                            : strstr(err, "cannot ") && strstr(err, "a withdrawal in ") ? NOTICE_ANSWER_DECIDED
                                                                                         : NOTICE_ANSWER_FAILED;
        notice_withdrawal_answer(a, action, err, d->lang, reply->answer, sizeof reply->answer);
        return;
    }
    notice_withdrawal_answer(rc == 1 ? NOTICE_ANSWER_NOTED : NOTICE_ANSWER_DONE, action, NULL, d->lang,
                             reply->answer, sizeof reply->answer);
    /* the message shows the withdrawal as it was asked about, with the approvals now counted */
    if (withdrawals_get(pipeline_withdrawals(d->pipeline), p->id, &after) == 0) {
        before.approvals = after.approvals;
        memcpy(before.approvers, after.approvers, sizeof before.approvers);
    }
    int needed = withdrawer_approvals_needed(d->cfg, &before);
    char line[400];
    notice_withdrawal_decision(action, rc == 1, (int) before.approvals, needed, actor, p->origin, d->lang, line,
                               sizeof line);
    reply->edit_html = notice_withdrawal(&before, before.state, needed, line, d->lang);
    if (rc == 1)
        wdchat_buttons(p->id, WITHDRAWAL_DEBITED, 1, d->cfg->notice_lang, reply);
}

int wdchat_attach(chat_t *chat, pipeline_t *pipeline, const config_t *cfg)
{
    if (!chat)
        return 0;
    s_desk_t *d = &s_desk;
    d->chat = chat;
    d->pipeline = pipeline;
    d->cfg = cfg;
    d->lang = notice_lang(cfg->notice_lang);
    memset(d->sent, 0, sizeof d->sent);
    d->next = 0;
    if (chat_route(chat, WDCHAT_KIND, s_press, d) != 0 || chat_watch(chat, s_wants, s_notice, d) != 0)
        return -1;
    return 0;
}
