/* sim_http.h — the libmicrohttpd scaffolding the simulators share (see sim.h): a bounded request
 * body gathered across upload calls, JSON replies, the --listen address, the loopback check for
 * /sim/ control endpoints, the daemon itself, splitmix64, and the wait for SIGTERM/SIGINT. */
#ifndef KASA_TOOLS_SIM_HTTP_H
#define KASA_TOOLS_SIM_HTTP_H

#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "schema/json.h"

/* One request as the access handler sees it once it is complete. */
typedef struct {
    char *uri;    /* the request target as received, query string included */
    jbuf_t body;  /* the body, at most the max_body given to sim_http_body() */
    int too_big;  /* the body went over max_body; what came was dropped */
    int started;  /* the first (headers only) call has been seen */
} sim_request_t;

/* How to run a daemon. tls_cert and tls_key are PEM text, both NULL for plain HTTP. */
typedef struct {
    const struct sockaddr_in *addr;
    MHD_AccessHandlerCallback handler;
    void *cls;
    unsigned timeout_s;   /* an idle connection is closed after this long */
    const char *tls_cert, *tls_key;
    int error_log;        /* let libmicrohttpd print its errors to stderr */
} sim_http_opts_t;

/* Starts a thread-per-connection daemon (at most 256 connections) whose requests arrive as
 * sim_request_t (see sim_http_body). Sets *port to the bound port. NULL if it cannot listen. */
struct MHD_Daemon *sim_http_start(const sim_http_opts_t *opts, int *port);

/* Call first in an access handler: takes the first call and each body chunk (keeping at most
 * max_body bytes, setting too_big past that). Returns the request once it is complete; else NULL
 * with *rc what the handler returns now (MHD_YES to go on, MHD_NO if there was no request state). */
sim_request_t *sim_http_body(void **con_cls, const char *upload, size_t *upload_size, size_t max_body,
                             enum MHD_Result *rc);

/* A response carrying json as application/json, for a caller that adds headers before
 * sim_http_send(). NULL if out of memory. */
struct MHD_Response *sim_http_json(const char *json);

/* Queues r with status and frees it. MHD_NO if r is NULL. */
enum MHD_Result sim_http_send(struct MHD_Connection *conn, unsigned status, struct MHD_Response *r);

/* Answers status with the JSON text json. */
enum MHD_Result sim_http_reply(struct MHD_Connection *conn, unsigned status, const char *json);

/* Answers status with the JSON text in b, and frees b. */
enum MHD_Result sim_http_reply_buf(struct MHD_Connection *conn, unsigned status, jbuf_t *b);

/* 1 if the client is on a loopback address (127.0.0.0/8 or ::1), else 0. */
int sim_http_is_loopback(struct MHD_Connection *conn);

/* Parses --listen's IPV4:PORT ("localhost" means 127.0.0.1; port 0 lets the kernel pick) into sa.
 * With loopback_only the host must be in 127.0.0.0/8. Returns 0, or -1 on anything else. */
int sim_http_parse_listen(const char *text, int loopback_only, struct sockaddr_in *sa);

/* One step of a `kasa sim KIND` option loop over argv (argv[0] is the kind): every option takes
 * a value. Sets *opt to argv[*i] and *val to the next argument and steps *i onto the value. 0, or
 * -1 with err: "help" for --help or -h, else which option lacks a value. */
int sim_http_option(int argc, char **argv, int *i, const char **opt, const char **val, char *err, size_t errlen);

/* Wall-clock milliseconds since the epoch (UTC). */
int64_t sim_http_now_ms(void);

/* splitmix64: the next value of the sequence whose state is *state. Not thread-safe. */
uint64_t sim_http_rand(uint64_t *state);

/* Blocks SIGTERM and SIGINT (threads started later inherit the mask), ignores SIGPIPE, and puts
 * the two signals in set for sim_http_wait_signal(). Call before starting any thread. */
void sim_http_block_signals(sigset_t *set);

/* Waits for one of the signals in set. Returns it. */
int sim_http_wait_signal(const sigset_t *set);

/* The exit status of `kasa sim KIND` when its start failed with err: "help" prints usage to
 * stdout and gives 0; anything else is printed to stderr and gives 2. */
int sim_http_start_failed(const char *kind, const char *err, void (*usage)(FILE *out));

#endif
