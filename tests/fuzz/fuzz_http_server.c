/* fuzz_http_server.c — the whole HTTP server on arbitrary bytes: each input is sent as it is (request
 * line, headers, body) on a fresh connection to an in-process server with a route, a prefix route and
 * a static folder holding a symlink, behind a trusted proxy (so X-Forwarded-For is parsed), and the
 * answer read to its end. The server is the real one (libmicrohttpd and kasa's handling) driven on
 * the fuzzer's thread over a socket pair (http_server_new_driven): no TCP round trip, no waiting. Path decoding and checks, routing, static files, bodies, the client's
 * address: nothing may crash, and a static answer never comes from outside the folder. The pure
 * X-Forwarded-For resolution is also fed the input directly: the client it names is always a whole
 * address (its text parses back to it). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "schema/json.h"
#include "schema/log.h"
#include "schema/netaddr.h"
#include "tests/fuzz/fuzz.h"
#include "web/http.h"

static http_server_t *s_srv;
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

static void s_exchange(const uint8_t *data, size_t size, jbuf_t *answer);

/* The harness sees what the server sends: a file of the folder comes back as the answer's body. */
static void s_self_check(void)
{
    static const char get[] = "GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n";
    jbuf_t answer;
    jbuf_init(&answer);
    s_exchange((const uint8_t *) get, sizeof get - 1, &answer);
    jbuf_add(&answer, "", 0);
    FUZZ_ASSERT(strstr(answer.data, "\r\n\r\nok\n") != NULL);
    jbuf_free(&answer);
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
    s_srv = http_server_new_driven(4096, err, sizeof err);
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
    s_self_check();
}

/* Hands the server one end of a fresh socket pair as a connection from 127.0.0.1 (a trusted proxy),
 * writes data into the other end and half-closes it, then steps the server until it has closed the
 * connection, collecting the answer. No network, no timeout: the server has the whole request (or
 * its end) at once, answers what is complete and closes at the end of the input. A server that does
 * not finish a half-closed connection within a bounded number of steps is a hang (a broken
 * property). */
static void s_exchange(const uint8_t *data, size_t size, jbuf_t *answer)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0)
        abort();
    struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(40000) };
    inet_pton(AF_INET, "127.0.0.1", &peer.sin_addr);
    if (http_server_add_connection(s_srv, sv[1], (struct sockaddr *) &peer, sizeof peer) != 0)
        abort();
    size_t off = 0;
    int shut = 0, closed = 0, steps = 0;
    char buf[4096];
    while (!closed) {
        while (off < size) {   /* as much as the socket takes now; the rest once the server reads */
            ssize_t n = send(sv[0], data + off, size - off, MSG_NOSIGNAL);
            if (n <= 0)
                break;   /* full for now, or the server closed early (413, a refused path): fine */
            off += (size_t) n;
        }
        http_server_step(s_srv);
        for (;;) {
            ssize_t n = recv(sv[0], buf, sizeof buf, 0);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                closed = 1;   /* the server closed (or reset) the connection */
                break;
            }
            if (n < 0)
                break;
            if (answer->len < (1 << 16))
                jbuf_add(answer, buf, (size_t) n);
        }
        /* The end of the input once the server has read all of it (the server's end is still open
         * here: it closes only inside a step). Sent with the last bytes, the end would reach an
         * edge-triggered reader that has already drained its socket: as a network peer's end comes
         * after its data, it comes here as an event of its own. */
        int unread = 0;
        if (!closed && !shut && off == size && ioctl(sv[1], FIONREAD, &unread) == 0 && unread == 0) {
            shutdown(sv[0], SHUT_WR);
            shut = 1;
        }
        FUZZ_ASSERT(++steps < 10000);   /* the server always finishes a connection whose input ended */
    }
    close(sv[0]);
    http_server_step(s_srv);   /* let the server free the closed connection now */
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

int fuzz_http_server(const uint8_t *data, size_t size);
int fuzz_http_server(const uint8_t *data, size_t size)
{
    if (size > 1 << 15)
        return 0;
    if (!s_srv)
        s_start();
    jbuf_t answer;
    jbuf_init(&answer);
    s_exchange(data, size, &answer);
    jbuf_add(&answer, "", 0);
    /* nothing through a symlink: no answer's body is the outside file (the echo route may well
     * repeat its name or text from the request, inside its JSON) */
    FUZZ_ASSERT(strstr(answer.data, "\r\n\r\nSECRET-OUTSIDE\n") == NULL);
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

FUZZ_ENTRY(fuzz_http_server)
