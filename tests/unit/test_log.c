/* test_log.c — the log line formats: text as before; KASA_LOG_FORMAT=json gives one JSON object a
 * line with the same fields (time, level, event, every key=value, quoted values unquoted, quotes and
 * control bytes escaped, free text as "msg"), and it parses as JSON. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "schema/json.h"
#include "schema/log.h"
#include "tests/check.h"

/* Runs one log_event with stderr captured; returns what was written (malloc'd). */
static char *s_capture(log_format_t format, const char *event, const char *kv)
{
    char path[] = "/tmp/kasa-test-log-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    log_set_format(format);
    if (kv)
        log_event(LOG_WARN, event, "%s", kv);
    else
        log_event(LOG_WARN, event, NULL);
    log_set_format(LOG_FORMAT_TEXT);
    dup2(saved, STDERR_FILENO);
    close(saved);
    char *buf = calloc(1, 8192);
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, buf, 8191);
    (void) n;
    close(fd);
    unlink(path);
    return buf;
}

static void test_text_line_is_unchanged(void)
{
    char *t = s_capture(LOG_FORMAT_TEXT, "deposit.held", "tx=abc login=100001 reason=\"not linked\"");
    CHECK(t && strstr(t, "Z level=warn event=deposit.held tx=abc login=100001 reason=\"not linked\"\n"));
    free(t);
}

static void test_json_line_has_the_same_fields(void)
{
    char *t = s_capture(LOG_FORMAT_JSON, "deposit.held", "tx=abc login=100001 reason=\"not linked: \\\"x\\\"\" n=5");
    CHECK(t != NULL);
    if (!t)
        return;
    size_t len = strlen(t);
    CHECK(len > 0 && t[len - 1] == '\n' && strchr(t, '\n') == t + len - 1);   /* one line */
    bson_t doc;
    char err[128];
    CHECK_EQ_INT(json_parse(t, len - 1, &doc, err, sizeof err), 0);
    CHECK_EQ_STR(json_get_str(&doc, "level"), "warn");
    CHECK_EQ_STR(json_get_str(&doc, "event"), "deposit.held");
    CHECK_EQ_STR(json_get_str(&doc, "tx"), "abc");
    CHECK_EQ_STR(json_get_str(&doc, "login"), "100001");
    CHECK_EQ_STR(json_get_str(&doc, "n"), "5");
    const char *reason = json_get_str(&doc, "reason");
    CHECK(reason && strncmp(reason, "not linked: ", 12) == 0);
    const char *time = json_get_str(&doc, "time");
    CHECK(time && strlen(time) == 24 && time[23] == 'Z' && time[10] == 'T');
    bson_destroy(&doc);
    free(t);
}

static void test_json_escapes_control_bytes_and_keeps_free_text(void)
{
    char *t = s_capture(LOG_FORMAT_JSON, "kasa.note", "a=1 something\twith a tab");
    CHECK(t != NULL);
    if (!t)
        return;
    bson_t doc;
    char err[128];
    CHECK_EQ_INT(json_parse(t, strlen(t) - 1, &doc, err, sizeof err), 0);
    CHECK_EQ_STR(json_get_str(&doc, "a"), "1");
    CHECK_EQ_STR(json_get_str(&doc, "msg"), "something\twith a tab");
    bson_destroy(&doc);
    free(t);
    t = s_capture(LOG_FORMAT_JSON, "kasa.empty", NULL);
    CHECK(t && strstr(t, "\"event\":\"kasa.empty\"}\n"));
    free(t);
}

int main(void)
{
    RUN(test_text_line_is_unchanged);
    RUN(test_json_line_has_the_same_fields);
    RUN(test_json_escapes_control_bytes_and_keeps_free_text);
    return check_done();
}
