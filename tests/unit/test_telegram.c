/* test_telegram.c — the Telegram client against the Bot API simulator (in-process): sending,
 * HTML escaping, failure classes, retry_after, and the bot token never appearing in an error. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    RUN(test_fail_rate_option);
    sim_telegram_stop(&s_sim);
    unlink(s_log);
    curl_global_cleanup();
    return check_done();
}
