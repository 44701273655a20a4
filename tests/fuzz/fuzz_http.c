/* fuzz_http.c — kasa's HTTP request handling on arbitrary bytes: each input is sent as it is (request
 * line, headers, body) on a fresh connection to an in-process server with a route, a prefix route and
 * a static folder holding a symlink, behind a trusted proxy (so X-Forwarded-For is parsed), and the
 * answer read to its end. Path decoding and checks, routing, static files, bodies, the client's
 * address: nothing may crash, and a static answer never comes from outside the folder. The pure
 * X-Forwarded-For resolution is also fed the input directly: the client it names is always a whole
 * address (its text parses back to it). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "schema/json.h"
#include "schema/log.h"
#include "schema/netaddr.h"
#include "tests/fuzz/fuzz.h"
#include "web/http.h"

static http_server_t *s_srv;
static int s_port;
static char s_http_dir[256];

static void s_echo(void *arg, const http_request_t *req, http_response_t *res)
{
    (void) arg;
    size_t len;
    const char *body = http_body(req, &len);
    jbuf_t b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"path\":");
    jbuf_str(&b, http_path(req));
    jbuf_puts(&b, ",\"ip\":");
    jbuf_str(&b, http_client_ip(req));
    jbuf_puts(&b, ",\"q\":");
    jbuf_str(&b, http_query(req, "q"));
    jbuf_puts(&b, ",\"c\":");
    jbuf_str(&b, http_cookie(req, "kasa_sid"));
    jbuf_puts(&b, ",\"h\":");
    jbuf_str(&b, http_header(req, "X-CSRF-Token"));
    jbuf_printf(&b, ",\"len\":%zu,\"first\":%d}", len, len ? (unsigned char) body[0] : -1);
    http_reply_json(res, 200, jbuf_take(&b));
}

static void s_start(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(s_http_dir, sizeof s_http_dir, "%s/kasa-fuzz-http-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(s_http_dir))
        abort();
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/static/css' '%s/outside' && echo ok > '%s/static/index.html' && echo a > '%s/static/css/a.css'"
             " && echo SECRET-OUTSIDE > '%s/outside/s.txt' && ln -s '%s/outside' '%s/static/out'"
             " && ln -s '%s/outside/s.txt' '%s/static/s.txt'",
             s_http_dir, s_http_dir, s_http_dir, s_http_dir, s_http_dir, s_http_dir, s_http_dir, s_http_dir, s_http_dir);
    if (system(cmd) != 0)
        abort();
    log_set_level(LOG_ERROR);
    char err[256], sdir[300];
    s_srv = http_server_new("127.0.0.1:0", 4096, 2, err, sizeof err);
    if (!s_srv)
        abort();
    netlist_t trusted;
    if (netlist_parse("127.0.0.1", &trusted, err, sizeof err) != 0)
        abort();
    http_trust_proxies(s_srv, &trusted);
    http_limits(s_srv, 200, 1024, 1024);
    http_route(s_srv, "POST", "/echo", s_echo, NULL);
    http_route(s_srv, "GET", "/api/things/*", s_echo, NULL);
    snprintf(sdir, sizeof sdir, "%s/static", s_http_dir);
    http_static(s_srv, sdir);
    if (http_server_start(s_srv, err, sizeof err) != 0)
        abort();
    s_port = http_server_port(s_srv);
}

/* Sends data on a new connection, half-closes, and reads the answer: up to 150 ms for its first
 * byte (a request that is not complete gets none: the server waits for the rest, and its head deadline
 * would cut it), then until the server pauses 10 ms (a keep-alive answer never ends the connection).
 * The connection is then reset, so the server drops it at once instead of waiting for the rest. */
static void s_exchange(const uint8_t *data, size_t size, jbuf_t *answer)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        abort();
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t) s_port) };
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    if (connect(fd, (struct sockaddr *) &to, sizeof to) != 0)
        abort();
    size_t off = 0;
    while (off < size) {
        ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
        if (n <= 0)
            break;   /* the server may close early (413, a refused path): fine */
        off += (size_t) n;
    }
    shutdown(fd, SHUT_WR);
    char buf[4096];
    int wait_ms = 150;
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, wait_ms) <= 0)
            break;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        if (answer->len < (1 << 16))
            jbuf_add(answer, buf, (size_t) n);
        wait_ms = 10;
    }
    struct linger reset = { 1, 0 };
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    close(fd);
}

/* Stops the server and removes its scratch folder (the replay test's clean exit). */
static void s_http_stop(void) __attribute__((unused));
static void s_http_stop(void)
{
    http_server_destroy(&s_srv);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_http_dir);
    if (s_http_dir[0] && system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", s_http_dir);
}

int fuzz_http(const uint8_t *data, size_t size);
int fuzz_http(const uint8_t *data, size_t size)
{
    if (size > 1 << 15)
        return 0;
    if (!s_srv)
        s_start();
    jbuf_t answer;
    jbuf_init(&answer);
    s_exchange(data, size, &answer);
    jbuf_add(&answer, "", 0);
    FUZZ_ASSERT(strstr(answer.data, "SECRET-OUTSIDE") == NULL);   /* nothing through a symlink */
    jbuf_free(&answer);

    /* the forwarding chain alone: the client is the peer or an address the chain names */
    char *xff = fuzz_cstr(data, size);
    netlist_t trusted;
    char err[128];
    netlist_parse("127.0.0.0/8, 10.0.0.0/8, ::1", &trusted, err, sizeof err);
    netaddr_t peer, client;
    netaddr_parse("127.0.0.1", 9, 0, &peer);
    netaddr_client(&peer, &trusted, xff, xff, &client);
    char text[NETADDR_TEXT];
    netaddr_format(&client, text);
    netaddr_t back;
    FUZZ_ASSERT(netaddr_parse(text, strlen(text), 0, &back) == 0 && netaddr_equal(&back, &client));
    free(xff);
    return 0;
}

FUZZ_ENTRY(fuzz_http)
