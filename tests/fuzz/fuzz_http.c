/* fuzz_http.c — kasa's own handling of an HTTP request's path and headers on arbitrary bytes, fed
 * directly (no connection, no libmicrohttpd): each input is read as a raw request head the way the
 * server's library splits it (request line, path and query, header lines), then goes through what
 * the server runs on every request (web/http.h, "a request's head judged without a connection"):
 * the path's and every query name's and value's unescaping, the head's judgement (control bytes,
 * routing among a route and a prefix route, 404/405 and Allow, Content-Length), the static file's
 * walk into a folder holding symlinks, the X-Forwarded-For chain collected from the headers and the
 * client resolved behind a trusted proxy (or not, by the input's length), and the chain alone fed
 * the whole input. Properties: an unescaped path gains no separator; a route is chosen only for its
 * method and path; 405 names the methods; a static file opened is one of the folder's own files,
 * never the file behind a symlink; a client named is a whole address, and an untrusted peer is its
 * own client. tests/fuzz/fuzz_http_server.c runs the whole server over a socket pair instead. */
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "schema/json.h"
#include "schema/log.h"
#include "schema/netaddr.h"
#include "tests/fuzz/fuzz.h"
#include "web/http.h"

#define S_HEAD_MAX_HEADERS 64

static http_server_t *s_head_srv;
static char s_head_dir[256];
static struct stat s_head_inside[2], s_head_outside;   /* the folder's two files; the file behind its links */

static void s_head_route(void *arg, const http_request_t *req, http_response_t *res)
{
    (void) arg;
    (void) req;
    http_reply_error(res, 200, "ok");
}

static void s_head_start(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(s_head_dir, sizeof s_head_dir, "%s/kasa-fuzz-head-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(s_head_dir))
        abort();
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/static/css' '%s/outside' && echo ok > '%s/static/index.html' && echo a > '%s/static/css/a.css'"
             " && echo SECRET-OUTSIDE > '%s/outside/s.txt' && ln -s '%s/outside' '%s/static/out'"
             " && ln -s '%s/outside/s.txt' '%s/static/s.txt'",
             s_head_dir, s_head_dir, s_head_dir, s_head_dir, s_head_dir, s_head_dir, s_head_dir, s_head_dir, s_head_dir);
    if (system(cmd) != 0)
        abort();
    char path[400];
    snprintf(path, sizeof path, "%s/static/index.html", s_head_dir);
    FUZZ_ASSERT(stat(path, &s_head_inside[0]) == 0);
    snprintf(path, sizeof path, "%s/static/css/a.css", s_head_dir);
    FUZZ_ASSERT(stat(path, &s_head_inside[1]) == 0);
    snprintf(path, sizeof path, "%s/outside/s.txt", s_head_dir);
    FUZZ_ASSERT(stat(path, &s_head_outside) == 0);
    log_set_level(LOG_ERROR);
    char err[256];
    s_head_srv = http_server_new_driven(4096, err, sizeof err);   /* never started: its tables only */
    if (!s_head_srv)
        abort();
    netlist_t trusted;
    if (netlist_parse("127.0.0.0/8, 10.0.0.0/8, ::1", &trusted, err, sizeof err) != 0)
        abort();
    http_trust_proxies(s_head_srv, &trusted);
    http_route(s_head_srv, "POST", "/echo", s_head_route, NULL);              /* route 0 */
    http_route(s_head_srv, "GET", "/api/things/*", s_head_route, NULL);      /* route 1 */
    snprintf(path, sizeof path, "%s/static", s_head_dir);
    http_static(s_head_srv, path);
}

/* Frees the server and removes its scratch folder (the replay test's clean exit). */
static void s_head_stop(void) __attribute__((unused));
static void s_head_stop(void)
{
    http_server_destroy(&s_head_srv);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_head_dir);
    if (s_head_dir[0] && system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", s_head_dir);
}

static size_t s_head_count(const char *s, size_t n, char c)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += s[i] == c;
    return k;
}

/* Unescapes s as the server's library does (path or query part) and checks what it gives. */
static void s_head_unescape(char *s)
{
    size_t before = strlen(s), slashes = s_head_count(s, before, '/');
    int is_path = s[0] == '/';
    size_t after = http_unescape(s);
    FUZZ_ASSERT(after == strlen(s) && after <= before);
    if (is_path)   /* an encoded '/' never becomes a separator */
        FUZZ_ASSERT(s_head_count(s, after, '/') == slashes);
}

/* The query "a=b&c" split on '&' and '=', each name and value unescaped. */
static void s_head_query(char *q)
{
    for (char *p = q; p;) {
        char *amp = strchr(p, '&');
        if (amp)
            *amp = '\0';
        char *eq = strchr(p, '=');
        if (eq) {
            *eq = '\0';
            s_head_unescape(eq + 1);
        }
        s_head_unescape(p);
        p = amp ? amp + 1 : NULL;
    }
}

static int s_head_same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

static void s_head_judge(const char *method, char *target, const char *content_length)
{
    char *q = strchr(target, '?');
    if (q) {
        *q = '\0';
        s_head_query(q + 1);
    }
    s_head_unescape(target);
    http_head_t head;
    http_head_judge(s_head_srv, method, target, content_length, &head);
    FUZZ_ASSERT(head.too_large >= 0 && head.too_large <= 2);
    FUZZ_ASSERT((head.route >= 0) == (head.early == 0));
    FUZZ_ASSERT((head.early == 405) == (head.allow[0] != '\0'));
    for (const char *p = target; *p; p++)
        if ((unsigned char) *p < 0x20 || *p == 0x7f)
            FUZZ_ASSERT(head.early == 400);
    switch (head.early) {
    case 0:
        FUZZ_ASSERT(head.route == 0 ? strcmp(method, "POST") == 0 && strcmp(target, "/echo") == 0
                                    : head.route == 1 && strcmp(method, "GET") == 0 &&
                                          strncmp(target, "/api/things/", 12) == 0);
        break;
    case 405:
        FUZZ_ASSERT(strcmp(head.allow, "POST") == 0 || strcmp(head.allow, "GET") == 0);
        break;
    case 200: {
        FUZZ_ASSERT(strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0);
        uint64_t size = 0;
        const char *type = NULL;
        int status = 0;
        int fd = http_static_open(s_head_srv, target, &size, &type, &status);
        if (fd >= 0) {
            struct stat st;
            FUZZ_ASSERT(status == 200 && type != NULL && fstat(fd, &st) == 0 && (uint64_t) st.st_size == size);
            FUZZ_ASSERT(!s_head_same_file(&st, &s_head_outside));
            FUZZ_ASSERT(s_head_same_file(&st, &s_head_inside[0]) || s_head_same_file(&st, &s_head_inside[1]));
            close(fd);
        } else {
            FUZZ_ASSERT(status == 400 || status == 404);
        }
        break;
    }
    case 400: case 404:
        break;
    default:
        FUZZ_ASSERT(!"an early answer the server does not give");
    }
}

/* The client behind peer from the input's X-Forwarded-For chain and X-Real-IP. */
static void s_head_client(const netaddr_t *peer, const char *xff, const char *real_ip)
{
    netaddr_t client;
    http_head_client(s_head_srv, peer, xff, real_ip, &client);
    char text[NETADDR_TEXT];
    netaddr_format(&client, text);
    netaddr_t back;
    FUZZ_ASSERT(netaddr_parse(text, strlen(text), 0, &back) == 0 && netaddr_equal(&back, &client));
    char ptext[NETADDR_TEXT];
    netaddr_format(peer, ptext);
    if (strcmp(ptext, "203.0.113.9") == 0 || strcmp(ptext, "2001:db8::9") == 0)
        FUZZ_ASSERT(netaddr_equal(&client, peer));   /* an untrusted peer is its own client */
}

int fuzz_http(const uint8_t *data, size_t size);
int fuzz_http(const uint8_t *data, size_t size)
{
    if (size > 1 << 15)
        return 0;
    if (!s_head_srv)
        s_head_start();
    char *text = fuzz_cstr(data, size);

    /* the request line: METHOD SP TARGET [SP VERSION], then "Name: value" lines to a blank one */
    char *line_end = strchr(text, '\n');
    char *rest = line_end ? line_end + 1 : NULL;
    if (line_end)
        *line_end = '\0';
    text[strcspn(text, "\r")] = '\0';
    char *method = text, *target = strchr(text, ' ');
    if (target) {
        *target++ = '\0';
        target[strcspn(target, " ")] = '\0';
    }
    int count = 0;
    const char *content_length = NULL, *real_ip = NULL;
    jbuf_t chain;
    jbuf_init(&chain);
    for (char *l = rest; l && count < S_HEAD_MAX_HEADERS;) {
        char *nl = strchr(l, '\n');
        if (nl)
            *nl = '\0';
        l[strcspn(l, "\r")] = '\0';
        if (!*l)
            break;
        char *colon = strchr(l, ':');
        if (colon) {
            *colon = '\0';
            char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            count++;
            if (!content_length && strcasecmp(l, "Content-Length") == 0)
                content_length = v;
            if (!real_ip && strcasecmp(l, "X-Real-IP") == 0)
                real_ip = v;
            http_head_forwarded(&chain, l, v);
        }
        l = nl ? nl + 1 : NULL;
    }
    jbuf_add(&chain, "", 0);
    if (target && *target)
        s_head_judge(method, target, content_length);

    static const char *const peers[] = { "127.0.0.1", "10.1.2.3", "203.0.113.9", "2001:db8::9", "::1" };
    netaddr_t peer;
    const char *p = peers[size % (sizeof peers / sizeof peers[0])];
    FUZZ_ASSERT(netaddr_parse(p, strlen(p), 0, &peer) == 0);
    s_head_client(&peer, chain.len > 0 ? chain.data : NULL, real_ip);
    jbuf_free(&chain);
    free(text);

    /* the forwarding chain alone: the whole input as X-Forwarded-For and as X-Real-IP */
    char *xff = fuzz_cstr(data, size);
    s_head_client(&peer, xff, xff);
    free(xff);
    return 0;
}

FUZZ_ENTRY(fuzz_http)
