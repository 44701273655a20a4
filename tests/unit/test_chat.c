/* test_chat.c — the chat's button routing, generic over kinds of work, against the Telegram
 * simulator (in-process) and a pipeline on a fresh journal: a kind registered with chat_route gets
 * the presses of its buttons from a mapped, enabled admin and its answer and edit reach Telegram; a
 * mapped user without an account, and a press on a copy of the message in another chat, are
 * refused before any handler runs; a button of an unknown kind
 * is answered as unknown; a kind cannot be taken twice (nor the deposits' own); chat_send posts a
 * notice with buttons; the offset of the next update is on disk after a press. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actors/admins.h"
#include "actors/cobo_auth.h"
#include "actors/chat.h"
#include "schema/json.h"
#include "tests/check.h"
#include "tests/unit/support_http.h"
#include "tests/unit/support_pipeline.h"
#include "tests/unit/support_tmp.h"
#include "tools/sim/sim_telegram.h"

#define TOKEN "42:chat-test"
#define SEED "1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c5b6a7988"

static char s_url[64];

typedef struct {
    pthread_mutex_t mu;
    int calls;
    char action[32], id[80], admin[64], origin[48];
} s_seen_t;

static s_seen_t s_seen = { PTHREAD_MUTEX_INITIALIZER, 0, "", "", "", "" };

/* A kind "w" handler, as a withdrawal desk would plug in. */
static void s_w_press(void *arg, const chat_press_t *p, chat_reply_t *reply)
{
    s_seen_t *s = arg;
    pthread_mutex_lock(&s->mu);
    s->calls++;
    snprintf(s->action, sizeof s->action, "%s", p->action);
    snprintf(s->id, sizeof s->id, "%s", p->id);
    snprintf(s->admin, sizeof s->admin, "%s", p->admin->name);
    snprintf(s->origin, sizeof s->origin, "%s", p->origin);
    pthread_mutex_unlock(&s->mu);
    snprintf(reply->answer, sizeof reply->answer, "Çekim onaylandı");
    reply->edit_html = strdup("<b>Çekim</b> wd-1: onaylandı");
}

/* Waits until every press is answered; the last answer into buf. 0 or -1. */
static int s_wait_answer(char *buf, size_t len)
{
    for (int i = 0; i < 200; i++) {
        char *body = support_http_request(s_url, NULL, "GET", "/sim/presses", NULL);
        int done = body && !strstr(body, "\"answered\":false");
        if (done) {
            const char *last = strrchr(body, '{');
            const char *a = last ? strstr(last, "\"answer\":\"") : NULL;
            snprintf(buf, len, "%.*s", a ? (int) strcspn(a + 10, "\"") : 0, a ? a + 10 : "");
        }
        free(body);
        if (done)
            return 0;
        usleep(25 * 1000);
    }
    return -1;
}

static long s_press(int user, long long mid, const char *data, int force)
{
    char body[300];
    snprintf(body, sizeof body, "{\"user_id\":%d,\"message_id\":%lld,\"data\":\"%s\",\"force\":%s}", user, mid, data,
             force ? "true" : "false");
    char *r = support_http_request(s_url, NULL, "POST", "/sim/press", body);
    long ok = r && strstr(r, "callback_query_id") ? 200 : 0;
    free(r);
    return ok;
}

static void test_routes_presses_of_another_kind(void)
{
    char dir[256], err[256];
    support_tmp_fresh(dir, sizeof dir, "chat", "route");
    config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.journal_dir, sizeof cfg.journal_dir, "%s", dir);
    snprintf(cfg.telegram_api_url, sizeof cfg.telegram_api_url, "%s", s_url);
    snprintf(cfg.telegram_bot_token, sizeof cfg.telegram_bot_token, "%s", TOKEN);
    snprintf(cfg.telegram_chat_id, sizeof cfg.telegram_chat_id, "-100200");
    cfg.telegram_approvers[0].user_id = 5551;
    snprintf(cfg.telegram_approvers[0].admin, sizeof cfg.telegram_approvers[0].admin, "ayse");
    cfg.telegram_approvers[1].user_id = 5552;
    snprintf(cfg.telegram_approvers[1].admin, sizeof cfg.telegram_approvers[1].admin, "ghost");
    cfg.telegram_approver_count = 2;
    cfg.telegram_poll_s = 1;
    /* the stages need a Cobo and an MT5 to talk to: nothing here reaches them */
    snprintf(cfg.cobo_api_url, sizeof cfg.cobo_api_url, "http://127.0.0.1:1/v2");
    snprintf(cfg.cobo_api_secret, sizeof cfg.cobo_api_secret, "%s", SEED);
    cobo_pubkey_from_seed(SEED, cfg.cobo_api_key);
    snprintf(cfg.mt5_url, sizeof cfg.mt5_url, "http://127.0.0.1:1");
    cfg.mt5_login = 1000;
    snprintf(cfg.mt5_password, sizeof cfg.mt5_password, "ManagerPw1");
    journal_t *j = NULL;
    pipeline_t *p = support_pipeline_open(dir, &cfg, &j, err, sizeof err);
    CHECK(p != NULL);
    if (!p) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    admins_t *ad = admins_new();
    char pw[ADMINS_OTP_LEN], secret[ADMINS_SECRET_LEN];
    CHECK_EQ_INT(admins_add(ad, j, "ayse", ADMIN_ROLE_APPROVER, "cli:root", "cli:test", pw, secret, err, sizeof err), 0);
    chat_t *chat = chat_new(&cfg, err, sizeof err);
    CHECK(chat != NULL);
    CHECK_EQ_INT(chat_route(chat, "w", s_w_press, &s_seen), 0);
    CHECK_EQ_INT(chat_route(chat, "w", s_w_press, &s_seen), -1);
    CHECK_EQ_INT(chat_route(chat, "d", s_w_press, &s_seen), -1);
    CHECK_EQ_INT(chat_route(chat, "W1", s_w_press, &s_seen), -1);
    CHECK_EQ_INT(chat_start(chat, p, ad, err, sizeof err), 0);

    chat_reply_t kb;
    memset(&kb, 0, sizeof kb);
    chat_button_data("approve", "w", "wd-1", kb.data[0], sizeof kb.data[0]);
    kb.buttons[0].text = "✅ Onayla";
    kb.buttons[0].data = kb.data[0];
    kb.nbuttons = 1;
    long long mid = chat_send(chat, "withdrawal", "wd-1", "<b>Çekim</b> wd-1 onay bekliyor", &kb);
    CHECK(mid > 0);

    char answer[200];
    CHECK_EQ_INT(s_press(5551, mid, "approve:w:wd-1", 0), 200);
    CHECK(s_wait_answer(answer, sizeof answer) == 0);
    CHECK_EQ_STR(answer, "Çekim onaylandı");
    pthread_mutex_lock(&s_seen.mu);
    CHECK_EQ_INT(s_seen.calls, 1);
    CHECK_EQ_STR(s_seen.action, "approve");
    CHECK_EQ_STR(s_seen.id, "wd-1");
    CHECK_EQ_STR(s_seen.admin, "ayse");
    CHECK_EQ_STR(s_seen.origin, "telegram:5551");
    pthread_mutex_unlock(&s_seen.mu);
    int edited = 0;   /* the edit follows the answer */
    for (int i = 0; i < 100 && !edited; i++) {
        char *msgs = support_http_request(s_url, NULL, "GET", "/sim/messages", NULL);
        edited = msgs && strstr(msgs, "wd-1: onaylandı") && strstr(msgs, "\"reply_markup\":null");
        free(msgs);
        if (!edited)
            usleep(20 * 1000);
    }
    CHECK(edited);

    /* mapped, but no such account: refused before the handler */
    CHECK_EQ_INT(s_press(5552, mid, "approve:w:wd-1", 1), 200);
    CHECK(s_wait_answer(answer, sizeof answer) == 0);
    CHECK_EQ_STR(answer, "Bu işlem için yetkiniz yok.");
    /* the same button on a message in another chat (a copy of the notice): refused */
    telegram_t *tg = telegram_new(s_url, TOKEN, 3000);
    long long other = 0;
    CHECK_EQ_INT(telegram_send_keyboard(tg, "-100999", "copy", kb.buttons, 1, &other, err, sizeof err), TELEGRAM_OK);
    telegram_destroy(&tg);
    CHECK_EQ_INT(s_press(5551, other, "approve:w:wd-1", 0), 200);
    CHECK(s_wait_answer(answer, sizeof answer) == 0);
    CHECK_EQ_STR(answer, "Bu işlem için yetkiniz yok.");
    /* a kind nobody routes */
    CHECK_EQ_INT(s_press(5551, mid, "approve:x:1", 1), 200);
    CHECK(s_wait_answer(answer, sizeof answer) == 0);
    CHECK_EQ_STR(answer, "Bilinmeyen düğme ya da yatırma.");
    pthread_mutex_lock(&s_seen.mu);
    CHECK_EQ_INT(s_seen.calls, 1);
    pthread_mutex_unlock(&s_seen.mu);

    chat_stop(chat);
    char path[400];
    snprintf(path, sizeof path, "%s/%s", dir, CHAT_OFFSET_FILE);
    FILE *f = fopen(path, "r");
    long long off = 0;
    CHECK(f && fscanf(f, "%lld", &off) == 1 && off > 700000000);
    if (f)
        fclose(f);
    pipeline_destroy(&p);
    journal_destroy(&j);
    chat_destroy(&chat);
    CHECK(chat == NULL);
    admins_destroy(&ad);
    support_tmp_rmrf(dir);
}

int main(void)
{
    setenv("KASA_LOG_LEVEL", "error", 0);
    char err[200];
    char *argv[] = { "telegram", "--listen", "127.0.0.1:0", "--token", TOKEN };
    sim_telegram_t *sim = sim_telegram_start(5, argv, err, sizeof err);
    if (!sim) {
        fprintf(stderr, "sim: %s\n", err);
        return 1;
    }
    snprintf(s_url, sizeof s_url, "http://127.0.0.1:%d", sim_telegram_port(sim));
    RUN(test_routes_presses_of_another_kind);
    sim_telegram_stop(&sim);
    return check_done();
}
