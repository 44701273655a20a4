/* sim_http.c — the libmicrohttpd scaffolding the simulators share (see sim_http.h). */
#include "tools/sim/sim_http.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define SIM_HTTP_MAX_CONNECTIONS 256u

static void *s_on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void) cls, (void) conn;
    sim_request_t *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    req->uri = strdup(uri ? uri : "/");
    if (!req->uri) {
        free(req);
        return NULL;
    }
    jbuf_init(&req->body);
    return req;
}

static void s_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    (void) cls, (void) conn, (void) toe;
    sim_request_t *req = *con_cls;
    if (req) {
        free(req->uri);
        jbuf_free(&req->body);
        free(req);
        *con_cls = NULL;
    }
}

struct MHD_Daemon *sim_http_start(const sim_http_opts_t *o, int *port)
{
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;
    if (o->error_log)
        flags |= MHD_USE_ERROR_LOG;
    struct MHD_Daemon *d;
    if (o->tls_cert && o->tls_key)
        d = MHD_start_daemon(flags | MHD_USE_TLS, 0, NULL, NULL, o->handler, o->cls,
                             MHD_OPTION_SOCK_ADDR, (const struct sockaddr *) o->addr,
                             MHD_OPTION_URI_LOG_CALLBACK, s_on_uri, NULL,
                             MHD_OPTION_NOTIFY_COMPLETED, s_on_completed, NULL,
                             MHD_OPTION_CONNECTION_TIMEOUT, o->timeout_s,
                             MHD_OPTION_CONNECTION_LIMIT, SIM_HTTP_MAX_CONNECTIONS,
                             MHD_OPTION_HTTPS_MEM_CERT, o->tls_cert,
                             MHD_OPTION_HTTPS_MEM_KEY, o->tls_key, MHD_OPTION_END);
    else
        d = MHD_start_daemon(flags, 0, NULL, NULL, o->handler, o->cls,
                             MHD_OPTION_SOCK_ADDR, (const struct sockaddr *) o->addr,
                             MHD_OPTION_URI_LOG_CALLBACK, s_on_uri, NULL,
                             MHD_OPTION_NOTIFY_COMPLETED, s_on_completed, NULL,
                             MHD_OPTION_CONNECTION_TIMEOUT, o->timeout_s,
                             MHD_OPTION_CONNECTION_LIMIT, SIM_HTTP_MAX_CONNECTIONS, MHD_OPTION_END);
    if (d) {
        const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
        *port = di ? di->port : ntohs(o->addr->sin_port);
    }
    return d;
}

sim_request_t *sim_http_body(void **con_cls, const char *upload, size_t *upload_size, size_t max_body,
                             enum MHD_Result *rc)
{
    sim_request_t *req = *con_cls;
    *rc = MHD_YES;
    if (!req) {
        *rc = MHD_NO;
        return NULL;
    }
    if (!req->started) {
        req->started = 1;
        return NULL;
    }
    if (*upload_size) {
        if (req->body.len + *upload_size > max_body)
            req->too_big = 1;
        else
            jbuf_add(&req->body, upload, *upload_size);
        *upload_size = 0;
        return NULL;
    }
    return req;
}

struct MHD_Response *sim_http_json(const char *json)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(json), (void *) json, MHD_RESPMEM_MUST_COPY);
    if (r)
        MHD_add_response_header(r, "Content-Type", "application/json");
    return r;
}

enum MHD_Result sim_http_send(struct MHD_Connection *conn, unsigned status, struct MHD_Response *r)
{
    if (!r)
        return MHD_NO;
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

enum MHD_Result sim_http_reply(struct MHD_Connection *conn, unsigned status, const char *json)
{
    return sim_http_send(conn, status, sim_http_json(json));
}

enum MHD_Result sim_http_reply_buf(struct MHD_Connection *conn, unsigned status, jbuf_t *b)
{
    enum MHD_Result rc = sim_http_reply(conn, status, b->data ? b->data : "");
    jbuf_free(b);
    return rc;
}

int sim_http_is_loopback(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return 0;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *) sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *) sa)->sin6_addr);
    return 0;
}

int sim_http_parse_listen(const char *text, int loopback_only, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(text, ':');
    if (!colon || (size_t) (colon - text) >= sizeof host)
        return -1;
    const char *digits = colon + 1;
    size_t n = strspn(digits, "0123456789");
    if (n == 0 || n > 5 || digits[n])
        return -1;
    long port = strtol(digits, NULL, 10);
    if (port > 65535)
        return -1;
    memcpy(host, text, (size_t) (colon - text));
    host[colon - text] = '\0';
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t) port);
    if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, &sa->sin_addr) != 1)
        return -1;
    if (loopback_only && (ntohl(sa->sin_addr.s_addr) >> 24) != 127)
        return -1;
    return 0;
}

int sim_http_option(int argc, char **argv, int *i, const char **opt, const char **val, char *err, size_t errlen)
{
    const char *o = argv[*i];
    if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
        snprintf(err, errlen, "help");
        return -1;
    }
    if (*i + 1 >= argc) {
        snprintf(err, errlen, "%s needs a value (or is unknown)", o);
        return -1;
    }
    *opt = o;
    *val = argv[++*i];
    return 0;
}

int64_t sim_http_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t sim_http_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void sim_http_block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int sim_http_wait_signal(const sigset_t *set)
{
    int sig = 0;
    sigwait(set, &sig);
    return sig;
}

int sim_http_start_failed(const char *kind, const char *err, void (*usage)(FILE *out))
{
    if (strcmp(err, "help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "kasa sim %s: %s (kasa sim %s --help lists the options)\n", kind, err, kind);
    return 2;
}
