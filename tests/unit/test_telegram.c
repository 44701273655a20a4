/* test_telegram.c — the Telegram client against the Bot API simulator (in-process): sending,
 * HTML escaping, failure classes, retry_after, and the bot token never appearing in an error; an
 * inline keyboard sent, pressed, read back by getUpdates (offset confirms, a long poll wakes on a
 * press, allowed_updates), answered once, and the message edited with its keyboard removed; the
 * Bot API's error shapes for a bad button, a message not found, an edit that changes nothing. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actors/telegram.h"
#include "schema/json.h"
#include "tests/check.h"
#include "tests/unit/support_http.h"
#include "tools/sim/sim_telegram.h"

#define TOKEN "123456:AAH-secret-token_XyZ"

static sim_telegram_t *s_sim;
static char s_url[64];
static char s_log[256];

static char *s_ctl(const char *method, const char *path, const char *body)
{
    return support_http_request(s_url, NULL, method, path, body);
}

static void test_escape_html(void)
{
    char *e = telegram_escape_html("a<b & \"c\"> 'd'");
    CHECK_EQ_STR(e, "a&lt;b &amp; &quot;c&quot;&gt; 'd'");
    free(e);
    e = telegram_escape_html(NULL);
    CHECK_EQ_STR(e, "");
    free(e);
    e = telegram_escape_html("&amp;");
    CHECK_EQ_STR(e, "&amp;amp;"); /* escaping is not idempotent: escape raw text once */
    free(e);
}

static void test_send_is_accepted_and_recorded(void)
{
    free(s_ctl("POST", "/sim/reset", NULL));
    telegram_t *c = telegram_new(s_url, TOKEN, 3000);
    char err[200] = "";
    char *name = telegram_escape_html("Ivan <Petrov> & Co");
    char text[512];
    snprintf(text, sizeof text, "<b>Deposit credited</b>\nlogin 100001: 250.00 USD\nname: %s", name);
    free(name);
    CHECK_EQ_INT(telegram_send(c, "-1001234567890", text, err, sizeof err), TELEGRAM_OK);
    CHECK_EQ_STR(err, "");
    CHECK_EQ_INT(telegram_last_message_id(c), 1);
    CHECK_EQ_INT(telegram_send(c, "-1001234567890", "second", err, sizeof err), TELEGRAM_OK);
    CHECK_EQ_INT(telegram_last_message_id(c), 2);
    char *body = s_ctl("GET", "/sim/messages", NULL);
    bson_t doc;
    char perr[64];
    CHECK(body && json_parse(body, strlen(body), &doc, perr, sizeof perr) == 0);
    CHECK_EQ_STR(json_get_str(&doc, "messages.0.text"), text); /* exactly what was sent */
    CHECK_EQ_STR(json_get_str(&doc, "messages.0.chat_id"), "-1001234567890");
    CHECK_EQ_STR(json_get_str(&doc, "messages.0.parse_mode"), "HTML");
    CHECK_EQ_STR(json_get_str(&doc, "messages.1.text"), "second");
    bson_destroy(&doc);
    free(body);
    /* and as JSON lines in the log file */
    FILE *f = fopen(s_log, "r");
    char line[1024];
    int lines = 0;
    while (f && fgets(line, sizeof line, f))
        lines++;
    if (f)
        fclose(f);
    CHECK_EQ_INT(lines, 2);
    telegram_destroy(&c);
    CHECK(c == NULL);
}

static void test_unescaped_html_is_permanent(void)
{
    telegram_t *c = telegram_new(s_url, TOKEN, 3000);
    char err[200] = "";
    CHECK_EQ_INT(telegram_send(c, "42", "name: <script>x</script>", err, sizeof err), TELEGRAM_PERMANENT);
    CHECK(strstr(err, "400") != NULL && strstr(err, "can't parse entities") != NULL);
    CHECK_EQ_INT(telegram_send(c, "42", "Tom & Jerry", err, sizeof err), TELEGRAM_PERMANENT);
    telegram_destroy(&c);
}

static void test_wrong_token_is_permanent_and_token_is_masked(void)
{
    telegram_t *c = telegram_new(s_url, "999:wrong-token-value", 3000);
    char err[200] = "";
    CHECK_EQ_INT(telegram_send(c, "42", "hello", err, sizeof err), TELEGRAM_PERMANENT);
    CHECK(strstr(err, "401") != NULL && strstr(err, "Unauthorized") != NULL);
    CHECK(strstr(err, "wrong-token-value") == NULL);
    telegram_destroy(&c);
}

static void test_transport_error_is_transient_without_token(void)
{
    /* a URL that holds the token in its host part would be echoed by curl: it must be masked */
    telegram_t *c = telegram_new("http://127.0.0.1:1", TOKEN, 500);
    char err[200] = "";
    CHECK_EQ_INT(telegram_send(c, "42", "hello", err, sizeof err), TELEGRAM_TRANSIENT);
    CHECK(err[0] != '\0');
    CHECK(strstr(err, TOKEN) == NULL && strstr(err, "AAH-secret") == NULL);
    telegram_destroy(&c);
    c = telegram_new("http://aahsecretxyz.invalid", "aahsecretxyz", 2000); /* curl names the host */
    CHECK_EQ_INT(telegram_send(c, "42", "hello", err, sizeof err), TELEGRAM_TRANSIENT);
    CHECK(err[0] != '\0');
    CHECK(strstr(err, "aahsecretxyz") == NULL);
    telegram_destroy(&c);
}

static void test_server_errors_are_transient_then_recover(void)
{
    free(s_ctl("POST", "/sim/reset", NULL));
    free(s_ctl("POST", "/sim/faults", "{\"fail_next\":2,\"status\":502}"));
    telegram_t *c = telegram_new(s_url, TOKEN, 3000);
    char err[200] = "";
    CHECK_EQ_INT(telegram_send(c, "42", "one", err, sizeof err), TELEGRAM_TRANSIENT);
    CHECK(strstr(err, "502") != NULL);
    CHECK(strstr(err, TOKEN) == NULL);
    CHECK_EQ_INT(telegram_send(c, "42", "one", err, sizeof err), TELEGRAM_TRANSIENT);
    CHECK_EQ_INT(telegram_send(c, "42", "one", err, sizeof err), TELEGRAM_OK);
    char *body = s_ctl("GET", "/sim/messages", NULL);
    CHECK(body && strstr(body, "\"accepted\":1,\"failed\":2") != NULL);
    free(body);
    telegram_destroy(&c);
}

static void test_429_reports_retry_after(void)
{
    free(s_ctl("POST", "/sim/faults", "{\"fail_next\":1,\"status\":429,\"retry_after\":7}"));
    telegram_t *c = telegram_new(s_url, TOKEN, 3000);
    char err[200] = "";
    CHECK_EQ_INT(telegram_send(c, "42", "x", err, sizeof err), TELEGRAM_TRANSIENT);
    CHECK_EQ_INT(telegram_retry_after_s(c), 7);
    CHECK(strstr(err, "Too Many Requests") != NULL);
    CHECK_EQ_INT(telegram_send(c, "42", "x", err, sizeof err), TELEGRAM_OK);
    CHECK_EQ_INT(telegram_retry_after_s(c), 0);
    telegram_destroy(&c);
}

static void test_refuses_before_sending(void)
{
    telegram_t *c = telegram_new(s_url, TOKEN, 3000);
    char err[200] = "";
    char *big = malloc(5000);
    memset(big, 'a', 4999);
    big[4999] = '\0';
    CHECK_EQ_INT(telegram_send(c, "42", big, err, sizeof err), TELEGRAM_PERMANENT);
    CHECK(strstr(err, "4096") != NULL);
    free(big);
    CHECK_EQ_INT(telegram_send(c, "", "x", err, sizeof err), TELEGRAM_PERMANENT);
    CHECK_EQ_INT(telegram_send(c, "42", "", err, sizeof err), TELEGRAM_PERMANENT);
    telegram_destroy(&c);
    CHECK(telegram_new("ftp://x", TOKEN, 1000) == NULL);
    CHECK(telegram_new(s_url, "", 1000) == NULL);
    CHECK(telegram_new(s_url, "a/b", 1000) == NULL);
}

/* The message_id of the first kept message whose text holds needle (0 if none). */
static long long s_message_with(const char *needle, bson_t *doc_out)
{
    char *body = s_ctl("GET", "/sim/messages", NULL);
    bson_t doc;
    char perr[64];
    long long found = 0;
    if (body && json_parse(body, strlen(body), &doc, perr, sizeof perr) == 0) {
        for (int i = 0; i < 1000 && !found; i++) {
            char path[48];
            snprintf(path, sizeof path, "messages.%d.text", i);
            const char *t = json_get_str(&doc, path);
            if (!t)
                break;
            int64_t id = 0;
            snprintf(path, sizeof path, "messages.%d.message_id", i);
            if (strstr(t, needle) && json_get_i64(&doc, path, &id) == 0)
                found = id;
        }
        if (doc_out)
            *doc_out = doc;
        else
            bson_destroy(&doc);
    }
    free(body);
    return found;
}

static void test_keyboard_press_answer_and_edit(void)
{
    free(s_ctl("POST", "/sim/reset", NULL));
    telegram_t *c = telegram_new(s_url, TOKEN, 3000);
    char err[200] = "";
    telegram_button_t kb[2] = { { "✅ Onayla", "approve:d:tx-1" }, { "❌ Reddet", "reject:d:tx-1" } };
    long long mid = 0;
    CHECK_EQ_INT(telegram_send_keyboard(c, "-100777", "<b>Onay bekliyor</b> tx-1", kb, 2, &mid, err, sizeof err),
                 TELEGRAM_OK);
    CHECK(mid > 0);
    char *body = s_ctl("GET", "/sim/messages", NULL);
    CHECK(body && strstr(body, "\"reply_markup\":{\"inline_keyboard\":[[{\"text\":\"✅ Onayla\",\"callback_data\":"
                                "\"approve:d:tx-1\"},{\"text\":\"❌ Reddet\",\"callback_data\":\"reject:d:tx-1\"}]]}"));
    free(body);
    /* nothing pressed yet: a short poll answers at once with nothing */
    telegram_press_t p[4];
    int64_t next = 0;
    telegram_result_t rc;
    CHECK_EQ_INT(telegram_updates(c, 0, 0, p, 4, &next, &rc, err, sizeof err), 0);
    CHECK_EQ_INT(next, 0);
    /* a button the message does not show cannot be pressed (unless a bad client forces it) */
    char press[200];
    snprintf(press, sizeof press, "{\"user_id\":5551,\"message_id\":%lld,\"data\":\"approve:d:other\"}", mid);
    body = s_ctl("POST", "/sim/press", press);
    CHECK(body && strstr(body, "no button"));
    free(body);
    snprintf(press, sizeof press, "{\"user_id\":5551,\"username\":\"ayse_tg\",\"message_id\":%lld,"
             "\"data\":\"approve:d:tx-1\"}", mid);
    body = s_ctl("POST", "/sim/press", press);
    CHECK(body && strstr(body, "callback_query_id"));
    free(body);
    int n = telegram_updates(c, 0, 2, p, 4, &next, &rc, err, sizeof err);
    CHECK_EQ_INT(n, 1);
    if (n != 1) {
        telegram_destroy(&c);
        return;
    }
    CHECK_EQ_INT(p[0].from_id, 5551);
    CHECK_EQ_STR(p[0].from_name, "ayse_tg");
    CHECK_EQ_STR(p[0].data, "approve:d:tx-1");
    CHECK_EQ_STR(p[0].chat_id, "-100777");
    CHECK_EQ_INT(p[0].message_id, mid);
    CHECK(p[0].query_id[0] != '\0');
    CHECK_EQ_INT(next, p[0].update_id + 1);
    /* not confirmed yet: read again; confirmed by the next offset: gone */
    int64_t again = 0;
    CHECK_EQ_INT(telegram_updates(c, 0, 0, p + 1, 3, &again, &rc, err, sizeof err), 1);
    CHECK_EQ_INT(telegram_updates(c, next, 0, p + 1, 3, &again, &rc, err, sizeof err), 0);
    /* answered once; a second answer is the Bot API's "query is too old" */
    CHECK_EQ_INT(telegram_answer(c, p[0].query_id, "Onaylandı", 0, err, sizeof err), TELEGRAM_OK);
    CHECK_EQ_INT(telegram_answer(c, p[0].query_id, "again", 0, err, sizeof err), TELEGRAM_PERMANENT);
    CHECK(strstr(err, "query is too old") != NULL);
    body = s_ctl("GET", "/sim/presses", NULL);
    CHECK(body && strstr(body, "\"answered\":true") && strstr(body, "\"answer\":\"Onaylandı\""));
    free(body);
    /* the edit removes the keyboard; the same edit again changes nothing and still counts as done */
    CHECK_EQ_INT(telegram_edit(c, "-100777", mid, "<b>Onaylandı</b>: ayse", NULL, 0, err, sizeof err), TELEGRAM_OK);
    bson_t doc;
    CHECK_EQ_INT(s_message_with("Onaylandı</b>: ayse", &doc), mid);
    CHECK(json_has(&doc, "messages.0.reply_markup") && !json_get_str(&doc, "messages.0.reply_markup.inline_keyboard"));
    int64_t edits = 0;
    CHECK(json_get_i64(&doc, "messages.0.edits", &edits) == 0 && edits == 1);
    bson_destroy(&doc);
    CHECK_EQ_INT(telegram_edit(c, "-100777", mid, "<b>Onaylandı</b>: ayse", NULL, 0, err, sizeof err), TELEGRAM_OK);
    /* a message that is not there, and a button the Bot API would refuse */
    CHECK_EQ_INT(telegram_edit(c, "-100777", 99999, "x", NULL, 0, err, sizeof err), TELEGRAM_PERMANENT);
    CHECK(strstr(err, "Bad Request: message to edit not found") != NULL);
    char long_data[80];
    memset(long_data, 'x', 65);
    long_data[65] = '\0';
    telegram_button_t bad = { "x", long_data };
    CHECK_EQ_INT(telegram_send_keyboard(c, "-100777", "x", &bad, 1, NULL, err, sizeof err), TELEGRAM_PERMANENT);
    char *raw = s_ctl("POST", "/bot" TOKEN "/sendMessage",
                      "{\"chat_id\":1,\"text\":\"x\",\"reply_markup\":{\"inline_keyboard\":[[{\"text\":\"a\","
                      "\"callback_data\":\"\"}]]}}");
    CHECK(raw && strstr(raw, "{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: BUTTON_DATA_INVALID\"}"));
    free(raw);
    telegram_destroy(&c);
}

typedef struct {
    telegram_t *c;
    int n;
    int64_t next;
    telegram_press_t p[2];
} s_poll_t;

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *s_poll(void *arg)
{
    s_poll_t *pl = arg;
    char err[200];
    telegram_result_t rc;
    pl->n = telegram_updates(pl->c, pl->next, 10, pl->p, 2, &pl->next, &rc, err, sizeof err);
    return NULL;
}

static void test_long_poll_wakes_on_a_press_and_stops_on_demand(void)
{
    free(s_ctl("POST", "/sim/reset", NULL));
    telegram_t *c = telegram_new(s_url, TOKEN, 3000);
    char err[200];
    telegram_button_t kb = { "Reddet", "reject:d:tx-2" };
    long long mid = 0;
    CHECK_EQ_INT(telegram_send_keyboard(c, "42", "tx-2", &kb, 1, &mid, err, sizeof err), TELEGRAM_OK);
    s_poll_t pl = { telegram_new(s_url, TOKEN, 3000), -1, 0, { { 0 } } };
    /* start past every earlier update */
    telegram_result_t rc;
    telegram_press_t skip[16];
    telegram_updates(pl.c, 0, 0, skip, 16, &pl.next, &rc, err, sizeof err);
    pthread_t t;
    pthread_create(&t, NULL, s_poll, &pl);
    usleep(300 * 1000);
    char press[160];
    snprintf(press, sizeof press, "{\"user_id\":77,\"message_id\":%lld,\"data\":\"reject:d:tx-2\"}", mid);
    int64_t t0 = s_now_ms();
    free(s_ctl("POST", "/sim/press", press));
    pthread_join(t, NULL);
    CHECK_EQ_INT(pl.n, 1);
    CHECK(s_now_ms() - t0 < 3000);
    CHECK_EQ_STR(pl.p[0].data, "reject:d:tx-2");
    /* a long poll with nothing to come ends at once when told to stop */
    atomic_int stop = 0;
    telegram_set_stop(pl.c, &stop);
    pthread_create(&t, NULL, s_poll, &pl);
    usleep(300 * 1000);
    t0 = s_now_ms();
    atomic_store(&stop, 1);
    pthread_join(t, NULL);
    CHECK_EQ_INT(pl.n, -1);
    CHECK(s_now_ms() - t0 < 3000);
    telegram_destroy(&pl.c);
    telegram_destroy(&c);
}

static void test_fail_rate_option(void)
{
    char err[200];
    char *argv[] = { "telegram", "--listen", "127.0.0.1:0", "--token", TOKEN, "--fail-rate", "1" };
    sim_telegram_t *always = sim_telegram_start(7, argv, err, sizeof err);
    CHECK(always != NULL);
    if (!always)
        return;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", sim_telegram_port(always));
    telegram_t *c = telegram_new(url, TOKEN, 3000);
    CHECK_EQ_INT(telegram_send(c, "42", "x", err, sizeof err), TELEGRAM_TRANSIENT);
    CHECK(strstr(err, "500") != NULL);
    telegram_destroy(&c);
    sim_telegram_stop(&always);
    CHECK(always == NULL);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    setenv("KASA_LOG_LEVEL", "error", 0);
    const char *dir = getenv("KASA_TEST_OUT");
    snprintf(s_log, sizeof s_log, "%s/test_telegram.%d.jsonl", dir ? dir : "/tmp", (int) getpid());
    unlink(s_log);
    char err[200];
    char *argv[] = { "telegram", "--listen", "127.0.0.1:0", "--token", TOKEN, "--log", s_log };
    s_sim = sim_telegram_start(7, argv, err, sizeof err);
    if (!s_sim) {
        fprintf(stderr, "sim: %s\n", err);
        return 1;
    }
    snprintf(s_url, sizeof s_url, "http://127.0.0.1:%d", sim_telegram_port(s_sim));
    RUN(test_escape_html);
    RUN(test_send_is_accepted_and_recorded);
    RUN(test_unescaped_html_is_permanent);
    RUN(test_wrong_token_is_permanent_and_token_is_masked);
    RUN(test_transport_error_is_transient_without_token);
    RUN(test_server_errors_are_transient_then_recover);
    RUN(test_429_reports_retry_after);
    RUN(test_refuses_before_sending);
    RUN(test_keyboard_press_answer_and_edit);
    RUN(test_long_poll_wakes_on_a_press_and_stops_on_demand);
    RUN(test_fail_rate_option);
    sim_telegram_stop(&s_sim);
    unlink(s_log);
    curl_global_cleanup();
    return check_done();
}
